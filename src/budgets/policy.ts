/**
 * The budget policy decision, as one pure function: given a budget (already tier-expanded), its
 * spend in the current period, the burn-rate forecast, facts about the request and the time, say
 * what the budget does to the call. The live gateway (`BudgetService.decide`) and policy replay
 * call this same function, so a replay of recorded traffic decides exactly as the gateway did.
 *
 * No I/O, no clock, no randomness: everything it depends on is in its input.
 */
import { toUsd, type Micros } from '../money/index.js'
import type { BudgetThresholdAction, EndpointTier } from '../config/types.js'
import type { Budget } from './budget.js'
import type { Forecast } from './forecast.js'
import type { Period } from './period.js'
import { thresholdMarkMicros } from './thresholds.js'

/** What the decision needs to know about the call itself. */
export interface RequestFacts {
  /** The calling endpoint's tag (`x-tollgate-endpoint` or the consumer's `endpoint_tag`). */
  readonly endpointTag: string | undefined
  /** `endpoint_tiers[endpointTag]`: a critical endpoint is degraded where others would be refused. */
  readonly endpointTier: EndpointTier | undefined
}

/** The parts of a budget the decision reads. Pass the budget through `expandTier` first. */
export type PolicyBudget = Pick<
  Budget,
  'id' | 'name' | 'amountMicros' | 'thresholdActions' | 'hardLimit' | 'shadow' | 'tier' | 'scopeKind' | 'scopeId' | 'period'
>

export interface BudgetPolicyInput {
  readonly budget: PolicyBudget
  readonly period: Pick<Period, 'startMs' | 'endMs' | 'key'>
  /** Spend counted in this period so far (the ledger counter). */
  readonly spentMicros: Micros
  /** The burn-rate forecast for this budget and period; undefined when there is none yet. */
  readonly forecast: Forecast | undefined
  readonly request: RequestFacts
  readonly nowMs: number
}

export type PolicyReason =
  /** Spend reached a threshold with this action. */
  | 'threshold'
  /** `block_if_forecast_exceeds`: the forecast says the budget runs out within the period. */
  | 'forecast_confirmed'
  /** `block_if_forecast_exceeds`: the mark is reached but the forecast does not confirm: notify only. */
  | 'forecast_not_confirmed'
  /** A block turned into a degrade because the calling endpoint is critical. */
  | 'critical_endpoint'

export type BudgetPolicyAction =
  | { readonly kind: 'allow' }
  | { readonly kind: 'notify'; readonly thresholdPercent: number; readonly reason: 'threshold' | 'forecast_not_confirmed' }
  | { readonly kind: 'degrade'; readonly thresholdPercent: number; readonly reason: 'threshold' | 'critical_endpoint' }
  | { readonly kind: 'block'; readonly thresholdPercent: number; readonly reason: 'threshold' | 'forecast_confirmed'; readonly explanation: string }
  | { readonly kind: 'would_block'; readonly thresholdPercent: number; readonly reason: 'threshold' | 'forecast_confirmed' }

type Resolved = Exclude<BudgetPolicyAction, { kind: 'allow' | 'would_block' }>

const STRENGTH = { allow: 0, notify: 1, would_block: 1.5, degrade: 2, block: 3 } as const

/**
 * What `budget` does to this call. The strongest action whose threshold spend has reached
 * applies (block > degrade > notify; a tie goes to the lower threshold, reached first);
 * `hard_limit` is a block at 100%. Then, in order: a shadow budget reports `would_block` instead
 * of blocking (or keeps degrading, when it also reached a degrade); a call from a critical
 * endpoint is degraded instead of blocked.
 */
export function decideBudgetAction(input: BudgetPolicyInput): BudgetPolicyAction {
  const { budget, spentMicros } = input
  let best: Resolved | undefined
  let bestUnblocked: Resolved | undefined
  for (const candidate of candidatesOf(budget)) {
    if (spentMicros < thresholdMarkMicros(budget.amountMicros, candidate.thresholdPercent)) continue
    const resolved = resolveThresholdAction(candidate, input)
    best = stronger(best, resolved)
    if (resolved.kind !== 'block') bestUnblocked = stronger(bestUnblocked, resolved)
  }
  if (!best) return { kind: 'allow' }
  if (best.kind !== 'block') return best
  if (budget.shadow) {
    // The block is only reported; a degrade the budget also reached still applies, so more
    // spend never makes a call cheaper to serve than less spend did.
    if (bestUnblocked?.kind === 'degrade') return bestUnblocked
    return { kind: 'would_block', thresholdPercent: best.thresholdPercent, reason: best.reason }
  }
  if (input.request.endpointTier === 'critical') return { kind: 'degrade', thresholdPercent: best.thresholdPercent, reason: 'critical_endpoint' }
  return best
}

/** The stronger of two reached actions; a tie goes to the lower threshold, reached first. */
function stronger(current: Resolved | undefined, next: Resolved): Resolved {
  if (!current) return next
  if (STRENGTH[next.kind] !== STRENGTH[current.kind]) return STRENGTH[next.kind] > STRENGTH[current.kind] ? next : current
  return next.thresholdPercent < current.thresholdPercent ? next : current
}

