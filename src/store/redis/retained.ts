/**
 * What this process journaled into Redis that is not yet known to be in PostgreSQL. Normally the
 * journal drain applies it within milliseconds and it is dropped here. If Redis loses the org
 * first (restarted empty, flushed) — which the org's generation marker shows — these entries are
 * written to PostgreSQL directly, before the org's rebuild reads it (the rebuilder waits for
 * that), so a Redis restart loses no money move that a live gateway made.
 */
import type { UsageEvent } from '../../usage/types.js'
import type { JournalEvent } from '../postgres/journal.js'

export interface RetainedEntry {
  /** The journal stream entry's id (`ms-seq`). */
  readonly entryId: string
  /** The org's generation when it was journaled. */
  readonly generation: string
  /** The ledger event, built only if it has to be replayed. */
  readonly journal: (() => JournalEvent) | undefined
  readonly usage: UsageEvent | undefined
}

/** How far the drain got in one org's stream, as Redis reports it. */
export interface DrainProgress {
  /** The org's generation now (undefined: Redis lost the org and it is not rebuilt yet). */
  readonly generation: string | undefined
  /** Entries up to this id were handed to a drain… */
  readonly lastDeliveredId: string
  /** …and those from this id on are still being applied (undefined: none). */
  readonly firstPendingId: string | undefined
}

export class Retained {
  private readonly byOrg = new Map<string, RetainedEntry[]>()
  private total = 0

  constructor(private readonly entriesMax: number) {}

  add(orgId: string, entry: RetainedEntry): void {
    let list = this.byOrg.get(orgId)
    if (!list) this.byOrg.set(orgId, (list = []))
    list.push(entry)
    this.total++
    // Bounded: past it the oldest are forgotten (the drain has almost certainly applied them).
    if (this.total > this.entriesMax) {
      list.shift()
      this.total--
    }
  }

  orgs(): string[] {
    return [...this.byOrg.keys()]
  }

  get size(): number {
    return this.total
  }

  /**
   * Settles one org against the drain's progress: entries applied are dropped; entries of a
   * generation Redis no longer has are removed and returned, to be written to PostgreSQL.
   */
  settle(orgId: string, progress: DrainProgress): RetainedEntry[] {
    const list = this.byOrg.get(orgId)
    if (!list) return []
    const lost: RetainedEntry[] = []
    const kept: RetainedEntry[] = []
    for (const entry of list) {
      if (progress.generation !== entry.generation) lost.push(entry)
      else if (!isApplied(entry.entryId, progress)) kept.push(entry)
    }
    this.total -= list.length - kept.length
    if (kept.length === 0) this.byOrg.delete(orgId)
    else this.byOrg.set(orgId, kept)
    return lost
  }
}

function isApplied(entryId: string, progress: DrainProgress): boolean {
  if (compareEntryIds(entryId, progress.lastDeliveredId) > 0) return false
  return progress.firstPendingId === undefined || compareEntryIds(entryId, progress.firstPendingId) < 0
}

/** Orders stream ids (`ms-seq`) numerically. */
export function compareEntryIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-')
  const [bm = '0', bs = '0'] = b.split('-')
  const byMs = Number(am) - Number(bm)
  return byMs !== 0 ? Math.sign(byMs) : Math.sign(Number(as) - Number(bs))
}
