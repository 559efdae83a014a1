/**
 * The YAML shape, snake_case as users write it. Every object is strict so a typo'd
 * key is an error, not a silently ignored setting. The schema checks shape and ranges only; cross
 * references (ids, secrets, time zones, money) are checked in `normalize*.ts`, and defaults are
 * applied there from `defaults.ts`.
 */
import * as z from 'zod'
import { LIMITS } from './defaults.js'
import { describeValue } from './describe.js'

const nonEmpty = z.string().min(1)

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** `{ env: NAME }`: a secret is never written in the file, only the variable that holds it. */
export const envRefSchema = z.strictObject(
  {
    env: z.string().regex(ENV_NAME, {
      // Do not echo the value: people sometimes paste the secret itself here.
      error: 'expected the name of an environment variable (letters, digits and _), not its value',
    }),
  },
  {
    // Nor here: a string where the mapping belongs is most often the secret itself.
    error: (issue) =>
      issue.code === 'invalid_type' ? 'expected { env: NAME }, the environment variable holding the secret (the value is not shown)' : undefined,
  },
)

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}

// The value is not echoed: webhook URLs carry their secret in the user info or the path.
const httpUrl = z.string().refine(isHttpUrl, {
  error: (issue) =>
    `expected an http(s) URL${typeof issue.input === 'string' ? ' (the value is not shown: it may hold a secret)' : `, got ${describeValue(issue.input)}`}`,
})

const intIn = (min: number, max: number) => z.int().min(min).max(max)

const thresholdPercent = intIn(LIMITS.thresholdPercentMin, LIMITS.thresholdPercentMax)

/** USD amounts accept a number or a decimal string ("12.50"); `parseUsd` decides exactness later. */
const usdAmount = z.union([z.number(), z.string()], {
  error: (issue) => `expected an amount of USD (a number or a decimal string), got ${describeValue(issue.input)}`,
})

// --- providers ---------------------------------------------------------------------------------

const targetCommon = {
  id: nonEmpty,
  timeout_ms: intIn(LIMITS.timeoutMsMin, LIMITS.timeoutMsMax).optional(),
  connections_max: intIn(LIMITS.connectionsMaxMin, LIMITS.connectionsMaxMax).optional(),
  // Accepted on every target so that one on a non-OpenAI target is told why it does not belong
  // there (normalize-providers.ts), not merely that the key is unknown.
  service_tier_default: z.enum(['default', 'flex', 'priority', 'scale']).optional(),
}

export const targetSchema = z.discriminatedUnion('provider', [
  z.strictObject({
    ...targetCommon,
    provider: z.literal('openai'),
    base_url: httpUrl.optional(),
    secret_key_ref: envRefSchema.optional(),
  }),
  z.strictObject({
    ...targetCommon,
    provider: z.literal('anthropic'),
    base_url: httpUrl.optional(),
    secret_key_ref: envRefSchema.optional(),
  }),
  z.strictObject({
    ...targetCommon,
    provider: z.literal('openai-compatible'),
    base_url: httpUrl,
    secret_key_ref: envRefSchema.optional(),
  }),
  // A mock target with no base_url is served in-process; with one, it points at a mock upstream
  // running elsewhere (tests, benchmarks, `tollgate demo`). OpenAI convention: the URL ends in /v1.
  z.strictObject({ ...targetCommon, provider: z.literal('mock'), base_url: httpUrl.optional() }),
])

// --- consumers ---------------------------------------------------------------------------------

export const consumerGroupSchema = z.strictObject({
  name: nonEmpty,
  api_key: nonEmpty.optional(),
  api_key_ref: envRefSchema.optional(),
  org_id: nonEmpty.optional(),
  team_id: nonEmpty.optional(),
  /** Another name for the team whose wallet pays; same meaning as `team_id`. */
  wallet_team_id: nonEmpty.optional(),
  user_id: nonEmpty.optional(),
  agent_id: nonEmpty.optional(),
  environment: nonEmpty.optional(),
  endpoint_tag: nonEmpty.optional(),
  on_insufficient_funds: z.enum(['refuse', 'hold']).optional(),
  hold_timeout_ms: intIn(0, LIMITS.holdTimeoutMsMax).optional(),
  fail_mode: z.enum(['closed', 'open']).optional(),
  emergency_allowance_usd: usdAmount.optional(),
  allow_named_users: z.boolean().optional(),
  default_output_tokens: intIn(1, LIMITS.outputTokensMax).optional(),
})