/**
 * One threshold action, reached, as what it does now: `block_if_forecast_exceeds` becomes a block
 * when the forecast confirms and a notice otherwise. Used for the decision and for the notice
 * sent when spend crosses the threshold, so both say the same thing.
 */
export function resolveThresholdAction(action: BudgetThresholdAction, input: Omit<BudgetPolicyInput, 'spentMicros'>): Resolved {
  const percent = action.thresholdPercent
  switch (action.action) {
    case 'notify':
      return { kind: 'notify', thresholdPercent: percent, reason: 'threshold' }
    case 'degrade':
      return { kind: 'degrade', thresholdPercent: percent, reason: 'threshold' }
    case 'block':
      return { kind: 'block', thresholdPercent: percent, reason: 'threshold', explanation: blockExplanation(input, percent) }
    case 'block_if_forecast_exceeds':
      return forecastConfirms(input.forecast, input.period, input.nowMs)
        ? { kind: 'block', thresholdPercent: percent, reason: 'forecast_confirmed', explanation: forecastExplanation(input) }
        : { kind: 'notify', thresholdPercent: percent, reason: 'forecast_not_confirmed' }
  }
}

/**
 * True when the forecast says spend reaches the budget's amount before its period ends: the
 * burn-rate confirmation a `block_if_forecast_exceeds` needs. No forecast (too early in the
 * period to have a trend) confirms nothing.
 */
export function forecastConfirms(forecast: Forecast | undefined, period: Pick<Period, 'endMs'>, nowMs: number): boolean {
  if (!forecast || nowMs >= period.endMs) return false
  return forecast.exhaustionAtMs !== undefined && forecast.exhaustionAtMs < period.endMs
}

/**
 * The strongest of several budgets' actions for one call (block > degrade > would_block >
 * notify > allow); among blocks, the one whose period ends last, since the call stays refused
 * until then. Undefined when every action is `allow`.
 */
export function strongestAction<T extends { readonly action: BudgetPolicyAction; readonly periodEndMs: number }>(decisions: readonly T[]): T | undefined {
  let best: T | undefined
  for (const decision of decisions) {
    if (decision.action.kind === 'allow') continue
    const isStronger = !best || STRENGTH[decision.action.kind] > STRENGTH[best.action.kind]
    const isLaterBlock = best !== undefined && decision.action.kind === 'block' && best.action.kind === 'block' && decision.periodEndMs > best.periodEndMs
    if (isStronger || isLaterBlock) best = decision
  }
  return best
}

/** Every threshold action of the budget, `hard_limit` included as a block at 100%. */
function candidatesOf(budget: Pick<PolicyBudget, 'thresholdActions' | 'hardLimit'>): readonly BudgetThresholdAction[] {
  return budget.hardLimit ? [...budget.thresholdActions, { thresholdPercent: 100, action: 'block' }] : budget.thresholdActions
}

/** Why a call is refused, in words: an experimental endpoint's refusal names the endpoint and its tier. */
function blockExplanation(input: Omit<BudgetPolicyInput, 'spentMicros'>, percent: number): string {
  const { budget, request } = input
  if (budget.tier === 'experimental') return experimentalExplanation(budget, request.endpointTag, percent)
  return `${percent}% of $${toUsd(budget.amountMicros).toFixed(2)} reached (${limitText(budget, percent)})`
}

/**
 * Why an experimental budget refuses, naming the endpoint: the decision's explanation, and the
 * reason a refusal at reservation time gives (the ledger refuses there, before any decision).
 */
export function experimentalExplanation(
  budget: Pick<PolicyBudget, 'amountMicros' | 'period' | 'scopeKind' | 'scopeId'>,
  endpointTag: string | undefined,
  percent = 100,
): string {
  const endpoint = endpointTag ?? (budget.scopeKind === 'endpoint' ? budget.scopeId : undefined)
  const who = endpoint !== undefined ? `endpoint "${endpoint}"` : `${budget.scopeKind} "${budget.scopeId}"`
  return `${who} is experimental, so its budget is a hard cap of ${limitText(budget, percent)} and it is spent`
}

function limitText(budget: Pick<PolicyBudget, 'amountMicros' | 'period'>, percent: number): string {
  return `$${toUsd(thresholdMarkMicros(budget.amountMicros, percent)).toFixed(2)} per ${periodWord(budget.period)}`
}

function forecastExplanation(input: Omit<BudgetPolicyInput, 'spentMicros'>): string {
  const forecast = input.forecast!
  const at = new Date(forecast.exhaustionAtMs!).toISOString()
  return `the burn-rate forecast projects $${toUsd(forecast.projectedSpendMicros).toFixed(2)} by period end, above $${toUsd(input.budget.amountMicros).toFixed(2)}, running out at ${at}`
}

function periodWord(period: PolicyBudget['period']): string {
  return { daily: 'day', weekly: 'week', monthly: 'month', quarterly: 'quarter', yearly: 'year' }[period]
}
