/**
 * A proposed policy for replay: the `budgets`, `cost_tracking` and `endpoint_tiers` sections of the
 * config file (same zod schemas, same normalisation, so a file that replays is a file that
 * serves), plus `wallets`, the allocations to replay against (wallets live in the ledger, not in
 * the config). Every problem is reported with its path: `budgets[0].amount_usd: …`.
 */
import { parseDocument } from 'yaml'
import { z } from 'zod'
import { expandTier, type Budget } from '../budgets/index.js'
import type { BudgetAlert, EndpointTier } from '../config/types.js'
import { Context } from '../config/context.js'
import { formatPath, messageFor, toConfigIssues } from '../config/issues.js'
import { normalizeBudgets, normalizeCostTracking } from '../config/normalize-budgets.js'
import { budgetSchema, configFileSchema, costTrackingSchema } from '../config/schema.js'
import { AMOUNT_MICROS_MAX, parseUsd, type Micros } from '../money/index.js'
import type { Issue } from '../api/errors.js'
import { controlCharMessage, controlCharOf } from '../lib/text.js'

export type { EndpointTier } from '../config/types.js'

/** A policy file may be at most this large (the API body limit applies first). */
export const POLICY_TEXT_BYTES_MAX = 1_000_000
const WALLETS_MAX = 10_000
const BUDGETS_MAX = 1_000
/**
 * Threshold entries (`alert_thresholds` and `threshold_actions`) over all budgets. What a replay
 * does per event and keeps per threshold grows with them: ten budgets of 1,000 thresholds is the
 * most a policy may ask for.
 */
export const POLICY_THRESHOLDS_MAX = 10_000
/** `cost_tracking.budget_alerts` entries. */
export const POLICY_WALLET_ALERTS_MAX = 100
/** Wallets × wallet alert thresholds: each wallet's alerts fire at most once in a replay, and each firing is counted. */
export const POLICY_WALLET_MARKS_MAX = 50_000

const nonEmpty = z.string().trim().min(1, { error: 'must not be empty' }).max(200)

const walletSchema = z.strictObject({
  scope: z.strictObject({
    kind: z.enum(['org', 'team', 'user'], { error: 'expected one of org | team | user' }),
    id: nonEmpty,
  }),
  /** For a user wallet: the team it belongs to (a user named by a call pays only from a wallet of the key's team). */
  team_id: nonEmpty.optional(),
  allocated_usd: z.union([z.number(), z.string()], { error: 'expected an amount of USD' }),
})

export const policyFileSchema = z
  .strictObject({
    version: z.union([z.literal('1'), z.literal(1)]).optional(),
    budgets: z.array(budgetSchema).max(BUDGETS_MAX).optional(),
    cost_tracking: costTrackingSchema.optional(),
    wallets: z.array(walletSchema).max(WALLETS_MAX).optional(),
    /** Endpoint tag → tier, as in the config. */
    endpoint_tiers: configFileSchema.shape.endpoint_tiers,
  })
  .superRefine((file, ctx) => {
    const thresholds = (file.budgets ?? []).reduce((n, b) => n + (b.alert_thresholds?.length ?? 0) + (b.threshold_actions?.length ?? 0), 0)
    if (thresholds > POLICY_THRESHOLDS_MAX) {
      ctx.addIssue({
        code: 'custom',
        path: ['budgets'],
        message: `at most ${POLICY_THRESHOLDS_MAX} thresholds over all budgets (alert_thresholds and threshold_actions entries); this policy has ${thresholds}`,
      })
    }
    const alerts = file.cost_tracking?.budget_alerts?.length ?? 0
    if (alerts > POLICY_WALLET_ALERTS_MAX) {
      ctx.addIssue({
        code: 'custom',
        path: ['cost_tracking', 'budget_alerts'],
        message: `at most ${POLICY_WALLET_ALERTS_MAX} entries; this policy has ${alerts}`,
      })
    }
  })

export interface ReplayWallet {
  readonly id: string
  readonly scopeKind: 'org' | 'team' | 'user'
  readonly scopeId: string
  readonly teamId: string | undefined
  readonly allocatedMicros: Micros
}

/** A policy ready to replay: budgets as the gateway holds them, wallets, wallet alerts, tiers. */
export interface ReplayPolicy {
  readonly budgets: readonly Budget[]
  readonly wallets: readonly ReplayWallet[]
  /** `cost_tracking.enabled && wallet_enforcement`: every call must be paid by a wallet. */
  readonly walletsEnforced: boolean
  readonly walletAlerts: readonly BudgetAlert[]
  readonly tiers: ReadonlyMap<string, EndpointTier>
}

export class PolicyFileError extends Error {
  constructor(readonly issues: readonly Issue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('; '))
  }
}

/** What the policy inherits from the running gateway when the file leaves it out. */
export interface PolicyDefaults {
  readonly orgId: string
  readonly channelIds: readonly string[]
  readonly costTracking: { readonly enabled: boolean; readonly walletEnforcement: boolean; readonly budgetAlerts: readonly BudgetAlert[] }
}

