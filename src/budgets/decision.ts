/**
 * The budget decision as pure functions: which budgets count a call, and what they decide given
 * each one's period spend. The gateway's `BudgetService` (reading its cache and the ledger's
 * counters) and policy replay (reading in-memory counters under a simulated clock) both call these,
 * so a replay decides exactly as the live path would.
 */
import type { Micros } from '../money/index.js'
import { percentOf } from '../money/index.js'
import type { BudgetAlert } from '../config/types.js'
import type { Attribution } from '../usage/types.js'
import { matchesCall, type Budget } from './budget.js'
import { periodOf, type Period } from './period.js'
import type { Forecast } from './forecast.js'
import { decideBudgetAction, strongestAction, type RequestFacts } from './policy.js'

export interface ApplicableBudget {
  readonly budget: Budget
  readonly period: Period
}

export type BudgetDecision =
  | { readonly kind: 'allow' }
  | {
      readonly kind: 'degrade'
      readonly budget: Budget
      readonly degradeTo?: string
      readonly outputTokensMax?: number
      /** `critical_endpoint`: a block turned into a degrade for a critical endpoint's call. */
      readonly reason: 'threshold' | 'critical_endpoint'
    }
  | {
      readonly kind: 'block'
      readonly budget: Budget
      readonly resetAtMs: number
      readonly reason: 'threshold' | 'forecast_confirmed'
      /** Why, in words, for the refusal message. */
      readonly explanation: string
    }
  | { readonly kind: 'would_block'; readonly budget: Budget }

/** Request facts and prepared forecasts for `decideBudgets`. */
export interface DecideFacts {
  readonly request: RequestFacts
  /** From `BudgetService.forecastsFor`; only budgets that need a forecast have one. */
  readonly forecasts?: ReadonlyMap<string, Forecast | undefined>
  readonly nowMs?: number
}

const NO_FACTS: DecideFacts = { request: { endpointTag: undefined, endpointTier: undefined } }

/** How a `degrade` is carried out: the cheaper model when one is configured, else an output cap. */
export interface DegradeSettings {
  readonly degradeTargetFor?: ((model: string) => string | undefined) | undefined
  readonly degradeOutputTokensMax: number
}

/** Budgets of the call's org that cover it, each with its period at `atMs`. */
export function applicableBudgetsOf(budgets: readonly Budget[], attribution: Attribution, model: string, provider: string, atMs: number): ApplicableBudget[] {
  const result: ApplicableBudget[] = []
  for (const budget of budgets) {
    if (matchesCall(budget, attribution, model, provider)) {
      result.push({ budget, period: periodOf(budget.period, budget.timezone, atMs) })
    }
  }
  return result
}

/**
 * The strongest decision over the applicable budgets given each one's spend in its current
 * period (a budget with no counter has spent nothing). Each budget is judged by
 * `decideBudgetAction` (policy.ts). Order: block > degrade > would_block > allow. Among blocks,
 * the one that resets last is reported, since the call stays refused until then.
 */
export function decideBudgets(
  applicable: readonly ApplicableBudget[],
  spentMicrosOf: (budgetId: string) => Micros | undefined,
  model: string,
  degrade: DegradeSettings,
  facts: DecideFacts = NO_FACTS,
): BudgetDecision {
  const judged = applicable.map(({ budget, period }) => ({
    budget,
    periodEndMs: period.endMs,
    action: decideBudgetAction({
      budget,
      period,
      spentMicros: spentMicrosOf(budget.id) ?? (0 as Micros),
      forecast: facts.forecasts?.get(budget.id),
      request: facts.request,
      nowMs: facts.nowMs ?? period.startMs,
    }),
  }))
  const best = strongestAction(judged)
  if (!best) return { kind: 'allow' }
  const { budget, action } = best
  switch (action.kind) {
    case 'allow':
    case 'notify':
      return { kind: 'allow' }
    case 'block':
      return { kind: 'block', budget, resetAtMs: best.periodEndMs, reason: action.reason, explanation: action.explanation }
    case 'would_block':
      return { kind: 'would_block', budget }
    case 'degrade': {
      const degradeTo = degrade.degradeTargetFor?.(model)
      const reason = action.reason
      return degradeTo !== undefined
        ? { kind: 'degrade', budget, degradeTo, reason }
        : { kind: 'degrade', budget, outputTokensMax: degrade.degradeOutputTokensMax, reason }
    }
  }
}

/**
 * `cost_tracking.budget_alerts` with `action: degrade`: the highest alert the paying wallet has
 * reached with what it has spent or reserved (`usedMicros`), or undefined below every one.
 */
export function walletDegradeAlert(degradeAlerts: readonly BudgetAlert[], allocatedMicros: Micros, usedMicros: number): BudgetAlert | undefined {
  return [...degradeAlerts].reverse().find((a) => usedMicros >= percentOf(allocatedMicros, a.thresholdPercent))
}
