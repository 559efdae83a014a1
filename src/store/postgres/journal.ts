/**
 * The ledger journal: every reservation, resolution and counter bump made in Redis is appended
 * here and written to PostgreSQL off the request path, in batches (one `tg_journal_apply` call per
 * batch, one round trip). The queue lives in memory and is bounded; while PostgreSQL is down it
 * keeps everything and retries with back-off, and the ledger stops admitting new reservations
 * once it is full (`isFull`), rather than dropping money moves.
 *
 * Guarantee: an event is removed from the queue only after its batch committed; its `onCommitted`
 * callback (e.g. "the reservation may now be forgotten in Redis") runs after that commit.
 */
import type pg from 'pg'
import { jsonbSafe } from './db.js'

export interface JournalEvent {
  readonly kind: 'reserve' | 'resolve' | 'spend' | 'charge'
  readonly [field: string]: unknown
}

export interface JournalOptions {
  /** Pause between flushes when events trickle in. */
  readonly flushIntervalMs: number
  /** Events per `tg_journal_apply` call. */
  readonly batchSizeMax: number
  /** Queue bound: beyond it the ledger refuses new reservations (store_unavailable). */
  readonly queueSizeMax: number
  /** Back-off cap while PostgreSQL is unreachable. */
  readonly retryDelayMaxMs: number
}

export const JOURNAL_DEFAULTS: JournalOptions = {
  flushIntervalMs: 50,
  batchSizeMax: 500,
  queueSizeMax: 100_000,
  retryDelayMaxMs: 2_000,
}

interface Queued {
  readonly seq: number
  readonly event: JournalEvent
  readonly onCommitted: (() => void) | undefined
}

export class Journal {
  private queue: Queued[] = []
  private seq = 0
  private committedSeq = 0
  private timer: NodeJS.Timeout | undefined
  private writing: Promise<void> | undefined
  private failures = 0
  private lastError: string | undefined
  private closed = false
  private readonly waiters: { seq: number; resolve: () => void }[] = []

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: JournalOptions = JOURNAL_DEFAULTS,
    private readonly onError: (error: unknown, queued: number) => void = () => {},
  ) {}

  /** Queues an event; returns at once. The caller's money move is already done in Redis. */
  append(event: JournalEvent, onCommitted?: () => void): void {
    this.queue.push({ seq: ++this.seq, event, onCommitted })
    this.schedule(this.queue.length >= this.options.batchSizeMax ? 0 : this.options.flushIntervalMs)
  }

  get size(): number {
    return this.queue.length
  }

  isFull(): boolean {
    return this.queue.length >= this.options.queueSizeMax
  }

  /** False while the last write failed (PostgreSQL unreachable) and events are waiting. */
  healthy(): boolean {
    return this.failures === 0
  }

  get error(): string | undefined {
    return this.lastError
  }

  /**
   * Resolves once everything appended before the call is committed, or after `timeoutMs`
   * (reads then see PostgreSQL as it is). Returns whether it got there.
   */
  async flush(timeoutMs = 5_000): Promise<boolean> {
    const target = this.seq
    if (this.committedSeq >= target) return true
    this.schedule(0)
    let timer: NodeJS.Timeout | undefined
    const reached = await Promise.race([
      new Promise<boolean>((resolve) => this.waiters.push({ seq: target, resolve: () => resolve(true) })),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs)
      }),
    ])
    clearTimeout(timer)
    return reached
  }

  /** Stops the timer after a last flush attempt bounded by `timeoutMs`. */
  async close(timeoutMs = 5_000): Promise<void> {
    await this.flush(timeoutMs)
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }

  private schedule(delayMs: number): void {
    if (this.closed) return
    if (this.timer !== undefined) {
      if (delayMs > 0) return
      clearTimeout(this.timer)
    }
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.drain()
    }, delayMs)
  }

  private async drain(): Promise<void> {
    if (this.writing) return
    this.writing = (async () => {
      while (this.queue.length > 0) {
        const batch = this.queue.slice(0, this.options.batchSizeMax)
        try {
          await this.write(batch)
        } catch (error) {
          this.failures++
          this.lastError = error instanceof Error ? error.message : String(error)
          this.onError(error, this.queue.length)
          // Deadlocks between processes' batches and an unreachable server are both retried:
          // events are idempotent, so a batch whose commit was not acknowledged is safe to resend.
          const delay = Math.min(this.options.retryDelayMaxMs, 50 * 2 ** Math.min(this.failures, 6))
          this.writing = undefined
          this.schedule(delay)
          return
        }
        this.failures = 0
        this.lastError = undefined
        this.queue.splice(0, batch.length)
        const last = batch[batch.length - 1]
        if (last) this.committedSeq = last.seq
        for (const q of batch) {
          try {
            q.onCommitted?.()
          } catch {
            // a callback's failure must not stall the journal
          }
        }
        this.wake()
      }
      this.committedSeq = this.seq
      this.wake()
    })()
    try {
      await this.writing
    } finally {
      this.writing = undefined
    }
  }

  /**
   * One batch in one call. A batch PostgreSQL rejects for its data (SQLSTATE class 22 or 23: a
   * bug, not an outage) is replayed event by event, and an event that still fails is parked in
   * `journal_dead_letters` so it cannot block the events behind it.
   */
  private async write(batch: readonly Queued[]): Promise<void> {
    try {
      await this.pool.query('SELECT tg_journal_apply($1::jsonb)', [jsonbSafe(JSON.stringify(batch.map((q) => q.event)))])
      return
    } catch (error) {
      if (!isDataError(error)) throw error
    }
    for (const q of batch) {
      try {
        await this.pool.query('SELECT tg_journal_apply($1::jsonb)', [jsonbSafe(JSON.stringify([q.event]))])
      } catch (error) {
        if (!isDataError(error)) throw error
        await parkDeadLetter(this.pool, jsonbSafe(JSON.stringify(q.event)), error)
        this.onError(error, this.queue.length)
      }
    }
  }

  private wake(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i]!
      if (waiter.seq <= this.committedSeq) {
        this.waiters.splice(i, 1)
        waiter.resolve()
      }
    }
  }
}

/** An error PostgreSQL raised for the data it was given (SQLSTATE class 22 or 23), not an outage. */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'))
}

/**
 * Parks an event PostgreSQL refused for its data in `journal_dead_letters`, so it cannot hold back
 * the events behind it. Should the event not even parse as jsonb, it is kept as a JSON string.
 */
export async function parkDeadLetter(pool: pg.Pool, event: string, error: unknown): Promise<void> {
  const message = error instanceof Error ? error.message : String(error)
  const insert = 'INSERT INTO journal_dead_letters (event, error, at_ms) VALUES ($1::jsonb, $2, $3)'
  try {
    await pool.query(insert, [event, message, Date.now()])
  } catch (parkError) {
    if (!isDataError(parkError)) throw parkError
    await pool.query(insert, [jsonbSafe(JSON.stringify(event)), message, Date.now()])
  }
}
