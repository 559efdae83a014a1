/**
 * The validated, normalised, deep-frozen configuration every other module reads. `config/load.ts`
 * turns YAML into this; nothing outside `config/` sees the raw YAML shape. Money is
 * already Micros, durations are milliseconds, secrets are resolved from the environment.
 */
import type { Micros } from '../money/index.js'
import type { ProviderKind } from '../providers/types.js'

export interface ProviderTarget {
  readonly id: string
  readonly provider: ProviderKind
  /** Follows the provider's own client convention: OpenAI's includes `/v1`, Anthropic's does not. Undefined for `mock`. */
  readonly baseUrl: string | undefined
  /** Resolved from `secret_key_ref.env`; undefined when the target needs none (mock) or it was not required. */
  readonly apiKey: string | undefined
  readonly apiKeyEnv: string | undefined
  readonly timeoutMs: number
  /** Open connections to the target's origin at most, per process; calls beyond wait for one (tollgate_upstream_queued_requests). */
  readonly connectionsMax: number
  /**
   * OpenAI targets only: the tier the upstream project serves a call that asks for `auto` or names
   * no tier (the project's settings decide it, and the request cannot tell). Absent elsewhere.
   */
  readonly serviceTierDefault?: OpenAiServiceTier
}

/** The service tiers an OpenAI project can be set to serve `auto` at. */
export type OpenAiServiceTier = 'default' | 'flex' | 'priority' | 'scale'

export type InsufficientFundsPolicy = 'refuse' | 'hold'
export type FailMode = 'closed' | 'open'

export interface ConsumerGroup {
  readonly name: string
  /** sha256 hex of the consumer key; the key itself is never kept. */
  readonly apiKeyHash: string
  readonly orgId: string
  readonly teamId: string | undefined
  readonly userId: string | undefined
  readonly agentId: string | undefined
  readonly environment: string
  readonly endpointTag: string | undefined
  readonly onInsufficientFunds: InsufficientFundsPolicy
  readonly holdTimeoutMs: number
  readonly failMode: FailMode
  readonly emergencyAllowanceMicros: Micros
  /**
   * Whether calls may name a user (`x-tollgate-user`, OpenAI's `user`). A key bound to a user
   * (`userId`) always pays and is budgeted as that user; a named user only selects a user wallet
   * or user budget of this key's team. False: naming a user is refused.
   */
  readonly allowNamedUsers: boolean
  /** Output cap given to this consumer's requests that set none (instead of the model's maximum). */
  readonly defaultOutputTokens: number | undefined
  /**
   * Set on keys a team_admin bound to a user: that user is the team's member only, so the key pays
   * from and is budgeted by that user's wallet and budgets of the key's team, as a named user is
   * (otherwise a team_admin could spend another team's user wallet by binding a key to its user).
   */
  readonly userWithinTeam?: true
}

export type ThresholdActionKind = 'notify' | 'degrade' | 'block'

export interface BudgetAlert {
  readonly thresholdPercent: number
  readonly action: ThresholdActionKind
}

/**
 * What a budget may do at a threshold: the wallet alert actions, plus `block_if_forecast_exceeds`
 * (block only when the burn-rate forecast confirms the budget runs out within its period).
 */
export type BudgetActionKind = ThresholdActionKind | 'block_if_forecast_exceeds'

/** A budget's threshold action; `channels` routes its notices (instead of the budget's channels). */
export interface BudgetThresholdAction {
  readonly thresholdPercent: number
  readonly action: BudgetActionKind
  readonly channels?: readonly string[] | undefined
}

/** Endpoint criticality: shorthand for a set of threshold actions (budgets/tiers.ts). */
export type EndpointTier = 'critical' | 'standard' | 'experimental'

export interface CostTracking {
  readonly enabled: boolean
  readonly walletEnforcement: boolean
  /** Sorted by thresholdPercent ascending. Percent of the wallet's allocation. */
  readonly budgetAlerts: readonly BudgetAlert[]
}

export interface ModelPriceOverride {
  readonly inputMicrosPerMtok: number
  readonly outputMicrosPerMtok: number
  readonly cacheReadMicrosPerMtok: number | undefined
  readonly cacheWriteMicrosPerMtok: number | undefined
  readonly cacheWrite1hMicrosPerMtok: number | undefined
  readonly audioInputMicrosPerMtok: number | undefined
  readonly audioOutputMicrosPerMtok: number | undefined
  /** Server-side tool fees, µ$ per 1,000 calls (exact: the YAML value is whole micro-dollars). */
  readonly webSearchMicrosPerKcall: number | undefined
  readonly fileSearchMicrosPerKcall: number | undefined
}

export interface ModelRoute {
  /** The name consumers send. */
  readonly name: string
  /** Target id that serves it; undefined = the first target whose provider speaks the called API. */
  readonly target: string | undefined
  /** Model name sent upstream (rename); defaults to `name`. */
  readonly upstreamModel: string
  readonly pricing: ModelPriceOverride | undefined
  /** Cheaper model to route to when a `degrade` threshold action applies. */
  readonly degradeTo: string | undefined
  /** Largest output the model produces; the cap given to requests that set none. */
  readonly outputTokensMax: number | undefined
}

