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

/** Parts of a cost billed per call, not per token (the API prices them per million calls too). */
const PER_CALL_PARTS = new Set(['web_search', 'file_search'])

/**
 * One line of a cost breakdown as a reader says it: "output · 40 tokens at $10.00/M", and for a
 * per-call fee "web search · 3 searches at $10.00 per 1,000" (not "3 tokens at $10,000.00/M").
 */
export function costPartLabel(line: { part: string; tokens: number; unit_usd_per_mtok: number }): string {
  const name = line.part.replaceAll('_', ' ')
  if (PER_CALL_PARTS.has(line.part)) {
    return `${name} · ${formatCount(line.tokens)} ${line.tokens === 1 ? 'search' : 'searches'} at ${formatUsd(line.unit_usd_per_mtok / 1000)} per 1,000`
  }
  return `${name} · ${formatCount(line.tokens)} tokens at ${formatUsd(line.unit_usd_per_mtok)}/M`
}

/** A call's server-side searches, e.g. "3 web (chat:medium) · 1 file"; undefined when it made none. */
export function searchesLabel(event: { web_searches: number; file_searches: number; web_search_kind: string | null }): string | undefined {
  const parts: string[] = []
  if (event.web_searches > 0) parts.push(`${formatCount(event.web_searches)} web${event.web_search_kind ? ` (${event.web_search_kind})` : ''}`)
  if (event.file_searches > 0) parts.push(`${formatCount(event.file_searches)} file`)
  return parts.length === 0 ? undefined : parts.join(' · ')
}