/** YAML or JSON text (JSON is YAML) → plain data; a syntax error names its line and column. */
export function policyDataOfText(text: string): unknown {
  if (Buffer.byteLength(text, 'utf8') > POLICY_TEXT_BYTES_MAX)
    throw new PolicyFileError([{ path: 'policy', message: `at most ${POLICY_TEXT_BYTES_MAX} bytes` }])
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new PolicyFileError(doc.errors.map((e) => ({ path: 'policy', message: `YAML syntax error: ${e.message.split('\n')[0]}` })))
  }
  return doc.toJS({ maxAliasCount: 100 }) ?? {}
}

/** Validates and normalises policy data; throws `PolicyFileError` naming every bad field. */
export function parsePolicy(data: unknown, defaults: PolicyDefaults): ReplayPolicy {
  const parsed = policyFileSchema.safeParse(data, { error: messageFor })
  if (!parsed.success) throw new PolicyFileError(toConfigIssues(parsed.error.issues))
  const unprintable = controlCharIssues(data)
  if (unprintable.length > 0) throw new PolicyFileError(unprintable)
  const file = parsed.data
  const ctx = new Context({ requireSecrets: false })
  const endpointTiers: Record<string, EndpointTier> = { ...(file.endpoint_tiers ?? {}) }
  const specs = normalizeBudgets(file.budgets, defaults.channelIds, endpointTiers, ctx)
  const costTracking = file.cost_tracking === undefined ? defaults.costTracking : normalizeCostTracking(file.cost_tracking, ctx)
  const wallets = (file.wallets ?? []).map((w, i) => walletOf(w, i, defaults.orgId, ctx))
  // The wallet alerts may be the gateway's own, so this is checked once they are known.
  const walletMarks = wallets.length * costTracking.budgetAlerts.length
  if (walletMarks > POLICY_WALLET_MARKS_MAX) {
    ctx.report(
      'wallets',
      `at most ${POLICY_WALLET_MARKS_MAX} wallet alert thresholds in all (wallets × cost_tracking.budget_alerts); this policy has ${wallets.length} × ${costTracking.budgetAlerts.length}`,
    )
  }
  if (ctx.issues.length > 0) throw new PolicyFileError(ctx.issues)
  // Tiers expand to threshold actions as the gateway expands them (`expandTier`).
  const budgets: Budget[] = specs.map((spec, i) =>
    expandTier(
      {
        ...spec,
        // A scope-less org budget names the caller's org, as the config's default org does.
        scopeId: spec.scopeKind === 'org' ? defaults.orgId : spec.scopeId,
        id: spec.id ?? `policy-budget-${i}`,
        orgId: defaults.orgId,
        createdAtMs: 0,
        updatedAtMs: 0,
        counterEpochMs: 0,
        source: 'config' as const,
      },
      endpointTiers,
    ),
  )
  // A policy about budgets alone (no `wallets`, no `cost_tracking`) is replayed without wallets,
  // rather than refusing every call for want of the wallets it did not list.
  const walletsConsidered = file.cost_tracking !== undefined || file.wallets !== undefined
  return {
    budgets,
    wallets,
    walletsEnforced: walletsConsidered && costTracking.enabled && costTracking.walletEnforcement,
    walletAlerts: costTracking.budgetAlerts,
    tiers: new Map(Object.entries(endpointTiers)),
  }
}

/**
 * Every string of the policy, and every key, as one line of printable text: its names and ids show
 * in the replay report. Called once the schema has accepted the data, so its depth is the schema's.
 */
function controlCharIssues(value: unknown, path: readonly PropertyKey[] = [], out: Issue[] = []): Issue[] {
  if (typeof value === 'string') {
    const char = controlCharOf(value)
    if (char !== undefined) out.push({ path: formatPath(path), message: controlCharMessage(char) })
  } else if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) controlCharIssues(item, [...path, i], out)
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const char = controlCharOf(key)
      if (char !== undefined) out.push({ path: formatPath([...path, key]), message: `key ${controlCharMessage(char)}` })
      controlCharIssues(item, [...path, key], out)
    }
  }
  return out
}

function walletOf(input: z.infer<typeof walletSchema>, index: number, orgId: string, ctx: Context): ReplayWallet {
  const path = `wallets[${index}]`
  const amount = parseUsd(input.allocated_usd)
  if (amount === undefined || amount < 0 || amount > AMOUNT_MICROS_MAX) {
    ctx.report(`${path}.allocated_usd`, 'expected a non-negative amount of USD with at most 6 decimals')
  }
  if (input.team_id !== undefined && input.scope.kind !== 'user') ctx.report(`${path}.team_id`, 'only a user wallet belongs to a team')
  const scopeId = input.scope.kind === 'org' ? orgId : input.scope.id
  return { id: `policy-wallet-${index}`, scopeKind: input.scope.kind, scopeId, teamId: input.team_id, allocatedMicros: (amount ?? 0) as Micros }
}
