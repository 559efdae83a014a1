/**
 * Budget periods in an IANA time zone. A period is the half-open interval [startMs, endMs) that
 * begins at LOCAL midnight, so a daily period on a DST day lasts 23 or 25 hours. Only
 * Intl.DateTimeFormat is used; formatters are cached per zone and the last period computed per
 * (kind, zone) is reused while `atMs` stays inside it, because the proxy asks on every call.
 */
import { assert } from '../lib/assert.js'
import type { BudgetPeriod } from '../config/types.js'

export interface Period {
  readonly startMs: number
  /** Exclusive. */
  readonly endMs: number
  /** `2026-11-29` (daily), `2026-W48` (weekly, ISO week), `2026-11`, `2026-Q4`, `2026`. */
  readonly key: string
}

export function periodOf(period: BudgetPeriod, timezone: string, atMs: number): Period {
  if (!Number.isSafeInteger(atMs)) assert(false, `periodOf atMs: ${atMs}`)
  const cacheKey = `${period}|${timezone}`
  const cached = lastPeriod.get(cacheKey)
  if (cached && cached.startMs <= atMs && atMs < cached.endMs) return cached
  const computed = computePeriod(period, timezone, atMs)
  assert(computed.startMs <= atMs, 'period starts after the instant')
  assert(atMs < computed.endMs, 'period ends at or before the instant')
  if (lastPeriod.size >= PERIOD_CACHE_ENTRIES_MAX) lastPeriod.clear()
  lastPeriod.set(cacheKey, computed)
  return computed
}

/** True when `tz` is an IANA zone this runtime knows (e.g. `Europe/Berlin`, `UTC`). */
export function validTimezone(tz: string): boolean {
  if (tz.length === 0 || tz.length > 64) return false
  try {
    formatterFor(tz)
    return true
  } catch {
    return false
  }
}

/** Bounds the caches: one entry per zone (or per kind × zone) in use, far below this. */
const FORMATTER_CACHE_ENTRIES_MAX = 512
const PERIOD_CACHE_ENTRIES_MAX = 2048
const HOUR_MS = 3_600_000

const formatters = new Map<string, Intl.DateTimeFormat>()
const lastPeriod = new Map<string, Period>()

function formatterFor(timezone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timezone)
  if (!formatter) {
    // Throws RangeError for an unknown zone: validTimezone relies on that.
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    })
    if (formatters.size >= FORMATTER_CACHE_ENTRIES_MAX) formatters.clear()
    formatters.set(timezone, formatter)
  }
  return formatter
}

interface CivilDate {
  readonly year: number
  readonly month: number // 1..12
  readonly day: number
}

interface WallTime extends CivilDate {
  readonly hour: number
  readonly minute: number
  readonly second: number
}

function wallTimeAt(timezone: string, atMs: number): WallTime {
  const parts = formatterFor(timezone).formatToParts(new Date(atMs))
  let year = 0,
    month = 0,
    day = 0,
    hour = 0,
    minute = 0,
    second = 0
  for (const part of parts) {
    const value = Number(part.value)
    switch (part.type) {
      case 'year':
        year = value
        break
      case 'month':
        month = value
        break
      case 'day':
        day = value
        break
      case 'hour':
        hour = value
        break
      case 'minute':
        minute = value
        break
      case 'second':
        second = value
        break
      default:
        break
    }
  }
  return { year, month, day, hour, minute, second }
}

/** Milliseconds the zone is ahead of UTC at `atMs` (Berlin in winter: +3_600_000). */
function offsetMsAt(timezone: string, atMs: number): number {
  const wall = wallTimeAt(timezone, atMs)
  const wallAsUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second)
  const flooredToSecond = atMs - (((atMs % 1000) + 1000) % 1000)
  return wallAsUtc - flooredToSecond
}

function compareCivil(a: CivilDate, b: CivilDate): number {
  return a.year - b.year || a.month - b.month || a.day - b.day
}