export type BudgetScopeKind = 'org' | 'team' | 'user' | 'agent' | 'key' | 'endpoint' | 'model' | 'provider'
export type BudgetPeriod = 'daily' | 'weekly' | 'monthly' | 'quarterly' | 'yearly'

export interface BudgetSpec {
  readonly id: string | undefined
  readonly name: string
  readonly scopeKind: BudgetScopeKind
  readonly scopeId: string
  /**
   * Only calls of this team count (any scope but org/team). A user named by a call (not bound to
   * its key) counts only toward user budgets of the key's team.
   */
  readonly scopeTeamId: string | undefined
  readonly environment: string | undefined
  readonly period: BudgetPeriod
  readonly timezone: string
  readonly amountMicros: Micros
  readonly alertThresholds: readonly number[]
  readonly thresholdActions: readonly BudgetThresholdAction[]
  readonly hardLimit: boolean
  readonly shadow: boolean
  readonly categories: readonly string[]
  /** A channel id (the owner's own channel: it receives every notice of the budget) or a name recorded on notices. */
  readonly owner: string | undefined
  readonly channels: readonly string[] | undefined
  /** Explicit tier; an endpoint budget without one takes its endpoint's tier from `endpoint_tiers`. */
  readonly tier?: EndpointTier | undefined
  /** A threshold notice unacknowledged this long sends one escalation notice (owner + escalation channels). */
  readonly escalateAfterMs?: number | undefined
}

export type NotificationChannel =
  | { readonly id: string; readonly type: 'webhook'; readonly url: string; readonly secret: string | undefined }
  | { readonly id: string; readonly type: 'slack'; readonly webhookUrl: string }
  | {
      readonly id: string
      readonly type: 'email'
      readonly smtpUrl: string
      readonly from: string
      readonly to: readonly string[]
    }

/** Outbox delivery: attempts and capped exponential back-off. */
export interface NotificationDelivery {
  readonly attemptsMax: number
  readonly backoffBaseMs: number
  readonly backoffCapMs: number
  readonly pollIntervalMs: number
}

/** Export jobs (docs/exports.md). */
export interface ExportSettings {
  /** Folder of the export files; undefined: `exports/` beside the SQLite file, or `./data/exports`. */
  readonly dir: string | undefined
  readonly leaseMs: number
  /** A completed export's file is kept this long, then deleted and the job `expired`. */
  readonly retentionHours: number
  /** Queued + running jobs per org. */
  readonly jobsPendingMax: number
  /** Queued + running jobs of one team, for team-confined tokens (at most `jobsPendingMax`). */
  readonly teamJobsPendingMax: number
  /** Completed, still-kept exports of one team before a team-confined token may start another. */
  readonly teamFilesKeptMax: number
  /** Bytes of the kept and being-written export files of one team (of the jobs scoped to it). */
  readonly teamBytesKeptMax: number
  /** Free bytes the exports folder's disk keeps; a job fails below it. 0: no check. */
  readonly diskFreeMinBytes: number
}

export interface ReservationSettings {
  /** A reservation not settled or voided by then is settled at the reserved amount by the sweeper. */
  readonly ttlMs: number
  readonly sweepIntervalMs: number
  /** Output cap given to a request that sets none and whose model has no known maximum. */
  readonly defaultOutputTokens: number
  /** Prompts above this many bytes are estimated by byte length (an upper bound) instead of the tokenizer. */
  readonly tokenizerMaxBytes: number
}

export interface ServerSettings {
  readonly host: string
  readonly port: number
  readonly bodyLimitBytes: number
  /** Pending connections the listening socket holds (listen(2) backlog). */
  readonly listenBacklog: number
  /**
   * GET /metrics: open to anyone who reaches the port (`open`), or only with this bearer token.
   * `token` is undefined when its variable could not be read (a command that needs no secrets):
   * then every scrape is refused.
   */
  readonly metrics: { readonly kind: 'open' } | { readonly kind: 'token'; readonly token: string | undefined }
}

export type StorageSettings =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly postgresUrl: string; readonly redisUrl: string }

export interface Config {
  /** Path of the file it came from, or `<built-in>`. */
  readonly source: string
  readonly server: ServerSettings
  readonly storage: StorageSettings
  readonly targets: readonly ProviderTarget[]
  readonly consumerGroups: readonly ConsumerGroup[]
  readonly costTracking: CostTracking
  readonly models: readonly ModelRoute[]
  readonly budgets: readonly BudgetSpec[]
  readonly notificationChannels: readonly NotificationChannel[]
  readonly notificationDelivery: NotificationDelivery
  readonly reservations: ReservationSettings
  /** `endpoint_tiers`: endpoint tag → tier. */
  readonly endpointTiers: Readonly<Record<string, EndpointTier>>
  /** `notifications.escalation_channels`: channel ids every escalation notice also goes to. */
  readonly escalationChannels: readonly string[]
  readonly exports: ExportSettings
}
