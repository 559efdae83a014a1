/**
 * The admin API's JSON shapes as the console reads them: snake_case, USD as numbers at this edge
 * (exact `*_micros` beside them where the API sends both). Types only, so the console
 * (console/, its own tsconfig) may import this file without pulling in server code; the server's
 * presenters are typed against the same shapes where they build them.
 */

export type Role = 'admin' | 'team_admin' | 'viewer'

export interface SessionView {
  role: Role
  team_id: string | null
  org_id: string
  /** null for a Bearer caller (no session). */
  expires_at: string | null
  /** Send as `x-tollgate-csrf` on every write made with the session cookie; null for a Bearer caller. */
  csrf_token: string | null
}

export interface ApiIssue {
  path: string
  message: string
}

export interface ApiErrorBody {
  error: { type: string; code: string; message: string; issues?: ApiIssue[]; request_id: string }
}

export const USAGE_DIMENSIONS = ['provider', 'model', 'team', 'user', 'agent', 'endpoint', 'prompt_version', 'environment'] as const
export type UsageDimension = (typeof USAGE_DIMENSIONS)[number]

export interface UsageTotalsView {
  requests: number
  cost_usd: number
  cost_micros: number
  input_tokens: number
  output_tokens: number
  cache_read_tokens: number
  cache_write_5m_tokens: number
  cache_write_1h_tokens: number
  reasoning_tokens: number
  audio_input_tokens: number
  audio_output_tokens: number
}

export interface SpikeHourView {
  bucket_start: string
  cost_usd: number
  trailing_mean_usd: number
}

export interface UsageReportView {
  from: string
  to: string
  bucket: 'minute' | 'hour' | 'day'
  group_by: UsageDimension[]
  totals: UsageTotalsView
  groups: Array<UsageTotalsView & { key: Partial<Record<UsageDimension, string | null>> }>
  /** With `series_groups`, the other groups' points of a bucket are one point with `other: true` and an empty key. */
  series: Array<UsageTotalsView & { bucket_start: string; key: Partial<Record<UsageDimension, string | null>>; other?: true }>
  /** Hours whose spend is a spike (see docs/console.md, "Spike window"). */
  spikes?: SpikeHourView[]
}

export interface UsageTopView {
  from: string
  to: string
  by: UsageDimension
  data: Array<UsageTotalsView & Partial<Record<UsageDimension, string | null>>>
}

export type BudgetScopeKind = 'org' | 'team' | 'user' | 'agent' | 'key' | 'endpoint' | 'model' | 'provider'
export type BudgetPeriodName = 'daily' | 'weekly' | 'monthly' | 'quarterly' | 'yearly'
export type ThresholdActionName = 'notify' | 'degrade' | 'block' | 'block_if_forecast_exceeds'
export type EndpointTierName = 'critical' | 'standard' | 'experimental'

export interface BudgetPostureView {
  period_key: string
  period_start: string
  period_end: string
  spend_usd: number
  reserved_usd: number
  percent: number
  limit_usd: number | null
  /** Spend at period end if the recent rate holds; null before there is enough history. */
  forecast_spend_usd: number | null
  /** When spend reaches the amount at that rate; null when not within the period. */
  forecast_exhaustion_at: string | null
}

export interface BudgetWire {
  id: string
  name: string
  scope: { kind: BudgetScopeKind; id: string; environment?: string }
  period: BudgetPeriodName
  timezone: string
  amount_usd: number
  alert_thresholds: number[]
  threshold_actions: Array<{ threshold_percent: number; action: ThresholdActionName; channels?: string[] }>
  hard_limit: boolean
  shadow: boolean
  categories: string[]
  owner: string | null
  channels: string[] | null
  tier: EndpointTierName | null
  escalate_after: string | null
  source: 'config' | 'api'
  created_at: string
  updated_at: string
  posture: BudgetPostureView
}

export interface WalletView {
  id: string
  scope: string
  scope_kind: 'user' | 'team' | 'org'
  scope_id: string
  /** The team a user wallet belongs to (a team wallet's own id; null for org and team-less user wallets). */
  team_id: string | null
  currency: string
  allocated_usd: number | null
  spent_usd: number | null
  reserved_usd: number | null
  available_usd: number | null
  allocated_micros: number
  spent_micros: number
  reserved_micros: number
  available_micros: number
  created_at: string | null
}

export interface LedgerEntryView {
  id: string
  kind: string
  amount_usd: number | null
  amount_micros: number
  reservation_id: string | null
  description: string | null
  at: string | null
}

