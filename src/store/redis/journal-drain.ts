/**
 * Drains the orgs' journal streams (`tg:{org}:journal`, written by the Lua scripts in the same
 * atomic step as each money move) into PostgreSQL: ledger events through `tg_journal_apply`,
 * usage events through the usage store. Every gateway process runs one; they share the work
 * through a Redis consumer group, so each entry is applied by one process at a time.
 *
 * Delivery is at least once and application idempotent (journal events carry their own ids;
 * usage events insert-or-ignore), so:
 * - an entry is acknowledged (and deleted) only after PostgreSQL committed it;
 * - an entry read by a process that died before acknowledging it is claimed by another process
 *   once it has been idle `claimIdleMs` (XAUTOCLAIM), and applied again, harmlessly;
 * - an entry this process read and failed to apply (PostgreSQL broke the connection, a deadlock)
 *   is read again by this process on its next attempts (up to OWN_RETRIES), from its own pending
 *   list, rather than left for XAUTOCLAIM; after that it is left to XAUTOCLAIM, so a batch that
 *   keeps failing cannot hold back the entries behind it, and read again by this process once a
 *   drain has worked (PostgreSQL is back), instead of waiting `claimIdleMs` for XAUTOCLAIM;
 * - while PostgreSQL is down, entries stay in Redis (bounded by RESERVE's backlog check) and are
 *   retried with back-off.
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type pg from 'pg'
import type { UsageEvent } from '../../usage/types.js'
import { jsonbArrayParam, jsonbSafeBytes } from '../postgres/db.js'
import { isDataError, parkDeadLetter } from '../postgres/journal.js'
import { usageRowJson } from '../sqlite/usage-store.js'
import type { RedisKeys } from './keys.js'
import { ACKNOWLEDGE, JOURNAL_GROUP } from './lua.js'
import { ScriptRunner } from './scripts.js'
import type { DrainProgress } from './retained.js'

export interface JournalDrainOptions {
  /**
   * Pause between drains unless the last one read a full batch (a backlog): at a trickle, a drain
   * every call would cost a PostgreSQL transaction and five Redis commands per call.
   */
  readonly intervalMs: number
  /** Entries read per org per drain. */
  readonly batchSizeMax: number
  /** An entry read but not acknowledged for this long belongs to a dead reader: another takes it. */
  readonly claimIdleMs: number
  /** Back-off cap while PostgreSQL is unreachable. */
  readonly retryDelayMaxMs: number
  /** A resolved reservation's hash is kept this long once its resolution is in PostgreSQL. */
  readonly confirmedRetentionMs: number
}

/**
 * Attempts in a row that read this consumer's failed entries again before new ones. A transient
 * failure (a broken connection, a deadlock) clears on the first; a batch PostgreSQL rejects every
 * time for a reason other than its data must not stall the drain.
 */
const OWN_RETRIES = 3

export const JOURNAL_DRAIN_DEFAULTS: JournalDrainOptions = {
  intervalMs: 20,
  batchSizeMax: 1_000,
  claimIdleMs: 10_000,
  retryDelayMaxMs: 2_000,
  confirmedRetentionMs: 60_000,
}

/** Writes a batch of drained usage rows (`usageRowJson`, as UTF-8 bytes) to PostgreSQL (insert-or-ignore). */
export type UsageSink = (rows: readonly Buffer[]) => Promise<unknown>

/**
 * A journal entry as read: its fields stay the bytes Redis holds (read with the `…Buffer`
 * commands), since they go to PostgreSQL as they are and are never parsed here.
 */
interface Entry {
  readonly org: string
  readonly id: string
  readonly journal: Buffer | undefined
  readonly usage: Buffer | undefined
}

/**
 * The stream commands whose replies are read as bytes. ioredis has the `…Buffer` form of every
 * command at runtime, but its types lack these two. (`callBuffer` is no substitute: with
 * auto-pipelining, ioredis drops its command name.)
 */
interface StreamBufferCommands {
  xreadgroupBuffer(...args: Array<string | number>): unknown
  xautoclaimBuffer(...args: Array<string | number>): Promise<unknown>
}

/** A pending entry whose message is gone from the stream comes back with no fields (null). */
type StreamReply = [Buffer, [Buffer, Buffer[] | null][]][] | null

