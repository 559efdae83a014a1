/**
 * The budget record, the API bodies that create and change it (zod, snake_case, USD at this edge
 * only), and which calls a budget covers. A budget is the soft control: it notifies,
 * degrades or — with `hard_limit` or a `block` action — refuses, over a recurring period.
 */
import { z } from 'zod'
import { AMOUNT_MICROS_MAX, parseUsd, percentOf, toUsd, type Micros } from '../money/index.js'
import type { BudgetActionKind, BudgetPeriod, BudgetScopeKind, BudgetSpec, BudgetThresholdAction, EndpointTier } from '../config/types.js'
import { formatDuration, parseDuration } from '../lib/duration.js'
import { printable } from '../lib/text.js'
import { ENDPOINT_TIERS } from './tiers.js'
import type { Attribution } from '../usage/types.js'
import { validTimezone, type Period } from './period.js'

export interface Budget extends BudgetSpec {
  readonly id: string
  readonly orgId: string
  readonly createdAtMs: number
  readonly updatedAtMs: number
  /**
   * When what the budget counts last changed (scope, period, time zone): its period counter is a
   * new one from then on, seeded with the period's spend so far. 0 for a budget never changed so.
   */
  readonly counterEpochMs: number
  /** `config` when declared in the YAML (upserted at start), `api` otherwise. */
  readonly source: 'config' | 'api'
}

export const BUDGET_SCOPE_KINDS = ['org', 'team', 'user', 'agent', 'key', 'endpoint', 'model', 'provider'] as const
export const BUDGET_PERIODS = ['daily', 'weekly', 'monthly', 'quarterly', 'yearly'] as const
export const DEFAULT_ALERT_THRESHOLDS: readonly number[] = [50, 80, 95]

/** Limits on one budget body (a limit on everything). */
export const BUDGET_NAME_LENGTH_MAX = 200
export const BUDGET_THRESHOLDS_MAX = 20
export const BUDGET_LIST_ITEMS_MAX = 50
export const THRESHOLD_PERCENT_MAX = 1000
/** Longest `escalate_after`: an escalation a month later is not an escalation. */
export const ESCALATE_AFTER_MS_MAX = 30 * 86_400_000

const thresholdPercent = z
  .int({ error: 'expected a whole percentage' })
  .min(1, { error: 'expected a percentage from 1 to 1000' })
  .max(THRESHOLD_PERCENT_MAX, { error: 'expected a percentage from 1 to 1000' })

const amountUsd = z.union([z.number(), z.string()], { error: 'expected a positive number of USD' }).transform((value, ctx) => {
  const parsed = parseUsd(value)
  if (parsed === undefined || parsed <= 0 || parsed > AMOUNT_MICROS_MAX) {
    ctx.addIssue({ code: 'custom', message: `expected a positive number of USD with at most 6 decimals, at most ${AMOUNT_MICROS_MAX / 1_000_000}` })
    return z.NEVER
  }
  return parsed
})

const shortText = (what: string) =>
  printable(
    z
      .string({ error: `expected ${what} as a string` })
      .trim()
      .min(1, { error: `${what} must not be empty` })
      .max(BUDGET_NAME_LENGTH_MAX),
  )

const scopeSchema = z
  .strictObject({
    kind: z.enum(BUDGET_SCOPE_KINDS, { error: `expected one of ${BUDGET_SCOPE_KINDS.join(' | ')}` }),
    id: shortText('scope id'),
    /** Only calls of this team count; a user named by a call counts only toward user budgets of its key's team. */
    team_id: shortText('team id').optional(),
    environment: shortText('environment').optional(),
  })
  .superRefine((scope, ctx) => {
    if (scope.team_id !== undefined && (scope.kind === 'org' || scope.kind === 'team')) {
      ctx.addIssue({ code: 'custom', path: ['team_id'], message: `a ${scope.kind} budget cannot be narrowed to a team` })
    }
  })

export const BUDGET_ACTIONS = ['notify', 'degrade', 'block', 'block_if_forecast_exceeds'] as const

const channelIdList = z.array(shortText('channel id')).max(BUDGET_LIST_ITEMS_MAX)

const thresholdActionSchema = z.strictObject({
  threshold_percent: thresholdPercent,
  action: z.enum(BUDGET_ACTIONS, { error: `expected one of ${BUDGET_ACTIONS.join(' | ')}` }),
  /** Where this threshold's notices go, instead of the budget's `channels`. */
  channels: channelIdList.optional(),
})

