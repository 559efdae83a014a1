/**
 * Threshold arithmetic, pure and integer-only. A threshold of t% of an amount is reached at
 * `ceil(amount · t / 100)` micros: spend exactly there counts, one micro below does not. A
 * settle "crosses" a threshold when spend was below that mark before and is at or above it after,
 * which is what makes each threshold fire once however the spend arrives.
 */
import { assert } from '../lib/assert.js'
import { mulDivCeil, type Micros } from '../money/index.js'
import type { Budget } from './budget.js'

/** The spend (micros) at which `thresholdPercent`% of `amountMicros` is reached; rounded up. */
export function thresholdMarkMicros(amountMicros: Micros, thresholdPercent: number): Micros {
  // Hot (every decision, every settle): the message is built only on failure.
  if (!(Number.isSafeInteger(thresholdPercent) && thresholdPercent > 0)) assert(false, `thresholdPercent: ${thresholdPercent}`)
  // Exact for every amount and percent within the bounds; a mark past 2^53 saturates (never reached).
  return mulDivCeil(amountMicros, thresholdPercent, 100) as Micros
}

/** Thresholds (percent, ascending, no duplicates) whose mark lies in (before, after]. */
export function crossedThresholds(thresholds: readonly number[], amountMicros: Micros, spentBeforeMicros: Micros, spentAfterMicros: Micros): number[] {
  if (!Number.isSafeInteger(spentBeforeMicros)) assert(false, `spentBeforeMicros: ${spentBeforeMicros}`)
  if (!Number.isSafeInteger(spentAfterMicros)) assert(false, `spentAfterMicros: ${spentAfterMicros}`)
  if (spentAfterMicros <= spentBeforeMicros) return []
  const crossed: number[] = []
  // Callers mostly pass `firingThresholds` (sorted, unique already): no copy per settle then.
  for (const percent of isSortedUnique(thresholds) ? thresholds : [...new Set(thresholds)].sort((a, b) => a - b)) {
    const mark = thresholdMarkMicros(amountMicros, percent)
    if (spentBeforeMicros < mark && mark <= spentAfterMicros) crossed.push(percent)
  }
  return crossed
}

function isSortedUnique(values: readonly number[]): boolean {
  for (let i = 1; i < values.length; i++) if (values[i]! <= values[i - 1]!) return false
  return true
}

/**
 * Every percentage that can fire a notification for this budget: its alert thresholds, the
 * thresholds of its actions, and 100 for a hard limit.
 */
export function firingThresholds(budget: Pick<Budget, 'alertThresholds' | 'thresholdActions' | 'hardLimit'>): readonly number[] {
  // Asked on every settle: kept per budget object (a changed budget is a new object).
  let thresholds = firingThresholdsOf.get(budget)
  if (thresholds === undefined) {
    const all = new Set<number>(budget.alertThresholds)
    for (const action of budget.thresholdActions) all.add(action.thresholdPercent)
    if (budget.hardLimit) all.add(100)
    thresholds = [...all].sort((a, b) => a - b)
    firingThresholdsOf.set(budget, thresholds)
  }
  return thresholds
}

const firingThresholdsOf = new WeakMap<object, readonly number[]>()