export class JournalDrain {
  private readonly consumer = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  private timer: NodeJS.Timeout | undefined
  private running: Promise<number> | undefined
  /** Drains failed in a row (by the timer or a flush). */
  private failures = 0
  private lastClaimMs = 0
  /** The last drain failed: entries this consumer read and did not acknowledge are read again first. */
  private rereadOwn = false
  private closed = false
  private readonly groupsMade = new Set<string>()
  private readonly scripts: ScriptRunner

  constructor(
    private readonly redis: Redis,
    private readonly pool: pg.Pool,
    private readonly keys: RedisKeys,
    private readonly insertUsage: UsageSink,
    private readonly loadedOrgs: () => Promise<string[]>,
    private readonly options: JournalDrainOptions = JOURNAL_DRAIN_DEFAULTS,
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    this.scripts = new ScriptRunner(redis)
  }

  /** Redis commands this drain has sent (they are not on any request's path). */
  commands = 0

  start(): void {
    this.schedule(0)
  }

  /** False while the last attempt to write PostgreSQL failed. */
  healthy(): boolean {
    return this.failures === 0
  }

  /**
   * Applies everything journaled so far — by this process or any other — unless it takes longer
   * than `timeoutMs`. Returns whether the journal was empty at the end (nothing left to apply).
   */
  async flush(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const applied = await this.drainNow()
      if (applied === 0 && (await this.inFlight()) === 0) return true
      if (Date.now() > deadline) return false
      if (applied === 0) await sleep(10)
    }
  }

  /** Entries in the streams not yet applied (read by nobody, or read and not acknowledged). */
  async backlog(): Promise<number> {
    const orgs = await this.loadedOrgs()
    if (orgs.length === 0) return 0
    const pipeline = this.redis.pipeline()
    for (const org of orgs) pipeline.xlen(this.keys.journal(org))
    this.commands += orgs.length
    const replies = (await pipeline.exec()) ?? []
    return replies.reduce((sum, [, n]) => sum + Number(n ?? 0), 0)
  }

  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return
    await this.flush(timeoutMs).catch(() => false)
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    await this.running?.catch(() => 0)
    this.redis.disconnect()
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.timer !== undefined) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.drainNow()
        // At once only behind a backlog; otherwise entries gather for intervalMs (see its doc).
        .then((applied) => this.schedule(applied >= this.options.batchSizeMax ? 0 : this.options.intervalMs))
        .catch((error: unknown) => {
          this.onError(error)
          this.schedule(Math.min(this.options.retryDelayMaxMs, 50 * 2 ** Math.min(this.failures, 6)))
        })
    }, delayMs)
    this.timer.unref()
  }

  /** One drain (waits for a running one first). Returns how many entries it applied. */
  private async drainNow(): Promise<number> {
    while (this.running) await this.running.catch(() => 0)
    this.running = this.drainOnce()
    try {
      const applied = await this.running
      // Past OWN_RETRIES the failed entries were left behind: now that a drain works, read them again.
      if (this.failures > OWN_RETRIES) this.rereadOwn = true
      this.failures = 0
      return applied
    } catch (error) {
      this.failures++
      this.rereadOwn = this.failures <= OWN_RETRIES
      throw error
    } finally {
      this.running = undefined
    }
  }

  private async drainOnce(): Promise<number> {
    const orgs = await this.loadedOrgs()
    if (orgs.length === 0) return 0
    await this.ensureGroups(orgs)
    let entries = this.rereadOwn ? await this.read(orgs, '0') : []
    if (entries.length === 0) {
      this.rereadOwn = false
      entries = await this.read(orgs, '>')
    }
    if (Date.now() - this.lastClaimMs >= this.options.claimIdleMs / 2) {
      this.lastClaimMs = Date.now()
      entries.push(...(await this.claimAbandoned(orgs)))
    }
    if (entries.length === 0) return 0
    await this.apply(entries)
    await this.acknowledge(entries)
    return entries.length
  }

  private async ensureGroups(orgs: readonly string[]): Promise<void> {
    for (const org of orgs) {
      if (this.groupsMade.has(org)) continue
      this.commands++
      await this.redis.xgroup('CREATE', this.keys.journal(org), JOURNAL_GROUP, '0', 'MKSTREAM').catch((error: unknown) => {
        if (!String((error as Error).message).includes('BUSYGROUP')) throw error
      })
      this.groupsMade.add(org)
    }
  }

  /** `>`: entries no reader has had yet. `0`: entries this consumer read and has not acknowledged. */
  private async read(orgs: readonly string[], from: '>' | '0'): Promise<Entry[]> {
    const pipeline = this.redis.pipeline()
    const asBytes = pipeline as unknown as StreamBufferCommands
    for (const org of orgs) {
      asBytes.xreadgroupBuffer('GROUP', JOURNAL_GROUP, this.consumer, 'COUNT', this.options.batchSizeMax, 'STREAMS', this.keys.journal(org), from)
    }
    this.commands += orgs.length
    const replies = (await pipeline.exec()) ?? []
    const entries: Entry[] = []
    replies.forEach(([error, reply], i) => {
      const org = orgs[i]!
      if (error) {
        // The stream or its group vanished (Redis flushed): make the group again next time.
        if (String(error.message).includes('NOGROUP')) this.groupsMade.delete(org)
        return
      }
      for (const [, messages] of (reply as StreamReply) ?? []) for (const [id, fields] of messages) entries.push(entryOf(org, id, fields ?? []))
    })
    return entries
  }

  private async claimAbandoned(orgs: readonly string[]): Promise<Entry[]> {
    const entries: Entry[] = []
    for (const org of orgs) {
      this.commands++
      const reply = (await (this.redis as unknown as StreamBufferCommands)
        .xautoclaimBuffer(this.keys.journal(org), JOURNAL_GROUP, this.consumer, this.options.claimIdleMs, '0', 'COUNT', this.options.batchSizeMax)
        .catch(() => null)) as [Buffer, [Buffer, Buffer[] | null][]] | null
      for (const [id, fields] of reply?.[1] ?? []) {
        if (fields) entries.push(entryOf(org, id, fields))
      }
    }
    return entries
  }

  /** Ledger events, then usage events; both idempotent, so a retry after a failure re-applies safely. */
  private async apply(entries: readonly Entry[]): Promise<void> {
    const journal = entries.flatMap((e) => (e.journal === undefined ? [] : [jsonbSafeBytes(e.journal)]))
    if (journal.length > 0) await this.applyJournal(journal)
    const usage = entries.flatMap((e) => (e.usage === undefined ? [] : [usageRowBytes(e.usage)]))
    if (usage.length > 0) await this.insertUsage(usage)
  }

  /**
   * One call per batch. A batch PostgreSQL rejects for its data (SQLSTATE class 22 or 23: a bug,
   * not an outage) is replayed event by event, and an event that still fails is parked in
   * `journal_dead_letters` so it cannot block the events behind it.
   */
  private async applyJournal(events: readonly Buffer[]): Promise<void> {
    try {
      await this.pool.query('SELECT tg_journal_apply($1::jsonb)', [jsonbArrayParam(events)])
      return
    } catch (error) {
      if (!isDataError(error)) throw error
    }
    for (const event of events) {
      try {
        await this.pool.query('SELECT tg_journal_apply($1::jsonb)', [jsonbArrayParam([event])])
      } catch (error) {
        if (!isDataError(error)) throw error
        await parkDeadLetter(this.pool, event.toString('utf8'), error)
        this.onError(error)
      }
    }
  }

  /**
   * Acknowledges and deletes the applied entries, and lets each resolved reservation's hash expire
   * soon: one ACKNOWLEDGE script per org, sent together.
   */
  private async acknowledge(entries: readonly Entry[]): Promise<void> {
    const byOrg = new Map<string, { ids: string[]; resolved: string[] }>()
    for (const e of entries) {
      let org = byOrg.get(e.org)
      if (org === undefined) byOrg.set(e.org, (org = { ids: [], resolved: [] }))
      org.ids.push(e.id)
      const resolved = resolvedReservationOf(e.journal)
      if (resolved !== undefined) org.resolved.push(this.keys.reservation(e.org, resolved))
    }
    const retention = String(this.options.confirmedRetentionMs)
    await Promise.all(
      [...byOrg].map(([org, { ids, resolved }]) => {
        this.commands++
        return this.scripts.eval(ACKNOWLEDGE, [this.keys.journal(org), ...resolved], [JOURNAL_GROUP, retention, ...ids])
      }),
    )
  }

  /** How far the drain got in each org's stream, and each org's generation (retained.ts). */
  async progress(orgs: readonly string[]): Promise<Map<string, DrainProgress>> {
    const pipeline = this.redis.pipeline()
    for (const org of orgs) {
      pipeline.get(this.keys.loaded(org))
      pipeline.xinfo('GROUPS', this.keys.journal(org))
      pipeline.xpending(this.keys.journal(org), JOURNAL_GROUP)
    }
    this.commands += orgs.length * 3
    const replies = (await pipeline.exec()) ?? []
    const progress = new Map<string, DrainProgress>()
    orgs.forEach((org, i) => {
      const [, generation] = replies[i * 3] ?? []
      const [groupsError, groups] = replies[i * 3 + 1] ?? []
      const [pendingError, pending] = replies[i * 3 + 2] ?? []
      const group = groupsError ? undefined : ((groups as unknown[][] | null) ?? []).map(fieldsOf).find((g) => g.name === JOURNAL_GROUP)
      const summary = pendingError ? undefined : (pending as [number, string | null] | null)
      progress.set(org, {
        generation: typeof generation === 'string' ? generation : undefined,
        lastDeliveredId: typeof group?.['last-delivered-id'] === 'string' ? group['last-delivered-id'] : '0-0',
        firstPendingId: summary && Number(summary[0]) > 0 && summary[1] ? summary[1] : undefined,
      })
    })
    return progress
  }

  /** Entries read by some reader and not yet acknowledged, across the loaded orgs. */
  private async inFlight(): Promise<number> {
    const orgs = await this.loadedOrgs()
    if (orgs.length === 0) return 0
    const pipeline = this.redis.pipeline()
    for (const org of orgs) pipeline.xpending(this.keys.journal(org), JOURNAL_GROUP)
    this.commands += orgs.length
    const replies = (await pipeline.exec()) ?? []
    return replies.reduce((sum, [error, reply]) => sum + (error ? 0 : Number((reply as [number])[0] ?? 0)), 0)
  }
}

