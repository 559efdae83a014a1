/**
 * Endpoint tiers: a word an owner can say ("this endpoint is critical") that stands for a set of
 * threshold actions, so a policy reads as intent rather than as a list of percentages. Pure.
 *
 * A budget's tier is its own `tier`, else (an endpoint budget) its endpoint's entry in
 * `endpoint_tiers`. The tier's actions come first; the budget's explicit `threshold_actions`
 * replace the tier's at the same percentage and add to them elsewhere. The tables below are the
 * whole meaning of a tier: docs/policy.md restates them and `tollgate config check` prints them.
 */
import type { BudgetSpec, BudgetThresholdAction, EndpointTier } from '../config/types.js'
import { formatDuration } from '../lib/duration.js'

export const ENDPOINT_TIERS = ['critical', 'standard', 'experimental'] as const satisfies readonly EndpointTier[]

export interface TierRule {
  readonly thresholdActions: readonly BudgetThresholdAction[]
  /** True: a hard cap at 100% (reservations cannot pass it). */
  readonly hardLimit: boolean
  /** Default escalation delay when the budget sets none; undefined: no escalation unless set. */
  readonly escalateAfterMs: number | undefined
  /** One line for `config check` and docs. */
  readonly summary: string
}

const MINUTE_MS = 60_000

export const TIER_RULES: Readonly<Record<EndpointTier, TierRule>> = {
  // Refusing a critical call costs more than the overspend: never block, degrade at the cap, and
  // get a person involved quickly.
  critical: {
    thresholdActions: [
      { thresholdPercent: 50, action: 'notify' },
      { thresholdPercent: 80, action: 'notify' },
      { thresholdPercent: 100, action: 'degrade' },
    ],
    hardLimit: false,
    escalateAfterMs: 30 * MINUTE_MS,
    summary: 'soft cap: notify at 50% and 80%, degrade at 100% (never blocks), escalate to the owner after 30m',
  },
  // Most traffic: a soft cap that starts saving money at the warning threshold on its own.
  standard: {
    thresholdActions: [
      { thresholdPercent: 50, action: 'notify' },
      { thresholdPercent: 80, action: 'degrade' },
      { thresholdPercent: 100, action: 'notify' },
    ],
    hardLimit: false,
    escalateAfterMs: 4 * 60 * MINUTE_MS,
    summary: 'soft cap: notify at 50%, degrade from 80% (the warning threshold), notify at 100%, escalate after 4h',
  },
  // Trials and prototypes: a hard cap; the refusal names the endpoint and says why.
  experimental: {
    thresholdActions: [
      { thresholdPercent: 50, action: 'notify' },
      { thresholdPercent: 80, action: 'notify' },
    ],
    hardLimit: true,
    escalateAfterMs: undefined,
    summary: 'hard cap: notify at 50% and 80%, refuse at 100% (the refusal names the endpoint)',
  },
}

const BLOCKING: ReadonlySet<BudgetThresholdAction['action']> = new Set(['block', 'block_if_forecast_exceeds'])

/** The tier that applies to a budget: its own, else its endpoint's (endpoint budgets only). */
export function tierOfBudget(
  budget: Pick<BudgetSpec, 'tier' | 'scopeKind' | 'scopeId'>,
  endpointTiers: Readonly<Record<string, EndpointTier>>,
): EndpointTier | undefined {
  if (budget.tier !== undefined) return budget.tier
  return budget.scopeKind === 'endpoint' ? endpointTiers[budget.scopeId] : undefined
}

/**
 * The budget as it is enforced: tier actions merged under the explicit ones, the tier's hard cap
 * and escalation delay applied. A critical budget never blocks: a `block` there (however it got
 * in) is enforced as `degrade` and `hard_limit` is dropped. Without a tier the budget is unchanged.
 */
export function expandTier<B extends BudgetSpec>(budget: B, endpointTiers: Readonly<Record<string, EndpointTier>>): B {
  const tier = tierOfBudget(budget, endpointTiers)
  if (tier === undefined) return budget
  const rule = TIER_RULES[tier]
  const byPercent = new Map<number, BudgetThresholdAction>()
  for (const action of rule.thresholdActions) byPercent.set(action.thresholdPercent, action)
  for (const action of budget.thresholdActions) byPercent.set(action.thresholdPercent, action)
  let actions = [...byPercent.values()].sort((a, b) => a.thresholdPercent - b.thresholdPercent)
  if (tier === 'critical') actions = actions.map((a) => (BLOCKING.has(a.action) ? { ...a, action: 'degrade' as const } : a))
  return {
    ...budget,
    tier,
    thresholdActions: actions,
    hardLimit: tier === 'critical' ? false : budget.hardLimit || rule.hardLimit,
    escalateAfterMs: budget.escalateAfterMs ?? rule.escalateAfterMs,
  }
}

/** Why a budget may not have a tier as written: a critical budget cannot block. Undefined when fine. */
export function tierConflict(budget: Pick<BudgetSpec, 'hardLimit' | 'thresholdActions'>, tier: EndpointTier | undefined): string | undefined {
  if (tier !== 'critical') return undefined
  if (budget.hardLimit) return 'a critical budget degrades instead of blocking: remove hard_limit or choose another tier'
  const blocking = budget.thresholdActions.find((a) => BLOCKING.has(a.action))
  if (blocking) return `a critical budget degrades instead of blocking: the ${blocking.action} action at ${blocking.thresholdPercent}% is not allowed`
  return undefined
}

/**
 * What `tollgate config check` prints about tiers: each tier in use with its meaning, then each
 * budget that has a tier as it will be enforced (`90% degrade → slack-finops`).
 */
export function describeTiers(budgets: readonly BudgetSpec[], endpointTiers: Readonly<Record<string, EndpointTier>>): string[] {
  const lines: string[] = []
  const endpoints = Object.entries(endpointTiers)
  const expanded = budgets.map((b) => expandTier(b, endpointTiers)).filter((b) => b.tier !== undefined)
  const used = new Set<EndpointTier>([...endpoints.map(([, tier]) => tier), ...expanded.map((b) => b.tier!)])
  for (const tier of ENDPOINT_TIERS) {
    if (!used.has(tier)) continue
    const tagged = endpoints.filter(([, t]) => t === tier).map(([tag]) => tag)
    lines.push(`tier ${tier}${tagged.length > 0 ? ` (endpoints: ${tagged.join(', ')})` : ''}: ${TIER_RULES[tier].summary}`)
  }
  for (const budget of expanded) {
    const actions = budget.thresholdActions.map((a) => `${a.thresholdPercent}% ${a.action}${a.channels ? ` → ${a.channels.join(' + ')}` : ''}`)
    if (budget.hardLimit) actions.push('100% block (hard cap)')
    const escalation = budget.escalateAfterMs === undefined ? 'no escalation' : `escalate after ${formatDuration(budget.escalateAfterMs)}`
    lines.push(`budget "${budget.name}" (${budget.tier}): ${actions.join(', ')}; ${escalation}`)
  }
  return lines
}
