/**
 * Budgets that came to count a call after its counters were chosen (created, or changed to count
 * it, while it ran). The proxy's settle and a direct reservation's settle name them, and the
 * ledger counts the charge toward them with the settlement (`CallCommit.resolve.alsoCount`;
 * docs/architecture.md, "Changes reach every process").
 */
import type { BudgetCounterRef } from './types.js'

/** The counters of `now` that `before` lacks: the same budget in the same period counts once. */
export function countersMissing(now: readonly BudgetCounterRef[], before: readonly BudgetCounterRef[]): BudgetCounterRef[] {
  return now.filter((c) => !before.some((b) => b.budgetId === c.budgetId && b.periodKey === c.periodKey))
}
