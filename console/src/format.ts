/**
 * Display formatting, pure. The API sends USD as numbers at its edge; the console only formats
 * them. Small amounts keep enough digits to be told apart (a $0.0004 call is not "$0.00").
 */

const usdWhole = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 })
const usdSmall = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 6 })
const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 })

export function formatUsd(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  return Math.abs(value) >= 1 || value === 0 ? usdWhole.format(value) : usdSmall.format(value)
}

export function formatCount(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  return value >= 100_000 ? compact.format(value) : integer.format(value)
}

/** 42.5 → "42.5%"; at most one decimal. */
export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  return `${Math.round(value * 10) / 10}%`
}

const CHANGE_AS_MULTIPLE_PERCENT = 900

/** Change against a previous value: "+12%", "−40%", "×48" from ten times up, "new" when there was nothing before. */
export function formatChange(current: number, previous: number | undefined): string {
  if (previous === undefined || previous === 0) return current > 0 ? 'new' : '—'
  const change = ((current - previous) / previous) * 100
  // Past ten times, a multiple reads better than "+4783%".
  if (change >= CHANGE_AS_MULTIPLE_PERCENT) return `×${Math.round(current / previous)}`
  const rounded = Math.round(change)
  if (rounded === 0) return '±0%'
  return rounded > 0 ? `+${rounded}%` : `−${Math.abs(rounded)}%`
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const date = new Date(iso)
  return date.toLocaleString('en-GB', { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—'
  return new Date(iso).toLocaleDateString('en-GB', { year: 'numeric', month: 'short', day: 'numeric' })
}

/** "in 3 h", "2 min ago": for expiry and waiting times. */
export function formatRelative(iso: string | null | undefined, nowMs: number): string {
  if (!iso) return '—'
  const deltaMs = Date.parse(iso) - nowMs
  const minutes = Math.round(Math.abs(deltaMs) / 60_000)
  const text = minutes < 1 ? 'less than a minute' : minutes < 120 ? `${minutes} min` : `${Math.round(minutes / 60)} h`
  return deltaMs >= 0 ? `in ${text}` : `${text} ago`
}

/** `team:growth` → "team growth"; null keys (no user, no endpoint tag) read as "(none)". */
export function labelOf(value: string | null | undefined): string {
  return value === null || value === undefined || value === '' ? '(none)' : value
}
