/**
 * Budget counter values as this process last saw them, so the budget policy can decide a call
 * (notify, degrade, a threshold block) without a read of its own before the reservation.
 *
 * Why it is safe: every settle, spend and counter read already brings back each counter's global
 * value (all processes' spend), and that value only grows within a period. The policy reads it
 * only while it is younger than the caller's `maxAgeMs`, so under load (a settle every few
 * milliseconds) it is as fresh as a read would be, and an idle counter is read again. Hard limits
 * never come from here: the reservation checks them atomically in the store.
 */
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

/** Past this many counters all are forgotten: each is cheap to read again. */
const ENTRIES_MAX = 10_000

export class RecentSpend {
  private readonly seen = new Map<string, Seen>()

  /** What the store answered for a counter (`key`: org, budget and period). Spent never moves back. */
  saw(key: string, spend: CounterSpend, seenAt = performance.now()): void {
    const known = this.seen.get(key)
    if (known) {
      // Updated in place: this runs on every settle.
      if (spend.spentMicros > known.spentMicros) known.spentMicros = spend.spentMicros
      known.reservedMicros = spend.reservedMicros
      known.seenAt = seenAt
      return
    }
    if (this.seen.size >= ENTRIES_MAX) this.seen.clear()
    this.seen.set(key, { spentMicros: spend.spentMicros, reservedMicros: spend.reservedMicros, seenAt })
  }

  /** A spent value only (a settle's reply): the reserved part keeps what was last read. */
  sawSpent(key: string, spentMicros: Micros, seenAt = performance.now()): void {
    const known = this.seen.get(key)
    this.saw(key, { spentMicros, reservedMicros: known?.reservedMicros ?? (0 as Micros) }, seenAt)
  }

  /** The counter's value if the store told it within `maxAgeMs`. */
  get(key: string, maxAgeMs: number, now = performance.now()): CounterSpend | undefined {
    const known = this.seen.get(key)
    return known && now - known.seenAt <= maxAgeMs ? { spentMicros: known.spentMicros, reservedMicros: known.reservedMicros } : undefined
  }
}

/** The key of one org's budget counter for one period. */
export function recentKey(orgId: string, counter: { readonly budgetId: string; readonly periodKey: string }): string {
  return `${orgId}|${counter.budgetId}|${counter.periodKey}`
}
