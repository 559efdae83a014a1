/** The port usage events are written to and reported from. */
import { micros, type Micros } from '../money/index.js'
import type { ScannedEvent, UsageEvent, UsageGroupBy } from './types.js'

export interface UsageQuery {
  readonly orgId: string
  /** Half-open [fromMs, toMs). */
  readonly fromMs: number
  readonly toMs: number
  readonly groupBy: readonly UsageGroupBy[]
  readonly bucketMs: number
  /** Restricts to one team (a team_admin sees only their own). */
  readonly teamId: string | undefined
  readonly environment: string | undefined
  /** `real` or `demo` events only; undefined: both. */
  readonly dataMode?: 'real' | 'demo' | undefined
}

export interface UsageTotals {
  requests: number
  costMicros: Micros
  inputTokens: number
  outputTokens: number
  cacheReadTokens: number
  /** Every cache write, 5-minute and 1-hour; `cacheWrite1hTokens` is the 1-hour part of it. */
  cacheWriteTokens: number
  cacheWrite1hTokens: number
  reasoningTokens: number
  audioInputTokens: number
  audioOutputTokens: number
}

/** Totals of nothing: the start of every sum. */
export function zeroTotals(): UsageTotals {
  return {
    requests: 0,
    costMicros: micros(0),
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    cacheWrite1hTokens: 0,
    reasoningTokens: 0,
    audioInputTokens: 0,
    audioOutputTokens: 0,
  }
}

/** Adds `t` into `into`, every column. */
export function addTotals(into: UsageTotals, t: UsageTotals): void {
  into.requests += t.requests
  into.costMicros = (into.costMicros + t.costMicros) as Micros
  into.inputTokens += t.inputTokens
  into.outputTokens += t.outputTokens
  into.cacheReadTokens += t.cacheReadTokens
  into.cacheWriteTokens += t.cacheWriteTokens
  into.cacheWrite1hTokens += t.cacheWrite1hTokens
  into.reasoningTokens += t.reasoningTokens
  into.audioInputTokens += t.audioInputTokens
  into.audioOutputTokens += t.audioOutputTokens
}

/** `GET /v1/usage/events`: one page, newest first. */
export interface UsageEventQuery {
  readonly orgId: string
  /** Half-open [fromMs, toMs). */
  readonly fromMs: number
  readonly toMs: number
  readonly teamId?: string | undefined
  readonly userId?: string | undefined
  /** The model served. */
  readonly model?: string | undefined
  readonly endpointTag?: string | undefined
  readonly environment?: string | undefined
  readonly dataMode?: 'real' | 'demo' | undefined
  readonly usageSource?: UsageEvent['usageSource'] | undefined
  readonly source?: UsageEvent['source'] | undefined
  /** Events strictly older than this (at_ms, id): the previous page's last one. */
  readonly before?: { readonly atMs: number; readonly id: string } | undefined
  readonly limit: number
}

export interface UsageGroup extends UsageTotals {
  readonly key: Readonly<Partial<Record<UsageGroupBy, string | null>>>
}

export interface UsageSeriesPoint extends UsageTotals {
  readonly bucketStartMs: number
  readonly key: Readonly<Partial<Record<UsageGroupBy, string | null>>>
}

export interface UsageReport {
  readonly totals: UsageTotals
  readonly groups: UsageGroup[]
  readonly series: UsageSeriesPoint[]
}

export interface UsageStore {
  /** Writes a batch in one transaction. Events with an `externalRequestId` already stored for their team are skipped. */
  insertBatch(events: readonly UsageEvent[]): Promise<void>
  /** For ingestion: true when stored, false when its team already had its externalRequestId. */
  insertIngested(event: UsageEvent): Promise<boolean>
  query(query: UsageQuery): Promise<UsageReport>
  /**
   * Spend per bucket start (buckets without events absent) under the same filters as `query`,
   * without groups: the spike window's hourly input, cheaper than a report (one sum, no series).
   */
  spendSeries(query: Omit<UsageQuery, 'groupBy'>): Promise<Map<number, Micros>>
  /** One page of events matching every given filter, newest first (at_ms, then id, descending). */
  listEvents(query: UsageEventQuery): Promise<UsageEvent[]>
  /**
   * What became of each request (its latest event at or after `sinceMs`), for the cost-ticket
   * list; unknown ids are absent. Only the gateway's own events count: an ingested event's or a
   * direct reservation's request id is the caller's choice, and a caller naming a refused
   * request's id must not change what its ticket shows. `sinceMs` (the oldest ticket's creation,
   * less some slack) bounds the read to the events a ticket can have.
   */
  requestOutcomes(orgId: string, requestIds: readonly string[], sinceMs: number): Promise<Map<string, RequestOutcome>>
  /**
   * Events of `[fromMs, toMs)` in time order (ties by id), strictly after `after`, at most `limit`:
   * keyset pages for replay, which reads a window of any size without holding it in memory.
   */
  scan(q: UsageScan, after: ScanCursor | undefined, limit: number): Promise<ScannedEvent[]>
}

export interface UsageScan {
  readonly orgId: string
  readonly fromMs: number
  readonly toMs: number
  readonly teamId: string | undefined
  readonly dataMode: 'real' | 'demo' | undefined
}

/** The last event of the previous page. */
export interface ScanCursor {
  readonly atMs: number
  readonly id: string
}

export interface RequestOutcome {
  readonly status: UsageEvent['status']
  readonly httpStatus: number
  readonly costMicros: Micros
  readonly atMs: number
}

/** At most this many request ids per `requestOutcomes` call. */
export const REQUEST_OUTCOMES_MAX = 500

/** Column name of each group-by dimension, shared by the SQL adapters. */
export const GROUP_COLUMN: Record<UsageGroupBy, string> = {
  provider: 'provider',
  model: 'model_served',
  team: 'team_id',
  user: 'user_id',
  agent: 'agent_id',
  endpoint: 'endpoint_tag',
  prompt_version: 'prompt_version',
  environment: 'environment',
}