const escalateAfter = z.string({ error: 'expected a duration such as 30m, 2h or 1d' }).transform((value, ctx) => {
  const ms = parseDuration(value)
  if (ms === undefined || ms > ESCALATE_AFTER_MS_MAX) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 30m, 2h or 1d (a whole number and one of s, m, h, d; at most 30d)' })
    return z.NEVER
  }
  return ms
})

const budgetFields = {
  name: shortText('name'),
  scope: scopeSchema,
  period: z.enum(BUDGET_PERIODS, { error: `expected one of ${BUDGET_PERIODS.join(' | ')}` }),
  timezone: z.string().refine(validTimezone, { error: 'expected an IANA time zone such as Europe/Berlin' }),
  amount_usd: amountUsd,
  alert_thresholds: z.array(thresholdPercent).max(BUDGET_THRESHOLDS_MAX, { error: `at most ${BUDGET_THRESHOLDS_MAX} thresholds` }),
  threshold_actions: z.array(thresholdActionSchema).max(BUDGET_THRESHOLDS_MAX, { error: `at most ${BUDGET_THRESHOLDS_MAX} actions` }),
  hard_limit: z.boolean({ error: 'expected true or false' }),
  shadow: z.boolean({ error: 'expected true or false' }),
  categories: z.array(shortText('category')).max(BUDGET_LIST_ITEMS_MAX),
  owner: shortText('owner'),
  channels: channelIdList,
  tier: z.enum(ENDPOINT_TIERS, { error: `expected one of ${ENDPOINT_TIERS.join(' | ')}` }),
  escalate_after: escalateAfter,
}

/**
 * `POST /v1/billing/budgets`. Unknown keys are refused. With no `scope`, the budget covers the
 * caller's whole org (`specFromCreateBody` fills it in), so a budget can be created from a name,
 * an amount and a period alone.
 */
export const budgetCreateBodySchema = z.strictObject({
  name: budgetFields.name,
  scope: budgetFields.scope.optional(),
  period: budgetFields.period,
  timezone: budgetFields.timezone.default('UTC'),
  amount_usd: budgetFields.amount_usd,
  alert_thresholds: budgetFields.alert_thresholds.default([...DEFAULT_ALERT_THRESHOLDS]),
  threshold_actions: budgetFields.threshold_actions.default([]),
  hard_limit: budgetFields.hard_limit.default(false),
  shadow: budgetFields.shadow.default(false),
  categories: budgetFields.categories.default([]),
  owner: budgetFields.owner.optional(),
  channels: budgetFields.channels.optional(),
  tier: budgetFields.tier.optional(),
  escalate_after: budgetFields.escalate_after.optional(),
})
export type BudgetCreateBody = z.infer<typeof budgetCreateBodySchema>

/** `PATCH /v1/billing/budgets/{id}`: any subset; `owner`, `channels`, `tier`, `escalate_after` may be null to clear them. */
export const budgetPatchBodySchema = z.strictObject({
  name: budgetFields.name.optional(),
  scope: budgetFields.scope.optional(),
  period: budgetFields.period.optional(),
  timezone: budgetFields.timezone.optional(),
  amount_usd: budgetFields.amount_usd.optional(),
  alert_thresholds: budgetFields.alert_thresholds.optional(),
  threshold_actions: budgetFields.threshold_actions.optional(),
  hard_limit: budgetFields.hard_limit.optional(),
  shadow: budgetFields.shadow.optional(),
  categories: budgetFields.categories.optional(),
  owner: budgetFields.owner.nullable().optional(),
  channels: budgetFields.channels.nullable().optional(),
  tier: budgetFields.tier.nullable().optional(),
  escalate_after: budgetFields.escalate_after.nullable().optional(),
})
export type BudgetPatchBody = z.infer<typeof budgetPatchBodySchema>

/** A parsed create body as a spec (money already Micros); no `scope` means the org `orgId`. */
export function specFromCreateBody(body: BudgetCreateBody, orgId: string): BudgetSpec {
  const scope: NonNullable<BudgetCreateBody['scope']> = body.scope ?? { kind: 'org', id: orgId }
  return {
    id: undefined,
    name: body.name,
    scopeKind: scope.kind,
    scopeId: scope.id,
    scopeTeamId: scope.team_id,
    environment: scope.environment,
    period: body.period,
    timezone: body.timezone,
    amountMicros: body.amount_usd,
    alertThresholds: sortedUnique(body.alert_thresholds),
    thresholdActions: sortedActions(body.threshold_actions),
    hardLimit: body.hard_limit,
    shadow: body.shadow,
    categories: body.categories,
    owner: body.owner,
    channels: body.channels,
    tier: body.tier,
    escalateAfterMs: body.escalate_after,
  }
}