export type TicketStatus = 'pending' | 'approved' | 'denied' | 'expired'

/**
 * What became of a ticket's request: `waiting` (held, the caller is still waiting on the
 * decision), `released` (approved, running), `completed`, `refused` (not held, denied, expired or
 * timed out), `failed` (the provider failed it).
 */
export interface TicketRequestView {
  state: 'waiting' | 'released' | 'completed' | 'refused' | 'failed'
  http_status: number | null
  cost_usd: number | null
  finished_at: string | null
}

export interface TicketView {
  id: string
  status: TicketStatus
  reason: string
  scope: string
  team_id: string | null
  request_id: string
  consumer: string
  model: string
  estimate_usd: number | null
  grant_usd: number | null
  note: string | null
  resolved_by: string | null
  created_at: string | null
  expires_at: string | null
  resolved_at: string | null
  /** In lists only. */
  request?: TicketRequestView
}

export interface NotificationView {
  id: string
  type: string
  created_at: string
  title: string
  data: Record<string, unknown>
  read_at: string | null
  /** When someone acknowledged it (stops its escalation); null until then. */
  acknowledged_at: string | null
  /** When it escalates if still unacknowledged; null when it does not escalate. */
  escalate_at: string | null
  /** When the escalation notice went out; null if it has not. */
  escalated_at: string | null
}

/** Every notification type: the inbox, webhooks and preferences use these names. */
export const NOTIFICATION_TYPE_NAMES = [
  'budget.threshold',
  'budget.forecast',
  'budget.spike',
  'budget.blocked',
  'budget.escalated',
  'wallet.threshold',
  'wallet.exhausted',
  'ticket.created',
  'ticket.digest',
  'ticket.resolved',
] as const
export type NotificationTypeName = (typeof NOTIFICATION_TYPE_NAMES)[number]

export interface NotificationPreferenceView {
  subject: { type: 'user' | 'role'; id: string }
  /** Channel ids per type; a type absent sends nothing on this subject's behalf. */
  types: Partial<Record<NotificationTypeName, string[]>>
  updated_at: string
}

export interface UsageEventView {
  id: string
  request_id: string
  /** The sender's id of an ingested event (`externalRequestId`); null for proxied calls. */
  external_request_id: string | null
  occurred_at: string
  team_id: string | null
  user_id: string | null
  agent_id: string | null
  key_name: string | null
  endpoint_tag: string | null
  prompt_version: string | null
  environment: string
  provider: string
  model_requested: string
  model_served: string
  endpoint: string
  status: string
  http_status: number
  is_stream: boolean
  decision: string
  data_mode: 'real' | 'demo'
  /** Who recorded it: the gateway (a proxied call), `ingest` (POST /v1/events) or `direct` (a settled reservation). */
  source: 'gateway' | 'ingest' | 'direct'
  tokens: {
    input: number
    cache_read: number
    cache_write_5m: number
    cache_write_1h: number
    output: number
    reasoning: number
    audio_input: number
    audio_output: number
  }
  /** Server-side searches charged per call: web searches and OpenAI file searches. */
  web_searches: number
  file_searches: number
  /**
   * Which fee the web searches paid when not the model's own: `web_search_preview`, or a chat
   * search model's by context size (`chat:low`, `chat:medium`, `chat:high`, `chat:unknown`).
   */
  web_search_kind: string | null
  cost_usd: number
  cost_micros: number
  /** What the sender of an ingested event said it cost; never what is counted. */
  reported_cost_usd: number | null
  price_source: string
  /** `reported` by the provider, `counted` by Tollgate, or `estimated` (an upper bound; `usage_note` says why). */
  usage_source: 'reported' | 'counted' | 'estimated'
  usage_note: string | null
  /** How the cost was made, part by part; null for events recorded without one (a direct settle). */
  cost_breakdown: CostBreakdownView | null
  latency_ms: number
  reservation_id: string | null
  wallet_id: string | null
}

export interface CostBreakdownView {
  /** The price tier applied (`base`, or a long-context tier). */
  tier: string
  /**
   * Set when the call was served at a service tier the catalogue has no prices for (OpenAI
   * `priority`, `flex`…): its token prices are the standard ones × `price_percent` / 100, an upper
   * bound of the provider's.
   */
  service_tier: { name: string; price_percent: number; upper_bound: boolean } | null
  total_micros: number
  parts: Array<{
    part: string
    tokens: number
    unit_usd_per_mtok: number
    unit_micros_per_mtok: number
    cost_usd: number
    cost_micros: number
    /** Priced at the model's dearest known rate of its kind, because the source gives none for it. */
    fallback: boolean
  }>
}

