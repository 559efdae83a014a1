/**
 * The columns of each export type, in file order. Money is integer micro-dollars (`*_micros`)
 * with an exact USD decimal string beside it (`*_usd`, never a float); instants are ISO-8601 UTC.
 * Events and ledger entries are mapped from the store's raw rows, so both SQL stores export the
 * same file for the same data.
 */
import { formatUsd, micros } from '../money/index.js'
import type { ExportRow, ExportType } from './types.js'

const iso = (ms: unknown): string | null => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString())
const text = (value: unknown): string | null => (value === null || value === undefined ? null : String(value))
const int = (value: unknown): number => Number(value)
const usd = (value: unknown): string => formatUsd(micros(Number(value)))

/** One usage_events row → one export row (same names as the event list where they overlap). */
export function eventRow(r: Record<string, unknown>): ExportRow {
  return {
    id: text(r.id),
    request_id: text(r.request_id),
    occurred_at: iso(r.at_ms),
    team_id: text(r.team_id),
    user_id: text(r.user_id),
    agent_id: text(r.agent_id),
    key_name: text(r.key_name),
    endpoint_tag: text(r.endpoint_tag),
    prompt_version: text(r.prompt_version),
    environment: text(r.environment),
    provider: text(r.provider),
    model_requested: text(r.model_requested),
    model_served: text(r.model_served),
    endpoint: text(r.endpoint),
    status: text(r.status),
    http_status: int(r.http_status),
    is_stream: Number(r.is_stream) === 1,
    decision: text(r.decision),
    data_mode: text(r.data_mode),
    source: text(r.source),
    external_request_id: text(r.external_request_id),
    input_tokens: int(r.input_tokens),
    cache_read_tokens: int(r.cache_read_tokens),
    cache_write_tokens: int(r.cache_write_tokens),
    cache_write_1h_tokens: int(r.cache_write_1h_tokens),
    output_tokens: int(r.output_tokens),
    reasoning_tokens: int(r.reasoning_tokens),
    audio_input_tokens: int(r.audio_input_tokens),
    audio_output_tokens: int(r.audio_output_tokens),
    // Server-side searches charged per call (replay prices them again from these counts).
    web_searches: int(r.web_searches),
    file_searches: int(r.file_searches),
    web_search_kind: text(r.web_search_kind),
    cost_micros: int(r.cost_micros),
    cost_usd: usd(r.cost_micros),
    price_source: text(r.price_source),
    usage_source: text(r.usage_source),
    usage_note: text(r.usage_note),
    latency_ms: int(r.latency_ms),
    reservation_id: text(r.reservation_id),
    wallet_id: text(r.wallet_id),
    cost_breakdown: r.cost_breakdown_json === null || r.cost_breakdown_json === undefined ? null : (JSON.parse(String(r.cost_breakdown_json)) as object),
  }
}

/** One ledger entry joined with its wallet (`scope_kind`, `scope_id`, `wallet_team_id`). */
export function ledgerRow(r: Record<string, unknown>): ExportRow {
  const kind = String(r.scope_kind)
  return {
    // SQLite numbers entries; PostgreSQL also stores an id.
    id: r.id === undefined || r.id === null ? `led_${String(r.seq)}` : text(r.id),
    at: iso(r.at_ms),
    wallet_id: text(r.wallet_id),
    wallet_scope: `${kind}:${String(r.scope_id)}`,
    team_id: kind === 'team' ? text(r.scope_id) : text(r.wallet_team_id),
    kind: text(r.kind),
    amount_micros: int(r.amount_micros),
    amount_usd: usd(r.amount_micros),
    reservation_id: text(r.reservation_id),
    description: text(r.description),
  }
}

/** One budget period, as the budgets export builds it (budget-rows.ts). */
export interface BudgetPeriodRecord {
  readonly budgetId: string
  readonly name: string
  readonly scopeKind: string
  readonly scopeId: string
  readonly environment: string | undefined
  readonly period: string
  readonly timezone: string
  readonly periodKey: string
  readonly periodStartMs: number
  readonly periodEndMs: number
  readonly amountMicros: number
  readonly spentMicros: number
  readonly reservedMicros: number
  readonly hardLimit: boolean
  readonly shadow: boolean
}

export function budgetRow(b: BudgetPeriodRecord): ExportRow {
  return {
    budget_id: b.budgetId,
    name: b.name,
    scope_kind: b.scopeKind,
    scope_id: b.scopeId,
    environment: b.environment ?? null,
    period: b.period,
    timezone: b.timezone,
    period_key: b.periodKey,
    period_start: iso(b.periodStartMs),
    period_end: iso(b.periodEndMs),
    amount_micros: b.amountMicros,
    amount_usd: usd(b.amountMicros),
    spent_micros: b.spentMicros,
    spent_usd: usd(b.spentMicros),
    reserved_micros: b.reservedMicros,
    reserved_usd: usd(b.reservedMicros),
    // Two decimals, from integers: 12.34 means 12.34 % of the amount spent.
    percent_spent: Math.floor((b.spentMicros * 10_000) / b.amountMicros) / 100,
    hard_limit: b.hardLimit,
    shadow: b.shadow,
  }
}

/** The header of each type: what `*Row` returns, in that order (the CSV writer checks it). */
export const EXPORT_COLUMNS: Record<ExportType, readonly string[]> = {
  events: Object.keys(eventRow(sampleEvent())),
  ledger: ['id', 'at', 'wallet_id', 'wallet_scope', 'team_id', 'kind', 'amount_micros', 'amount_usd', 'reservation_id', 'description'],
  budgets: [
    'budget_id',
    'name',
    'scope_kind',
    'scope_id',
    'environment',
    'period',
    'timezone',
    'period_key',
    'period_start',
    'period_end',
    'amount_micros',
    'amount_usd',
    'spent_micros',
    'spent_usd',
    'reserved_micros',
    'reserved_usd',
    'percent_spent',
    'hard_limit',
    'shadow',
  ],
}

function sampleEvent(): Record<string, unknown> {
  return { at_ms: 0, cost_micros: 0, cost_breakdown_json: null, is_stream: 0 }
}
