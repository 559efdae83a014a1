/** `cost_tracking` (wallet thresholds) and `budgets` (declared soft/hard period budgets). */
import { AMOUNT_MICROS_MAX, parseUsd, ZERO, type Micros } from '../money/index.js'
import { checkUnique, type Context } from './context.js'
import { DEFAULTS } from './defaults.js'
import { describeValue, quote } from './describe.js'
import type { BudgetInput, BudgetThresholdActionInput, ConfigFile, ThresholdActionInput } from './schema.js'
import type { BudgetAlert, BudgetSpec, BudgetThresholdAction, CostTracking, EndpointTier } from './types.js'
import { parseDuration } from '../lib/duration.js'
import { tierConflict, tierOfBudget } from '../budgets/tiers.js'
import { ESCALATE_AFTER_MS_MAX } from '../budgets/budget.js'

export function normalizeCostTracking(input: ConfigFile['cost_tracking'], ctx: Context): CostTracking {
  return {
    enabled: input?.enabled ?? DEFAULTS.costTracking.enabled,
    walletEnforcement: input?.wallet_enforcement ?? DEFAULTS.costTracking.walletEnforcement,
    budgetAlerts: thresholdActions(input?.budget_alerts ?? DEFAULTS.costTracking.budgetAlerts, 'cost_tracking.budget_alerts', ctx),
  }
}

/** Sorted ascending by percent; a percent given twice is ambiguous (which action wins?) and rejected. */
function thresholdActions(inputs: readonly ThresholdActionInput[], path: string, ctx: Context): BudgetAlert[] {
  checkUnique(
    ctx,
    inputs,
    (a) => a.threshold_percent,
    (i) => `${path}[${i}].threshold_percent`,
    'threshold_percent',
  )
  return inputs.map((a) => ({ thresholdPercent: a.threshold_percent, action: a.action })).sort((a, b) => a.thresholdPercent - b.thresholdPercent)
}

export function normalizeBudgets(
  inputs: readonly BudgetInput[] | undefined,
  channelIds: readonly string[],
  endpointTiers: Readonly<Record<string, EndpointTier>>,
  ctx: Context,
): BudgetSpec[] {
  if (inputs === undefined) return []
  checkUnique(
    ctx,
    inputs,
    (b) => b.id,
    (i) => `budgets[${i}].id`,
    'budget id',
  )
  checkUnique(
    ctx,
    inputs,
    (b) => b.name,
    (i) => `budgets[${i}].name`,
    'budget name',
  )
  const known = [...new Set(channelIds)]
  return inputs.map((input, index) => normalizeBudget(input, `budgets[${index}]`, known, endpointTiers, ctx))
}

/** `notifications.escalation_channels`: each id must name a configured channel. */
export function normalizeEscalationChannels(ids: readonly string[] | undefined, channelIds: readonly string[], ctx: Context): string[] {
  checkChannelIds(ids, channelIds, 'notifications.escalation_channels', ctx)
  return [...new Set(ids ?? [])]
}

function checkChannelIds(ids: readonly string[] | undefined, channelIds: readonly string[], path: string, ctx: Context): void {
  ids?.forEach((id, i) => {
    if (!channelIds.includes(id)) {
      const known = channelIds.length === 0 ? 'none are configured' : `channels: ${channelIds.join(', ')}`
      ctx.report(`${path}[${i}]`, `unknown notification channel ${quote(id)} (${known})`)
    }
  })
}