/** A budget with a parsed PATCH body applied; fields absent from the body are kept. */
export function applyPatch(budget: Budget, patch: BudgetPatchBody, nowMs: number): Budget {
  const next = applyFields(budget, patch, nowMs)
  return countsDifferently(budget, next) ? { ...next, counterEpochMs: nowMs } : next
}

/** True when `next` counts other calls or another period than `current`: its counter must start afresh. */
export function countsDifferently(current: Budget, next: Budget): boolean {
  return (
    current.scopeKind !== next.scopeKind ||
    current.scopeId !== next.scopeId ||
    current.scopeTeamId !== next.scopeTeamId ||
    current.environment !== next.environment ||
    current.period !== next.period ||
    current.timezone !== next.timezone
  )
}

function applyFields(budget: Budget, patch: BudgetPatchBody, nowMs: number): Budget {
  return {
    ...budget,
    ...(patch.name !== undefined && { name: patch.name }),
    ...(patch.scope !== undefined && {
      scopeKind: patch.scope.kind,
      scopeId: patch.scope.id,
      scopeTeamId: patch.scope.team_id,
      environment: patch.scope.environment,
    }),
    ...(patch.period !== undefined && { period: patch.period }),
    ...(patch.timezone !== undefined && { timezone: patch.timezone }),
    ...(patch.amount_usd !== undefined && { amountMicros: patch.amount_usd }),
    ...(patch.alert_thresholds !== undefined && { alertThresholds: sortedUnique(patch.alert_thresholds) }),
    ...(patch.threshold_actions !== undefined && { thresholdActions: sortedActions(patch.threshold_actions) }),
    ...(patch.hard_limit !== undefined && { hardLimit: patch.hard_limit }),
    ...(patch.shadow !== undefined && { shadow: patch.shadow }),
    ...(patch.categories !== undefined && { categories: patch.categories }),
    ...(patch.owner !== undefined && { owner: patch.owner ?? undefined }),
    ...(patch.channels !== undefined && { channels: patch.channels ?? undefined }),
    ...(patch.tier !== undefined && { tier: patch.tier ?? undefined }),
    ...(patch.escalate_after !== undefined && { escalateAfterMs: patch.escalate_after ?? undefined }),
    updatedAtMs: nowMs,
  }
}

/** The API's JSON view of a budget (snake_case, USD). */
export interface BudgetView {
  id: string
  name: string
  scope: { kind: BudgetScopeKind; id: string; team_id?: string; environment?: string }
  period: BudgetPeriod
  timezone: string
  amount_usd: number
  alert_thresholds: number[]
  threshold_actions: { threshold_percent: number; action: BudgetActionKind; channels?: string[] }[]
  hard_limit: boolean
  shadow: boolean
  categories: string[]
  owner: string | null
  channels: string[] | null
  tier: EndpointTier | null
  /** `2h`; null when the budget does not escalate. */
  escalate_after: string | null
  source: 'config' | 'api'
  created_at: string
  updated_at: string
}

export function budgetView(budget: Budget): BudgetView {
  return {
    id: budget.id,
    name: budget.name,
    scope: {
      kind: budget.scopeKind,
      id: budget.scopeId,
      ...(budget.scopeTeamId !== undefined && { team_id: budget.scopeTeamId }),
      ...(budget.environment !== undefined && { environment: budget.environment }),
    },
    period: budget.period,
    timezone: budget.timezone,
    amount_usd: toUsd(budget.amountMicros),
    alert_thresholds: [...budget.alertThresholds],
    threshold_actions: budget.thresholdActions.map((a) => ({
      threshold_percent: a.thresholdPercent,
      action: a.action,
      ...(a.channels !== undefined && { channels: [...a.channels] }),
    })),
    hard_limit: budget.hardLimit,
    shadow: budget.shadow,
    categories: [...budget.categories],
    owner: budget.owner ?? null,
    channels: budget.channels ? [...budget.channels] : null,
    tier: budget.tier ?? null,
    escalate_after: budget.escalateAfterMs === undefined ? null : formatDuration(budget.escalateAfterMs),
    source: budget.source,
    created_at: new Date(budget.createdAtMs).toISOString(),
    updated_at: new Date(budget.updatedAtMs).toISOString(),
  }
}

