/**
 * The date range the usage pages share, kept in the URL (`?from=2026-11-01&to=2026-11-15`) so a
 * view can be linked. Dates are whole days in the browser's time zone; `to` is inclusive on screen
 * and exclusive on the wire (the API's ranges are half-open).
 */
export interface DayRange {
  /** yyyy-mm-dd, first day shown. */
  readonly from: string
  /** yyyy-mm-dd, last day shown (inclusive). */
  readonly to: string
}

const DAY_MS = 86_400_000

export function isoDay(ms: number): string {
  const d = new Date(ms)
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}

/** Local midnight of a yyyy-mm-dd day, in ms. */
export function dayStartMs(day: string): number {
  const [y, m, d] = day.split('-').map(Number)
  return new Date(y ?? 1970, (m ?? 1) - 1, d ?? 1).getTime()
}

/** The last `days` days, today included. */
export function lastDays(days: number, nowMs: number): DayRange {
  return { from: isoDay(nowMs - (days - 1) * DAY_MS), to: isoDay(nowMs) }
}

/** `from`/`to` for the API: local midnight of the first day, local midnight after the last. */
export function wireRange(range: DayRange): { from: string; to: string } {
  return { from: new Date(dayStartMs(range.from)).toISOString(), to: new Date(dayStartMs(range.to) + DAY_MS).toISOString() }
}

/**
 * The days a half-open API range covers, as the range pickers show them: the local day of its
 * start, and the local day of its last instant (`to` is excluded). `wireRange`'s inverse.
 */
export function shownRange(fromIso: string, toIso: string): DayRange {
  return { from: isoDay(Date.parse(fromIso)), to: isoDay(Date.parse(toIso) - 1) }
}

/** The window of the same length just before `range` (for "change vs previous"). */
export function previousRange(range: DayRange): DayRange {
  const lengthDays = Math.round((dayStartMs(range.to) - dayStartMs(range.from)) / DAY_MS) + 1
  return { from: isoDay(dayStartMs(range.from) - lengthDays * DAY_MS + DAY_MS / 2), to: isoDay(dayStartMs(range.from) - DAY_MS / 2) }
}

export function rangeDays(range: DayRange): number {
  return Math.round((dayStartMs(range.to) - dayStartMs(range.from)) / DAY_MS) + 1
}

/** A valid range from URL parameters, or the fallback. */
export function rangeFromParams(params: URLSearchParams, fallback: DayRange): DayRange {
  const from = params.get('from')
  const to = params.get('to')
  const valid = (day: string | null): day is string => day !== null && /^\d{4}-\d{2}-\d{2}$/.test(day) && !Number.isNaN(dayStartMs(day))
  if (!valid(from) || !valid(to) || dayStartMs(from) > dayStartMs(to)) return fallback
  return { from, to }
}
