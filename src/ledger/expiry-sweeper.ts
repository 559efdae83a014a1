/**
 * The safety net behind "every path that reserves must settle or void": a reservation whose
 * deadline passed (its process died, or hung) is settled at the reserved amount and flagged
 * `expired` for reconciliation. Bounded: at most `batchSizeMax` per tick.
 */
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../observability/logger.js'
import type { LedgerStore } from './ledger-store.js'
import type { ResolveResult } from './types.js'

export interface ExpirySweeperOptions {
  readonly intervalMs: number
  readonly batchSizeMax: number
}

export class ExpirySweeper {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined

  constructor(
    private readonly store: LedgerStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: ExpirySweeperOptions,
    private readonly onExpired: (results: ResolveResult[]) => void = () => {},
    private readonly onFailure: () => void = () => {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs)
    this.timer.unref()
    void this.tick()
  }

  /** One sweep; loops while full batches come back so a backlog drains promptly. */
  async tick(): Promise<number> {
    if (this.running) return 0
    let total = 0
    this.running = (async () => {
      try {
        for (;;) {
          const expired = await this.store.expireOverdue(this.clock.nowMs(), this.options.batchSizeMax)
          total += expired.length
          if (expired.length > 0) {
            this.onExpired(expired)
            this.logger.warn({ reservations: expired.length }, 'ledger: overdue reservations settled at their reserved amount (flagged expired)')
          }
          if (expired.length < this.options.batchSizeMax) break
        }
      } catch (error) {
        this.onFailure()
        this.logger.error({ err: error }, 'ledger: expiry sweep failed; the next sweep retries')
      }
    })()
    await this.running
    this.running = undefined
    return total
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }
}