/** Normalises overflowing months/days (day 32, month 13) through the proleptic calendar. */
function civil(year: number, month: number, day: number): CivilDate {
  const date = new Date(Date.UTC(year, month - 1, day))
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() }
}

/**
 * The first instant whose local date is `date`: local midnight, or — in zones whose DST jump
 * skips midnight itself (e.g. America/Santiago) — the instant the day actually begins.
 */
export function startOfLocalDay(timezone: string, date: CivilDate): number {
  const wallMidnight = Date.UTC(date.year, date.month - 1, date.day)
  let guess = wallMidnight - offsetMsAt(timezone, wallMidnight)
  const secondOffset = offsetMsAt(timezone, guess)
  guess = wallMidnight - secondOffset
  const wall = wallTimeAt(timezone, guess)
  const isExactMidnight = compareCivil(wall, date) === 0 && wall.hour === 0 && wall.minute === 0 && wall.second === 0
  const isPreviousInstantEarlierDay = compareCivil(wallTimeAt(timezone, guess - 1), date) < 0
  if (isExactMidnight && isPreviousInstantEarlierDay) return guess
  // Midnight does not exist (or is ambiguous) here: search for the first instant of the day.
  // Offsets stay within ±18 h, so the answer lies in this window.
  let low = wallMidnight - 18 * HOUR_MS // local date < date
  let high = wallMidnight + 18 * HOUR_MS // local date >= date
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2)
    if (compareCivil(wallTimeAt(timezone, middle), date) < 0) low = middle
    else high = middle
  }
  return high
}

function computePeriod(period: BudgetPeriod, timezone: string, atMs: number): Period {
  const today = wallTimeAt(timezone, atMs)
  let first: CivilDate
  let next: CivilDate
  let key: string
  switch (period) {
    case 'daily':
      first = civil(today.year, today.month, today.day)
      next = civil(today.year, today.month, today.day + 1)
      key = `${pad4(first.year)}-${pad2(first.month)}-${pad2(first.day)}`
      break
    case 'weekly': {
      const weekday = new Date(Date.UTC(today.year, today.month - 1, today.day)).getUTCDay() // 0 = Sunday
      const sinceMonday = (weekday + 6) % 7
      first = civil(today.year, today.month, today.day - sinceMonday)
      next = civil(first.year, first.month, first.day + 7)
      key = isoWeekKey(first)
      break
    }
    case 'monthly':
      first = civil(today.year, today.month, 1)
      next = civil(today.year, today.month + 1, 1)
      key = `${pad4(first.year)}-${pad2(first.month)}`
      break
    case 'quarterly': {
      const quarter = Math.floor((today.month - 1) / 3) + 1
      first = civil(today.year, (quarter - 1) * 3 + 1, 1)
      next = civil(today.year, quarter * 3 + 1, 1)
      key = `${pad4(first.year)}-Q${quarter}`
      break
    }
    case 'yearly':
      first = civil(today.year, 1, 1)
      next = civil(today.year + 1, 1, 1)
      key = pad4(first.year)
      break
  }
  return { startMs: startOfLocalDay(timezone, first), endMs: startOfLocalDay(timezone, next), key }
}

/** ISO 8601 week of a Monday: the week belongs to the year of its Thursday. */
function isoWeekKey(monday: CivilDate): string {
  const thursday = civil(monday.year, monday.month, monday.day + 3)
  const dayOfYear = (Date.UTC(thursday.year, thursday.month - 1, thursday.day) - Date.UTC(thursday.year, 0, 1)) / (24 * HOUR_MS)
  const week = Math.floor(dayOfYear / 7) + 1
  return `${pad4(thursday.year)}-W${pad2(week)}`
}

function pad2(value: number): string {
  return String(value).padStart(2, '0')
}

function pad4(value: number): string {
  return String(value).padStart(4, '0')
}