// --- cost tracking, models, budgets ------------------------------------------------------------

export const thresholdActionSchema = z.strictObject({
  threshold_percent: thresholdPercent,
  action: z.enum(['notify', 'degrade', 'block']),
})

export const costTrackingSchema = z.strictObject({
  enabled: z.boolean().optional(),
  wallet_enforcement: z.boolean().optional(),
  budget_alerts: z.array(thresholdActionSchema).optional(),
})

const pricePerMtok = z.number().min(0).max(LIMITS.priceUsdPerMtokMax)
/** USD per 1,000 calls of a server-side tool; whole micro-dollars are checked in normalize-providers.ts. */
const pricePerKcall = z.number().min(0).max(LIMITS.priceUsdPerKcallMax)

export const modelSchema = z.strictObject({
  name: nonEmpty,
  target: nonEmpty.optional(),
  upstream_model: nonEmpty.optional(),
  pricing: z
    .strictObject({
      input_mtok: pricePerMtok,
      output_mtok: pricePerMtok,
      cache_read_mtok: pricePerMtok.optional(),
      cache_write_mtok: pricePerMtok.optional(),
      cache_write_1h_mtok: pricePerMtok.optional(),
      input_audio_mtok: pricePerMtok.optional(),
      output_audio_mtok: pricePerMtok.optional(),
      web_search_kcall: pricePerKcall.optional(),
      file_search_kcall: pricePerKcall.optional(),
    })
    .optional(),
  degrade_to: nonEmpty.optional(),
  max_output_tokens: intIn(1, LIMITS.outputTokensMax).optional(),
})

export const ENDPOINT_TIER_NAMES = ['critical', 'standard', 'experimental'] as const

/** A budget's threshold action: the wallet actions plus a forecast-confirmed block, with optional routing. */
export const budgetThresholdActionSchema = z.strictObject({
  threshold_percent: thresholdPercent,
  action: z.enum(['notify', 'degrade', 'block', 'block_if_forecast_exceeds']),
  channels: z.array(nonEmpty).optional(),
})

export const BUDGET_SCOPE_KINDS = ['org', 'team', 'user', 'agent', 'key', 'endpoint', 'model', 'provider'] as const
export const BUDGET_PERIODS = ['daily', 'weekly', 'monthly', 'quarterly', 'yearly'] as const

export const budgetSchema = z.strictObject({
  id: nonEmpty.optional(),
  name: nonEmpty,
  scope: z.strictObject({
    kind: z.enum(BUDGET_SCOPE_KINDS),
    id: nonEmpty,
    team_id: nonEmpty.optional(),
    environment: nonEmpty.optional(),
  }),
  period: z.enum(BUDGET_PERIODS),
  timezone: nonEmpty.optional(),
  amount_usd: usdAmount,
  alert_thresholds: z.array(thresholdPercent).optional(),
  threshold_actions: z.array(budgetThresholdActionSchema).optional(),
  hard_limit: z.boolean().optional(),
  shadow: z.boolean().optional(),
  categories: z.array(nonEmpty).optional(),
  owner: nonEmpty.optional(),
  channels: z.array(nonEmpty).optional(),
  tier: z.enum(ENDPOINT_TIER_NAMES).optional(),
  /** `30m`, `2h`, `1d`: parsed in normalize-budgets.ts. */
  escalate_after: nonEmpty.optional(),
})

// --- notifications -----------------------------------------------------------------------------

export const channelSchema = z.discriminatedUnion('type', [
  z.strictObject({
    id: nonEmpty,
    type: z.literal('webhook'),
    url: httpUrl,
    secret_ref: envRefSchema.optional(),
  }),
  z.strictObject({
    id: nonEmpty,
    type: z.literal('slack'),
    webhook_url: httpUrl.optional(),
    webhook_url_ref: envRefSchema.optional(),
  }),
  z.strictObject({
    id: nonEmpty,
    type: z.literal('email'),
    smtp_url: nonEmpty.optional(),
    smtp_url_ref: envRefSchema.optional(),
    from: nonEmpty,
    to: z.array(nonEmpty).min(1),
  }),
])

