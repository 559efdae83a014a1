/**
 * A usage event: one priced call, whether it passed through the gateway or was ingested through
 * `POST /v1/events`. Budgets, reports, exports and replay all read these.
 */
import type { Micros } from '../money/index.js'
import type { Endpoint, Usage } from '../providers/types.js'
import type { CostBreakdown } from '../pricing/types.js'
import type { WebSearchKind } from '../pricing/tool-fees.js'

/**
 * Where an event's numbers come from: the provider's report; `counted` by Tollgate (the
 * tokenizer on what passed through); or `estimated` — an upper bound of what the provider can
 * bill, with `usageNote` saying why (no usage reported, a cut stream on a model with hidden
 * reasoning, a timeout, …).
 */
export type EventUsageSource = 'reported' | 'counted' | 'estimated'

/** Who spent: everything a budget scope or a report can group by. */
export interface Attribution {
  readonly orgId: string
  readonly teamId: string | undefined
  readonly userId: string | undefined
  /**
   * True when `userId` is the key's own user. A user named by the call instead (header, body
   * `user`, ingested `userId`) is reported, but only selects a user wallet or user budget that
   * belongs to the key's team.
   */
  readonly userFromKey: boolean
  readonly agentId: string | undefined
  /** Consumer group name (a budget's `key` scope). */
  readonly keyName: string | undefined
  readonly endpointTag: string | undefined
  readonly promptVersion: string | undefined
  readonly environment: string
}

export type UsageStatus = 'ok' | 'upstream_error' | 'cut' | 'refused' | 'error'

/** What the spend controls decided for this call. */
export type UsageDecision = 'allowed' | 'degraded' | 'would_block' | 'budget_cap_exceeded' | 'insufficient_quota' | 'unenforced'

export interface UsageEvent {
  readonly id: string
  readonly requestId: string
  readonly atMs: number
  readonly attribution: Attribution
  readonly provider: string
  readonly targetId: string | undefined
  readonly modelRequested: string
  readonly modelServed: string
  /** The API that was called; `ingested` for `POST /v1/events`, `direct` for a settled `POST /v1/reservations`. */
  readonly endpoint: Endpoint | 'ingested' | 'direct'
  /**
   * Tokens by kind, and the server-side searches charged (`webSearches`, `fileSearches`; stored
   * as counts, so replay prices them again like tokens). `webFetches` is not stored: it has no fee.
   */
  readonly usage: Usage
  /**
   * Which fee the web searches were charged when not the model's own (OpenAI's
   * `web_search_preview`, a chat search model's by context size): replay needs it to price them
   * as the live path did. Undefined: the model's own fee, or no web searches.
   */
  readonly webSearchKind?: WebSearchKind | undefined
  readonly usageSource: EventUsageSource
  /** Why the usage is counted or estimated (`cut_before_usage`, `hidden_reasoning`, …); undefined when reported. */
  readonly usageNote: string | undefined
  /** How the cost was made: each part's tokens, unit price and cost, and the price tier. */
  readonly costBreakdown: CostBreakdown | undefined
  readonly costMicros: Micros
  /** Which price was used (catalogue version or override), so a bill can be explained later. */
  readonly priceSource: string
  readonly latencyMs: number
  readonly status: UsageStatus
  readonly httpStatus: number
  readonly isStream: boolean
  readonly decision: UsageDecision
  readonly reservationId: string | undefined
  readonly walletId: string | undefined
  readonly dataMode: 'real' | 'demo'
  readonly source: 'gateway' | 'ingest' | 'direct'
  readonly externalRequestId: string | undefined
  /**
   * The cost the sender reported for an ingested event (`costUsd`), kept beside `costMicros` for
   * reconciliation; never what budgets or reports count.
   */
  readonly reportedCostMicros?: Micros | undefined
}

/**
 * What replay reads of an event. `attribution.userFromKey` is read where it was stored (events
 * since `user_from_key`: `userFromKeyStored`); for older events the scan reports false and replay
 * infers it from today's consumer keys (a key bound to the event's user). Nor is
 * `usage.serviceTier` a column: the scan reads it back from the price source, which names it.
 * The searches (`usage.webSearches`, `usage.fileSearches`, `webSearchKind`) are read so that a
 * repriced call keeps its search fees.
 */
export type ScannedEvent = Pick<
  UsageEvent,
  | 'id'
  | 'requestId'
  | 'atMs'
  | 'attribution'
  | 'provider'
  | 'modelRequested'
  | 'modelServed'
  | 'endpoint'
  | 'usage'
  | 'webSearchKind'
  | 'costMicros'
  | 'status'
  | 'decision'
  | 'source'
> & {
  /** Whether `attribution.userFromKey` is the stored fact (false: not stored, replay infers it). */
  readonly userFromKeyStored?: boolean
}

export const USAGE_GROUP_BY = ['provider', 'model', 'team', 'user', 'agent', 'endpoint', 'prompt_version', 'environment'] as const
export type UsageGroupBy = (typeof USAGE_GROUP_BY)[number]
