/**
 * The budgets export: one row per budget and period that overlaps the range (up to now), with
 * the period's spend from the ledger's budget counters. Budgets are few, so the list is read at
 * once; spend is read for a bounded number of periods at a time.
 */
import { counterRefOf, periodOf, teamOfBudget, type Budget, type Period } from '../budgets/index.js'
import { counterKey, type BudgetCounterRef } from '../ledger/index.js'
import type { Micros } from '../money/index.js'
import { budgetRow } from './columns.js'
import type { ExportRow, ExportSelection } from './types.js'

export interface BudgetSpendReader {
  listBudgets(orgId: string): Promise<Budget[]>
  budgetSpend(orgId: string, budgets: readonly BudgetCounterRef[]): Promise<Map<string, { spentMicros: Micros; reservedMicros: Micros }>>
}

/** Periods read per spend lookup. */
const SPEND_BATCH = 200

interface BudgetPeriod {
  readonly budget: Budget
  readonly period: Period
}

/** Every (budget, period) pair the export holds, oldest period first within each budget. */
export async function budgetPeriods(reader: BudgetSpendReader, selection: ExportSelection, nowMs: number): Promise<BudgetPeriod[]> {
  const budgets = (await reader.listBudgets(selection.orgId)).filter((b) => inScope(b, selection)).sort((a, b) => a.name.localeCompare(b.name))
  const out: BudgetPeriod[] = []
  const endMs = Math.min(selection.toMs, nowMs + 1)
  for (const budget of budgets) {
    // Periods before the budget existed would only be rows of zeros.
    let atMs = Math.max(selection.fromMs, periodOf(budget.period, budget.timezone, budget.createdAtMs).startMs)
    while (atMs < endMs) {
      const period = periodOf(budget.period, budget.timezone, atMs)
      out.push({ budget, period })
      atMs = period.endMs
    }
  }
  return out
}

export async function* budgetRowPages(reader: BudgetSpendReader, orgId: string, periods: readonly BudgetPeriod[]): AsyncGenerator<ExportRow[]> {
  for (let i = 0; i < periods.length; i += SPEND_BATCH) {
    const batch = periods.slice(i, i + SPEND_BATCH)
    const refs = batch.map(({ budget, period }) => counterRefOf(budget, period))
    const spend = await reader.budgetSpend(orgId, refs)
    yield batch.map(({ budget, period }, j) => {
      const counter = spend.get(counterKey(refs[j]!.budgetId, refs[j]!.periodKey))
      return budgetRow({
        budgetId: budget.id,
        name: budget.name,
        scopeKind: budget.scopeKind,
        scopeId: budget.scopeId,
        environment: budget.environment,
        period: budget.period,
        timezone: budget.timezone,
        periodKey: period.key,
        periodStartMs: period.startMs,
        periodEndMs: period.endMs,
        amountMicros: budget.amountMicros,
        spentMicros: counter?.spentMicros ?? 0,
        reservedMicros: counter?.reservedMicros ?? 0,
        hardLimit: budget.hardLimit,
        shadow: budget.shadow,
      })
    })
  }
}

function inScope(budget: Budget, selection: ExportSelection): boolean {
  const { teamId, userId } = selection.scope
  if (teamId !== undefined && teamOfBudget(budget) !== teamId) return false
  if (userId !== undefined && !(budget.scopeKind === 'user' && budget.scopeId === userId)) return false
  return true
}
