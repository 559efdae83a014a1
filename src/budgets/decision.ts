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
import { actionFor } from './thresholds.js'

export interface ApplicableBudget {
  readonly budget: Budget
  readonly period: Period
}

export type BudgetDecision =
  | { readonly kind: 'allow' }
  | { readonly kind: 'degrade'; readonly budget: Budget; readonly degradeTo?: string; readonly outputTokensMax?: number }
  | { readonly kind: 'block'; readonly budget: Budget; readonly resetAtMs: number }
  | { readonly kind: 'would_block'; readonly budget: Budget }

/** How a `degrade` is carried out: the cheaper model when one is configured, else an output cap. */
export interface DegradeSettings {
  readonly degradeTargetFor?: ((model: string) => string | undefined) | undefined
  readonly degradeOutputTokensMax: number
}

const DECISION_STRENGTH = { allow: 0, would_block: 1, degrade: 2, block: 3 } as const

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
 * period (a budget with no counter has spent nothing). Order: block > degrade > would_block >
 * allow. Among blocks, the one that resets last is reported, since the call stays refused until then.
 */
export function decideBudgets(
  applicable: readonly ApplicableBudget[],
  spentMicrosOf: (budgetId: string) => Micros | undefined,
  model: string,
  degrade: DegradeSettings,
): BudgetDecision {
  let decision: BudgetDecision = { kind: 'allow' }
  for (const { budget, period } of applicable) {
    const action = actionFor(budget, spentMicrosOf(budget.id) ?? (0 as Micros))
    let candidate: BudgetDecision
    switch (action.kind) {
      case 'allow':
      case 'notify':
        continue
      case 'block':
        candidate = { kind: 'block', budget, resetAtMs: period.endMs }
        break
      case 'would_block':
        candidate = { kind: 'would_block', budget }
        break
      case 'degrade': {
        const degradeTo = degrade.degradeTargetFor?.(model)
        candidate =
          degradeTo !== undefined ? { kind: 'degrade', budget, degradeTo } : { kind: 'degrade', budget, outputTokensMax: degrade.degradeOutputTokensMax }
        break
      }
    }
    const isStronger = DECISION_STRENGTH[candidate.kind] > DECISION_STRENGTH[decision.kind]
    const isLaterBlock = candidate.kind === 'block' && decision.kind === 'block' && candidate.resetAtMs > decision.resetAtMs
    if (isStronger || isLaterBlock) decision = candidate
  }
  return decision
}

/**
 * `cost_tracking.budget_alerts` with `action: degrade`: the highest alert the paying wallet has
 * reached with what it has spent or reserved (`usedMicros`), or undefined below every one.
 */
export function walletDegradeAlert(degradeAlerts: readonly BudgetAlert[], allocatedMicros: Micros, usedMicros: number): BudgetAlert | undefined {
  return [...degradeAlerts].reverse().find((a) => usedMicros >= percentOf(allocatedMicros, a.thresholdPercent))
}
