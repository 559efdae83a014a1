/**
 * Budgets that came to count a call after its counters were chosen (created, or changed to count
 * it, while it ran): which they are, and counting a settled charge toward them. The proxy's settle
 * and a direct reservation's settle both use these (docs/architecture.md, "Changes reach every
 * process").
 */
import type { Logger } from '../observability/logger.js'
import type { Micros } from '../money/index.js'
import type { LedgerStore } from './ledger-store.js'
import type { BudgetCounterRef, BudgetCrossing } from './types.js'

/** The counters of `now` that `before` lacks: the same budget in the same period counts once. */
export function countersMissing(now: readonly BudgetCounterRef[], before: readonly BudgetCounterRef[]): BudgetCounterRef[] {
  return now.filter((c) => !before.some((b) => b.budgetId === c.budgetId && b.periodKey === c.periodKey))
}

/**
 * Counts a settled charge toward budgets that joined the call, as a step after its settlement
 * (a kill between the two loses this one). Never throws: the settlement stands and a failure is
 * logged with `context`.
 */
export async function countJoinedSpend(
  ledger: Pick<LedgerStore, 'recordSpend'>,
  logger: Logger,
  orgId: string,
  joined: readonly BudgetCounterRef[],
  amountMicros: Micros,
  context: Readonly<Record<string, unknown>>,
): Promise<readonly BudgetCrossing[]> {
  try {
    return await ledger.recordSpend(orgId, joined, amountMicros)
  } catch (error) {
    logger.error({ err: error, ...context }, 'ledger: could not count a charge toward budgets created while its call ran')
    return []
  }
}