/** The team a budget belongs to — its team scope, or the team it is narrowed to — undefined when org-wide. */
export function teamOfBudget(budget: Pick<Budget, 'scopeKind' | 'scopeId' | 'scopeTeamId'>): string | undefined {
  return budget.scopeKind === 'team' ? budget.scopeId : budget.scopeTeamId
}

/** `team:marketing`, `model:gpt-4o@prod`: how a scope reads in notifications and refusals. */
export function scopeLabel(budget: Pick<Budget, 'scopeKind' | 'scopeId' | 'environment'>): string {
  const base = `${budget.scopeKind}:${budget.scopeId}`
  return budget.environment === undefined ? base : `${base}@${budget.environment}`
}

/**
 * Whether a call is covered by the budget: same org, the attribution field the scope kind names
 * equals the scope id, and the environment matches when the budget sets one.
 */
export function matchesCall(budget: Budget, attribution: Attribution, model: string, provider: string): boolean {
  if (budget.orgId !== attribution.orgId) return false
  if (budget.environment !== undefined && budget.environment !== attribution.environment) return false
  if (budget.scopeTeamId !== undefined && budget.scopeTeamId !== attribution.teamId) return false
  // A user named by the call (not the key's own) counts only toward user budgets of the key's
  // team: otherwise any key could spend down another team's user budget by naming its user.
  if (budget.scopeKind === 'user' && !attribution.userFromKey && budget.scopeTeamId === undefined) return false
  const value = scopeValueOf(budget.scopeKind, attribution, model, provider)
  if (value === budget.scopeId) return true
  // Models and providers are priced whatever their case ("GPT-4o-mini" is gpt-4o-mini), so their
  // budgets count them whatever their case too: a spelling must not slip past a cap.
  return (budget.scopeKind === 'model' || budget.scopeKind === 'provider') && value !== undefined && value.toLowerCase() === budget.scopeId.toLowerCase()
}

function scopeValueOf(kind: BudgetScopeKind, attribution: Attribution, model: string, provider: string): string | undefined {
  switch (kind) {
    case 'org':
      return attribution.orgId
    case 'team':
      return attribution.teamId
    case 'user':
      return attribution.userId
    case 'agent':
      return attribution.agentId
    case 'key':
      return attribution.keyName
    case 'endpoint':
      return attribution.endpointTag
    case 'model':
      return model
    case 'provider':
      return provider
  }
}

/** A budget's spend counter for one period, as the ledger keeps it (the ledger's BudgetCounterRef). */
export interface PeriodCounter {
  readonly budgetId: string
  readonly periodKey: string
  /** Set for hard budgets: reservations may not take reserved + spent above it. */
  readonly limitMicros: Micros | undefined
  readonly periodEndMs: number
}

/**
 * The ledger counter of a budget's current period: its key carries the counter epoch, so a budget
 * that changed what it counts starts a fresh counter (seeded with the period's spend so far).
 */
export function counterRefOf(budget: Budget, period: Period): PeriodCounter {
  return {
    budgetId: budget.id,
    periodKey: budget.counterEpochMs > 0 ? `${period.key}~${budget.counterEpochMs}` : period.key,
    limitMicros: limitMicros(budget),
    periodEndMs: period.endMs,
  }
}

/**
 * The amount reservations may not take a budget's period spend past: its amount when
 * `hard_limit`, or the lowest `block` threshold action's mark, whichever is lower. Checked in the
 * same atomic step as the wallet, so concurrent calls cannot overshoot it. A shadow
 * budget never blocks.
 */
export function limitMicros(budget: Pick<Budget, 'hardLimit' | 'shadow' | 'amountMicros' | 'thresholdActions'>): Micros | undefined {
  if (budget.shadow) return undefined
  let limit: Micros | undefined = budget.hardLimit ? budget.amountMicros : undefined
  for (const action of budget.thresholdActions) {
    if (action.action !== 'block') continue
    const mark = percentOf(budget.amountMicros, action.thresholdPercent)
    if (limit === undefined || mark < limit) limit = mark
  }
  return limit
}

function sortedUnique(values: readonly number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b)
}

function sortedActions(actions: readonly { threshold_percent: number; action: BudgetActionKind; channels?: string[] | undefined }[]): BudgetThresholdAction[] {
  return actions
    .map((a) => ({ thresholdPercent: a.threshold_percent, action: a.action, ...(a.channels !== undefined && { channels: [...new Set(a.channels)] }) }))
    .sort((a, b) => a.thresholdPercent - b.thresholdPercent)
}
