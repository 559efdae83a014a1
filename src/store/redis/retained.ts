/**
 * What this process journaled into Redis that is not yet known to be in PostgreSQL. Normally the
 * journal drain applies it within milliseconds and it is dropped here. If Redis loses the org
 * first (restarted empty, flushed) — which the org's generation marker shows — these entries are
 * written to PostgreSQL directly, before the org's rebuild reads it (the rebuilder waits for
 * that), so a Redis restart loses no money move that a live gateway made.
 */
import type { JournalEvent } from '../postgres/journal.js'

export interface RetainedEntry {
  /** The journal stream entry's id (`ms-seq`). */
  readonly entryId: string
  /** The org's generation when it was journaled. */
  readonly generation: string
  /** The ledger event, built only if it has to be replayed. */
  readonly journal: (() => JournalEvent) | undefined
  /**
   * The usage row as journaled (`usageRowJson`): one flat string, not the event's object graph.
   * Entries live a few drain cycles, long enough to be copied by the young-generation GC and
   * promoted; a string is one object to copy.
   */
  readonly usageRow: string | undefined
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

/** An entry with its stream id parsed once (ids are compared on every check). */
interface Held {
  readonly entry: RetainedEntry
  readonly ms: number
  readonly seq: number
}

/**
 * Per org, entries in the order their journal writes were answered. One connection carries them,
 * so that is stream order and the applied ones form a prefix: a check drops that prefix and stops
 * at the first entry not yet applied, instead of comparing every entry held (tens of thousands
 * under load). Should an entry ever be out of order, it is only held until a later check.
 */
export class Retained {
  private readonly byOrg = new Map<string, Held[]>()
  private total = 0

  constructor(private readonly entriesMax: number) {}

  add(orgId: string, entry: RetainedEntry): void {
    let list = this.byOrg.get(orgId)
    if (!list) this.byOrg.set(orgId, (list = []))
    const [ms, seq] = parseEntryId(entry.entryId)
    list.push({ entry, ms, seq })
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
    const reached = reachOf(progress)
    let kept: Held[]
    if (list.some((held) => held.entry.generation !== progress.generation)) {
      // Redis lost the org (rare): sort every entry into lost, applied and kept.
      kept = []
      for (const held of list) {
        if (held.entry.generation !== progress.generation) lost.push(held.entry)
        else if (!isApplied(held, reached)) kept.push(held)
      }
    } else {
      let applied = 0
      while (applied < list.length && isApplied(list[applied]!, reached)) applied++
      kept = applied === 0 ? list : list.slice(applied)
    }
    this.total -= list.length - kept.length
    if (kept.length === 0) this.byOrg.delete(orgId)
    else this.byOrg.set(orgId, kept)
    return lost
  }
}

/** The drain's progress with its ids parsed. */
interface Reach {
  readonly delivered: [number, number]
  readonly firstPending: [number, number] | undefined
}

function reachOf(progress: DrainProgress): Reach {
  return {
    delivered: parseEntryId(progress.lastDeliveredId),
    firstPending: progress.firstPendingId === undefined ? undefined : parseEntryId(progress.firstPendingId),
  }
}

/** Delivered to a drain and no longer among those still being applied. */
function isApplied(held: Held, reach: Reach): boolean {
  if (compareParsed(held, reach.delivered) > 0) return false
  return reach.firstPending === undefined || compareParsed(held, reach.firstPending) < 0
}

function parseEntryId(id: string): [ms: number, seq: number] {
  const dash = id.indexOf('-')
  return dash < 0 ? [Number(id), 0] : [Number(id.slice(0, dash)), Number(id.slice(dash + 1))]
}

function compareParsed(a: { ms: number; seq: number }, [ms, seq]: [number, number]): number {
  return a.ms !== ms ? Math.sign(a.ms - ms) : Math.sign(a.seq - seq)
}

/** Orders stream ids (`ms-seq`) numerically. */
export function compareEntryIds(a: string, b: string): number {
  const [am, as] = parseEntryId(a)
  return compareParsed({ ms: am, seq: as }, parseEntryId(b))
}