function normalizeBudget(
  input: BudgetInput,
  path: string,
  channelIds: readonly string[],
  endpointTiers: Readonly<Record<string, EndpointTier>>,
  ctx: Context,
): BudgetSpec {
  const alertThresholds = [...(input.alert_thresholds ?? DEFAULTS.budget.alertThresholds)]
  checkUnique(
    ctx,
    alertThresholds,
    (percent) => percent,
    (i) => `${path}.alert_thresholds[${i}]`,
    'threshold',
  )
  checkChannelIds(input.channels, channelIds, `${path}.channels`, ctx)
  for (const [i, action] of (input.threshold_actions ?? []).entries())
    checkChannelIds(action.channels, channelIds, `${path}.threshold_actions[${i}].channels`, ctx)
  const thresholdActionsOf = budgetThresholdActions(input.threshold_actions ?? [], `${path}.threshold_actions`, ctx)
  const hardLimit = input.hard_limit ?? DEFAULTS.budget.hardLimit
  const tier = tierOfBudget({ tier: input.tier, scopeKind: input.scope.kind, scopeId: input.scope.id }, endpointTiers)
  const conflict = tierConflict({ hardLimit, thresholdActions: thresholdActionsOf }, tier)
  if (conflict) ctx.report(input.tier !== undefined ? `${path}.tier` : `${path}.scope.id`, conflict)
  return {
    id: input.id,
    name: input.name,
    scopeKind: input.scope.kind,
    scopeId: input.scope.id,
    scopeTeamId: scopeTeam(input, path, ctx),
    environment: input.scope.environment,
    period: input.period,
    timezone: timeZone(input.timezone ?? DEFAULTS.budget.timezone, `${path}.timezone`, ctx),
    amountMicros: positiveUsd(input.amount_usd, `${path}.amount_usd`, ctx),
    alertThresholds: alertThresholds.sort((a, b) => a - b),
    thresholdActions: thresholdActionsOf,
    hardLimit,
    shadow: input.shadow ?? DEFAULTS.budget.shadow,
    categories: input.categories ?? [...DEFAULTS.budget.categories],
    owner: input.owner,
    channels: input.channels,
    tier: input.tier,
    escalateAfterMs: escalateAfter(input.escalate_after, `${path}.escalate_after`, ctx),
  }
}

function budgetThresholdActions(inputs: readonly BudgetThresholdActionInput[], path: string, ctx: Context): BudgetThresholdAction[] {
  checkUnique(
    ctx,
    inputs,
    (a) => a.threshold_percent,
    (i) => `${path}[${i}].threshold_percent`,
    'threshold_percent',
  )
  return inputs
    .map((a) => ({ thresholdPercent: a.threshold_percent, action: a.action, ...(a.channels !== undefined && { channels: [...new Set(a.channels)] }) }))
    .sort((a, b) => a.thresholdPercent - b.thresholdPercent)
}

function escalateAfter(text: string | undefined, path: string, ctx: Context): number | undefined {
  if (text === undefined) return undefined
  const ms = parseDuration(text)
  if (ms === undefined || ms > ESCALATE_AFTER_MS_MAX) {
    ctx.report(path, `expected a duration such as 30m, 2h or 1d (a whole number and one of s, m, h, d; at most 30d), got ${quote(text)}`)
    return undefined
  }
  return ms
}

function scopeTeam(input: BudgetInput, path: string, ctx: Context): string | undefined {
  const teamId = input.scope.team_id
  if (teamId !== undefined && (input.scope.kind === 'org' || input.scope.kind === 'team')) {
    ctx.report(
      `${path}.scope.team_id`,
      `a ${input.scope.kind} budget cannot be narrowed to a team (give team_id with user, agent, key, endpoint, model or provider scopes)`,
    )
    return undefined
  }
  return teamId
}

/** The canonical IANA name (`europe/paris` → `Europe/Paris`); periods start at its local midnight. */
function timeZone(name: string, path: string, ctx: Context): string {
  try {
    return new Intl.DateTimeFormat(undefined, { timeZone: name }).resolvedOptions().timeZone
  } catch {
    ctx.report(path, `unknown time zone ${quote(name)} (expected an IANA name such as "Europe/Paris" or "UTC")`)
    return DEFAULTS.budget.timezone
  }
}

function positiveUsd(usd: number | string, path: string, ctx: Context): Micros {
  const amount = parseUsd(usd)
  if (amount === undefined || amount <= 0 || amount > AMOUNT_MICROS_MAX) {
    ctx.report(path, `expected a positive amount of USD with at most 6 decimals and at most ${AMOUNT_MICROS_MAX / 1_000_000}, got ${describeValue(usd)}`)
    return ZERO
  }
  return amount
}