/** A flat [name, value, name, value…] reply → record. */
function fieldsOf(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1]
  return out
}

const J = 0x6a // 'j'
const U = 0x75 // 'u'

function entryOf(org: string, id: Buffer, fields: readonly Buffer[]): Entry {
  let journal: Buffer | undefined
  let usage: Buffer | undefined
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!
    if (name.length !== 1) continue
    if (name[0] === J) journal = fields[i + 1]
    else if (name[0] === U) usage = fields[i + 1]
  }
  return { org, id: id.toString('latin1'), journal, usage }
}

const ROW_OPEN = 0x5b // '['

/**
 * A journal entry's usage as a `usageRowJson` row, passed through as written. Entries written
 * before rows were journaled carry the event's JSON (an object), converted here.
 */
function usageRowBytes(usage: Buffer): Buffer {
  return usage[0] === ROW_OPEN ? usage : Buffer.from(usageRowJson(JSON.parse(usage.toString('utf8')) as UsageEvent))
}

const RESOLVE_PREFIX = Buffer.from('{"kind":"resolve"')
const RESERVATION_ID = Buffer.from('"r":{"id":"')
const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * The reservation a `resolve` journal event finished, read without decoding the whole event: ids
 * are plain ASCII, so the bytes up to the closing quote are the id. One with an escape in it is
 * read as JSON.
 */
export function resolvedReservationOf(journal: Buffer | undefined): string | undefined {
  if (journal === undefined || !journal.subarray(0, RESOLVE_PREFIX.length).equals(RESOLVE_PREFIX)) return undefined
  const at = journal.indexOf(RESERVATION_ID)
  if (at < 0) return undefined
  const start = at + RESERVATION_ID.length
  const end = journal.indexOf(QUOTE, start)
  if (end < 0) return undefined
  const escaped = journal.indexOf(BACKSLASH, start)
  if (escaped < 0 || escaped > end) return journal.toString('utf8', start, end)
  const match = /^"(?:[^"\\]|\\.)*"/.exec(journal.toString('utf8', start - 1))
  return match ? (JSON.parse(match[0]) as string) : undefined
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
