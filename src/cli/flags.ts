/**
 * Flag values → what the admin API takes, checked before anything is sent. Each parser throws
 * commander's InvalidArgumentError, which commander reports with the flag's name (exit 2).
 * Amounts stay decimal strings so "0.1" reaches the server as exactly 100_000 µ$.
 */
import { InvalidArgumentError } from 'commander'
import { parseUsd } from '../money/index.js'
import type { BudgetPeriod, BudgetScopeKind } from '../config/types.js'

/**
 * The budget periods and scope kinds the API takes, restated here so the CLI starts without
 * loading the engine (and zod); `BUDGET_LISTS_COMPLETE` fails the build when the engine gains one.
 */
export const BUDGET_PERIODS = ['daily', 'weekly', 'monthly', 'quarterly', 'yearly'] as const satisfies readonly BudgetPeriod[]
export const BUDGET_SCOPE_KINDS = ['org', 'team', 'user', 'agent', 'key', 'endpoint', 'model', 'provider'] as const satisfies readonly BudgetScopeKind[]
type Complete<All, Listed extends All> = [Exclude<All, Listed>] extends [never] ? true : false
export const BUDGET_LISTS_COMPLETE: [Complete<BudgetPeriod, (typeof BUDGET_PERIODS)[number]>, Complete<BudgetScopeKind, (typeof BUDGET_SCOPE_KINDS)[number]>] =
  [true, true]

/** A positive USD amount with at most six decimals, as the decimal string the API takes. */
export function usdFlag(value: string): string {
  const text = value.trim().replace(/^\$/, '')
  const amount = parseUsd(text)
  if (amount === undefined || amount <= 0) throw new InvalidArgumentError('expected a positive amount of USD with at most 6 decimals, such as 500 or 0.25')
  return text
}

export function positiveIntFlag(value: string): number {
  const number = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < 1) throw new InvalidArgumentError('expected a whole number from 1 up')
  return number
}

/** `50,80,95` → [50, 80, 95]: whole percentages from 1 to 1000. */
export function thresholdsFlag(value: string): number[] {
  const parts = value.split(',').map((part) => part.trim())
  const percents = parts.map(Number)
  const bad = parts.find((part, i) => !/^\d+$/.test(part) || percents[i]! < 1 || percents[i]! > THRESHOLD_PERCENT_MAX)
  if (bad !== undefined)
    throw new InvalidArgumentError(`expected whole percentages from 1 to ${THRESHOLD_PERCENT_MAX} separated by commas, such as 50,80,95 (got "${bad}")`)
  return percents
}

const THRESHOLD_PERCENT_MAX = 1000

export interface ScopeFlag {
  readonly kind: string
  readonly id: string
}

/** `team:marketing` → {kind, id}; the id may itself contain colons (`user:a:b` is user `a:b`). */
export function scopeFlag(value: string): ScopeFlag {
  const colon = value.indexOf(':')
  const kind = colon < 0 ? value : value.slice(0, colon)
  const id = colon < 0 ? '' : value.slice(colon + 1).trim()
  if (!(BUDGET_SCOPE_KINDS as readonly string[]).includes(kind) || id === '') {
    throw new InvalidArgumentError(`expected KIND:ID with KIND one of ${BUDGET_SCOPE_KINDS.join(' | ')}, such as team:marketing`)
  }
  return { kind, id }
}

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?$/
const DAY_MS = 86_400_000

/**
 * An ISO-8601 instant or a YYYY-MM-DD date, as an ISO string. Times without an offset are UTC,
 * like bare dates. A bare date as the END of a range means the end of that day (`--to
 * 2026-05-31` includes the 31st): ranges are half-open, so its value is the next midnight.
 */
export function instantFlag(edge: 'start' | 'end') {
  return (value: string): string => {
    const text = value.trim()
    const date = DATE_ONLY.exec(text)
    if (date) {
      const ms = Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]))
      if (new Date(ms).toISOString().slice(0, 10) !== text) throw new InvalidArgumentError(`${text} is not a calendar date`)
      return new Date(edge === 'end' ? ms + DAY_MS : ms).toISOString()
    }
    if (!DATE_TIME.test(text)) throw new InvalidArgumentError('expected an ISO-8601 date such as 2026-05-01 or 2026-05-01T09:30:00Z')
    const withZone = /(Z|[+-]\d{2}:\d{2})$/.test(text) ? text : `${text}Z`
    const ms = Date.parse(withZone)
    if (!Number.isFinite(ms)) throw new InvalidArgumentError(`${text} is not a valid date and time`)
    return new Date(ms).toISOString()
  }
}

/** An IANA time zone the runtime knows (Europe/Berlin, UTC). */
export function timezoneFlag(value: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value })
    return value
  } catch {
    throw new InvalidArgumentError('expected an IANA time zone such as Europe/Berlin or UTC')
  }
}

/** `team,model` → ['team', 'model'], each one of `allowed`. */
export function listFlag(allowed: readonly string[]) {
  return (value: string): string[] => {
    const names = value
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean)
    const unknown = names.find((name) => !allowed.includes(name))
    if (names.length === 0 || unknown !== undefined) {
      throw new InvalidArgumentError(`expected one or more of ${allowed.join(' | ')} separated by commas${unknown === undefined ? '' : ` (got "${unknown}")`}`)
    }
    return names
  }
}
