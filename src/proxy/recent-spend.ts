/**
 * Budget counter values as this process last saw them, so the budget policy can decide a call
 * (notify, degrade, a threshold block) without a read of its own before the reservation.
 *
 * Why it is safe: every settle and every counter read brings back each counter's global value
 * (all processes' spend), and that value only grows within a period. The policy uses it only
 * while it is younger than its `maxAgeMs`, so under load (a settle every few milliseconds) it is
 * as fresh as a read would be, and an idle counter is read again. Hard limits never come from
 * here: the reservation checks them atomically in the store.
 */
import { counterKey, type BudgetCounterRef, type BudgetCrossing } from '../ledger/index.js'
import type { Micros } from '../money/index.js'

export interface CounterSpend {
  readonly spentMicros: Micros
  readonly reservedMicros: Micros
}

interface Seen {
  spentMicros: Micros
  reservedMicros: Micros
  /** `performance.now()` when the store answered with this value. */
  seenAt: number
}

type CounterId = Pick<BudgetCounterRef, 'budgetId' | 'periodKey'>

/** Past this many counters all are forgotten: each is cheap to read again. */
const ENTRIES_MAX = 10_000

export class RecentSpend {
  private readonly seen = new Map<string, Seen>()

  /**
   * Every counter's value, keyed by `counterKey`, if the store told each within `maxAgeMs`;
   * undefined when any is missing or older (then all are read, in one store call).
   */
  recent(orgId: string, counters: readonly CounterId[], maxAgeMs: number, now = performance.now()): Map<string, CounterSpend> | undefined {
    const spend = new Map<string, CounterSpend>()
    for (const c of counters) {
      const known = this.seen.get(keyOf(orgId, c))
      if (!known || now - known.seenAt > maxAgeMs) return undefined
      spend.set(counterKey(c.budgetId, c.periodKey), { spentMicros: known.spentMicros, reservedMicros: known.reservedMicros })
    }
    return spend
  }

  /** A read of the counters (`spend` keyed by `counterKey`, as the ledger answers). */
  sawRead(orgId: string, counters: readonly CounterId[], spend: ReadonlyMap<string, CounterSpend>, seenAt = performance.now()): void {
    for (const c of counters) {
      const value = spend.get(counterKey(c.budgetId, c.periodKey))
      if (value) this.saw(keyOf(orgId, c), value.spentMicros, value.reservedMicros, seenAt)
    }
  }

  /** What a settle moved: the spend after it; the reserved part keeps what was last read. */
  sawCrossings(orgId: string, crossings: readonly BudgetCrossing[], seenAt = performance.now()): void {
    for (const c of crossings) this.saw(keyOf(orgId, c), c.spentAfterMicros, undefined, seenAt)
  }

  /** Spent never moves back (a reply may arrive after a newer one); updated in place, on every settle. */
  private saw(key: string, spentMicros: Micros, reservedMicros: Micros | undefined, seenAt: number): void {
    const known = this.seen.get(key)
    if (known) {
      if (spentMicros > known.spentMicros) known.spentMicros = spentMicros
      if (reservedMicros !== undefined) known.reservedMicros = reservedMicros
      known.seenAt = seenAt
      return
    }
    if (this.seen.size >= ENTRIES_MAX) this.seen.clear()
    this.seen.set(key, { spentMicros, reservedMicros: reservedMicros ?? (0 as Micros), seenAt })
  }
}

function keyOf(orgId: string, counter: CounterId): string {
  return `${orgId}|${counter.budgetId}|${counter.periodKey}`
}