// --- the file ----------------------------------------------------------------------------------

export const configFileSchema = z.strictObject({
  version: z.literal(['1', 1], { error: (issue) => `expected '1', got ${describeValue(issue.input)}` }).optional(),
  server: z
    .strictObject({
      host: nonEmpty.optional(),
      port: intIn(0, LIMITS.portMax).optional(),
      body_limit_bytes: intIn(LIMITS.bodyLimitBytesMin, LIMITS.bodyLimitBytesMax).optional(),
      listen_backlog: intIn(LIMITS.listenBacklogMin, LIMITS.listenBacklogMax).optional(),
      /** Where the bearer token GET /metrics requires is; unset, /metrics asks for none. */
      metrics_token_ref: envRefSchema.optional(),
    })
    .optional(),
  storage: z
    .strictObject({
      sqlite: nonEmpty.optional(),
      postgres: nonEmpty.optional(),
      redis: nonEmpty.optional(),
    })
    .optional(),
  providers: z
    .strictObject({
      targets: z.array(targetSchema).min(1),
    })
    .optional(),
  consumer_groups: z.array(consumerGroupSchema).optional(),
  cost_tracking: costTrackingSchema.optional(),
  models: z.array(modelSchema).optional(),
  budgets: z.array(budgetSchema).optional(),
  /** Endpoint tag → tier. */
  endpoint_tiers: z.record(nonEmpty, z.enum(ENDPOINT_TIER_NAMES)).optional(),
  notifications: z
    .strictObject({
      channels: z.array(channelSchema).optional(),
      /** Channel ids every escalation notice also goes to. */
      escalation_channels: z.array(nonEmpty).optional(),
      delivery: z
        .strictObject({
          attempts_max: intIn(1, LIMITS.deliveryAttemptsMax).optional(),
          backoff_base_ms: intIn(LIMITS.deliveryBackoffMsMin, LIMITS.deliveryBackoffMsMax).optional(),
          backoff_cap_ms: intIn(LIMITS.deliveryBackoffMsMin, LIMITS.deliveryBackoffMsMax).optional(),
          poll_interval_ms: intIn(LIMITS.deliveryPollMsMin, LIMITS.deliveryPollMsMax).optional(),
        })
        .optional(),
    })
    .optional(),
  reservations: z
    .strictObject({
      ttl_ms: intIn(LIMITS.reservationTtlMsMin, LIMITS.reservationTtlMsMax).optional(),
      sweep_interval_ms: intIn(LIMITS.sweepIntervalMsMin, LIMITS.sweepIntervalMsMax).optional(),
      default_output_tokens: intIn(1, LIMITS.outputTokensMax).optional(),
      tokenizer_max_bytes: intIn(1, LIMITS.tokenizerMaxBytesMax).optional(),
    })
    .optional(),
  exports: z
    .strictObject({
      dir: nonEmpty.optional(),
      lease_ms: intIn(LIMITS.exportLeaseMsMin, LIMITS.exportLeaseMsMax).optional(),
      retention_hours: intIn(LIMITS.exportRetentionHoursMin, LIMITS.exportRetentionHoursMax).optional(),
      jobs_pending_max: intIn(1, LIMITS.exportJobsPendingMax).optional(),
      team_jobs_pending_max: intIn(1, LIMITS.exportJobsPendingMax).optional(),
      team_files_kept_max: intIn(1, LIMITS.exportJobsPendingMax).optional(),
      team_bytes_kept_max: intIn(1, LIMITS.exportBytesMax).optional(),
      disk_free_min_bytes: intIn(0, LIMITS.exportBytesMax).optional(),
    })
    .optional(),
})

export type ConfigFile = z.infer<typeof configFileSchema>
export type TargetInput = z.infer<typeof targetSchema>
export type ConsumerGroupInput = z.infer<typeof consumerGroupSchema>
export type ModelInput = z.infer<typeof modelSchema>
export type BudgetInput = z.infer<typeof budgetSchema>
export type ChannelInput = z.infer<typeof channelSchema>
export type ThresholdActionInput = z.infer<typeof thresholdActionSchema>
export type BudgetThresholdActionInput = z.infer<typeof budgetThresholdActionSchema>
