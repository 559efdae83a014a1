/**
 * Writes usage events off the request path: the proxy enqueues and returns; a flush writes the
 * batch in one transaction every `flushIntervalMs` or when `batchSizeMax` events are waiting.
 * `close()` flushes what is left, so SIGTERM loses nothing. The queue is bounded: if the store
 * stays unreachable past `queueLengthMax`, the oldest events are dropped and counted, rather than
 * the process running out of memory.
 */
import type { Logger } from '../observability/logger.js'
import type { UsageStore } from './usage-store.js'
import type { UsageEvent } from './types.js'

export interface UsageRecorderOptions {
  readonly flushIntervalMs: number
  readonly batchSizeMax: number
  readonly queueLengthMax: number
}

export const USAGE_RECORDER_DEFAULTS: UsageRecorderOptions = {
  flushIntervalMs: 100,
  batchSizeMax: 500,
  queueLengthMax: 100_000,
}

export class UsageRecorder {
  private queue: UsageEvent[] = []
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> | undefined
  private droppedCount = 0

  constructor(
    private readonly store: UsageStore,
    private readonly logger: Logger,
    private readonly options: UsageRecorderOptions = USAGE_RECORDER_DEFAULTS,
    private readonly onDepth: (depth: number) => void = () => {},
  ) {}

  record(event: UsageEvent): void {
    if (this.queue.length >= this.options.queueLengthMax) {
      this.queue.shift()
      this.droppedCount++
    }
    this.queue.push(event)
    if (this.queue.length >= this.options.batchSizeMax) void this.flush()
    else this.timer ??= setTimeout(() => void this.flush(), this.options.flushIntervalMs)
  }

  get dropped(): number {
    return this.droppedCount
  }

  get depth(): number {
    return this.queue.length
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    while (this.flushing) await this.flushing
    if (this.queue.length === 0) return
    const batch = this.queue.splice(0, this.options.batchSizeMax)
    this.flushing = this.store
      .insertBatch(batch)
      .catch((error: unknown) => {
        // Put the batch back at the front; the next flush retries it.
        this.queue.unshift(...batch)
        this.logger.error({ err: error, events: batch.length }, 'usage: write failed, will retry')
        this.timer ??= setTimeout(() => void this.flush(), this.options.flushIntervalMs * 10)
      })
      .finally(() => {
        this.flushing = undefined
        this.onDepth(this.queue.length)
      })
    await this.flushing
    if (this.queue.length >= this.options.batchSizeMax) await this.flush()
    else if (this.queue.length > 0) this.timer ??= setTimeout(() => void this.flush(), this.options.flushIntervalMs)
  }

  async close(): Promise<void> {
    for (let attempt = 0; attempt < 5 && this.queue.length > 0; attempt++) await this.flush()
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }
}