export interface ExportJobView {
  id: string
  type: 'events' | 'ledger' | 'budgets'
  format: 'csv' | 'ndjson'
  /** `expired`: completed, then its file was deleted once `exports.retention_hours` had passed. */
  status: 'queued' | 'running' | 'completed' | 'failed' | 'expired'
  progress: number
  rows_written: number
  rows_total: number | null
  error: string | null
  download_url: string | null
  /** When the file is (completed) or was (expired) deleted; null otherwise. */
  expires_at?: string | null
  /** Set once expired. */
  expired_at?: string | null
  created_at?: string
  date_from?: string
  date_to?: string
}

export interface ListOf<T> {
  data: T[]
}

export interface NotificationPreferencesList {
  data: NotificationPreferenceView[]
  /** Configured channels: id and type only. */
  channels: Array<{ id: string; type: 'webhook' | 'slack' | 'email' }>
}

// ------------------------------------------------------------------ policy replay (POST /v1/replays)

/** A usage event's decision word, as a replay reports it. */
export type ReplayDecision = 'allowed' | 'degraded' | 'would_block' | 'budget_cap_exceeded' | 'insufficient_quota' | 'unenforced'

export interface ReplayExample {
  readonly event_id: string
  readonly request_id: string
  readonly at: string
  readonly model: string
  readonly endpoint_tag: string | null
  readonly cost_micros: number
}

export interface ReplayStat {
  count: number
  first_at: string | null
  last_at: string | null
  examples: ReplayExample[]
}

export interface ThresholdFiring {
  readonly threshold_percent: number | null
  /** `threshold` when spend reached the mark; `blocked` at the first refusal of a period. */
  readonly kind: 'threshold' | 'blocked'
  readonly action: 'notify' | 'degrade' | 'block' | 'block_if_forecast_exceeds' | 'would_block' | null
  readonly period: string | null
  readonly at: string
}

/** How often one threshold (or the first refusal of a period) fired over the whole window. */
export interface ThresholdCount {
  readonly threshold_percent: number | null
  readonly kind: 'threshold' | 'blocked'
  readonly action: ThresholdFiring['action']
  readonly count: number
  readonly first_at: string
  readonly last_at: string
}

export interface ScopeReport {
  readonly key: string
  readonly kind: 'budget' | 'wallet'
  readonly scope: string
  readonly budget_id: string | null
  readonly name: string | null
  readonly blocked: ReplayStat
  readonly degraded: ReplayStat
  readonly would_block: ReplayStat
  readonly critical_refusals: ReplayStat
  avoided_micros: number
  /** The first firings, in time order: at most 100 per scope and 10,000 per report. */
  readonly thresholds: ThresholdFiring[]
  /** Every firing, listed or not. */
  thresholds_total: number
  /** True when `thresholds` lists fewer than `thresholds_total`. */
  thresholds_truncated: boolean
  /** Per threshold that fired: how often, first and last time (complete, whatever was listed). */
  readonly threshold_counts: ThresholdCount[]
}

export interface ReplaySeriesPoint {
  readonly bucket_start: string
  baseline_micros: number
  replayed_micros: number
  avoided_micros: number
}

export interface ReplayTotals {
  events: number
  /** What the events cost as recorded. */
  recorded_cost_micros: number
  /** What they would cost with no policy (served as requested). */
  baseline_cost_micros: number
  /** What they would cost under the proposed policy. */
  replayed_cost_micros: number
  avoided_micros: number
  /** Events whose replayed decision differs from the recorded one. */
  changed_decisions: number
  /** Events the recording refused, so their cost is an estimate. */
  estimated_costs: number
  critical_refusals: number
  /** Events decided by a wallet scope outside the policy that the report had no room left to list (counted in these totals only). */
  unlisted_scope_events: number
  decisions: Partial<Record<ReplayDecision, number>>
  recorded_decisions: Partial<Record<ReplayDecision, number>>
}

export interface ReplayReport {
  readonly totals: ReplayTotals
  readonly scopes: ScopeReport[]
  readonly series: ReplaySeriesPoint[]
}

/** `POST /v1/replays` and `GET /v1/replays/{id}`. */
export interface ReplayJobView {
  id: string
  status: 'running' | 'done' | 'failed'
  from: string
  to: string
  team_id: string | null
  started_at: string
  finished_at: string | null
  progress: { processed: number; total: number }
  error?: string
  report?: ReplayReport
}
