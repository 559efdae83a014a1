/**
 * The dispatcher: a bounded loop that claims due outbox items, hands each to its channel, and
 * records the outcome — delivered, retry later (capped exponential back-off with jitter), or dead
 * after `outboxAttemptsMax`. `tick()` does one round and is what tests call; `start()` runs ticks
 * on an interval, never two at once; `stop()` waits for the round in flight.
 */
import { assert } from '../lib/assert.js'
import type { Clock } from '../lib/clock.js'
import type { ChannelSender } from './channels/channel.js'
import { RETRY_POLICY_DEFAULT, retryDelayMs, type ClaimedDelivery, type OutboxStore, type RetryPolicy } from './outbox.js'

export interface DispatcherOptions {
  readonly retry: RetryPolicy
  /** Items claimed per tick. */
  readonly batchSize: number
  /** How long a claim is held; longer than the slowest channel timeout, so a live delivery keeps it. */
  readonly leaseMs: number
  readonly pollIntervalMs: number
  /** Deliveries in flight at once within a tick. */
  readonly concurrency: number
}

export const DISPATCHER_OPTIONS_DEFAULT: DispatcherOptions = {
  retry: RETRY_POLICY_DEFAULT,
  batchSize: 50,
  leaseMs: 60_000,
  pollIntervalMs: 1_000,
  concurrency: 8,
}

export type DeliveryOutcome = 'delivered' | 'retry_scheduled' | 'dead' | 'lease_lost'

export interface DeliveryReport {
  readonly itemId: string
  readonly notificationId: string
  readonly channelId: string
  readonly attempt: number
  readonly outcome: DeliveryOutcome
  readonly error: string | undefined
}

export interface DispatcherDeps {
  readonly outbox: OutboxStore
  readonly senders: readonly ChannelSender[]
  readonly clock: Clock
  readonly options?: Partial<DispatcherOptions>
  readonly random?: () => number
  /** Called once per delivery attempt (logging, metrics). */
  readonly onDelivery?: (report: DeliveryReport) => void
  /** A tick started by `start()` failed as a whole (the store was unreachable); the loop goes on. */
  readonly onError?: (error: unknown) => void
}

/** Longest error text kept on an outbox item. */
const ERROR_CHARS_MAX = 500

export class Dispatcher {
  private readonly options: DispatcherOptions
  private readonly senders: ReadonlyMap<string, ChannelSender>
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined

  constructor(private readonly deps: DispatcherDeps) {
    this.options = { ...DISPATCHER_OPTIONS_DEFAULT, ...deps.options }
    assert(this.options.retry.outboxAttemptsMax >= 1, 'outboxAttemptsMax must be at least 1')
    assert(this.options.batchSize >= 1 && this.options.concurrency >= 1, 'batchSize and concurrency must be positive')
    this.senders = new Map(deps.senders.map((s) => [s.id, s]))
  }

  /** One round: claim up to `batchSize` due items and deliver them. Returns what happened. */
  async tick(): Promise<DeliveryReport[]> {
    const claimed = await this.deps.outbox.claimDue(this.deps.clock.nowMs(), this.options.batchSize, this.options.leaseMs)
    const reports: DeliveryReport[] = []
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < claimed.length) {
        const delivery = claimed[next++]!
        reports.push(await this.deliver(delivery))
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, claimed.length) }, worker))
    return reports
  }

  start(): void {
    if (this.timer) return
    this.timer = setInterval(() => {
      if (this.running) return
      this.running = this.tick()
        .catch((error: unknown) => this.deps.onError?.(error))
        .finally(() => {
          this.running = undefined
        })
    }, this.options.pollIntervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  private async deliver(delivery: ClaimedDelivery): Promise<DeliveryReport> {
    const { item, leaseToken, notification } = delivery
    const base = { itemId: item.id, notificationId: notification.id, channelId: item.channelId, attempt: item.attempts }
    let error: string | undefined
    const sender = this.senders.get(item.channelId)
    if (!sender) {
      error = `channel ${item.channelId} is not configured`
    } else {
      try {
        await sender.send(notification)
      } catch (caught) {
        error = (caught instanceof Error ? caught.message : String(caught)).slice(0, ERROR_CHARS_MAX) || 'delivery failed'
      }
    }
    const nowMs = this.deps.clock.nowMs()
    let report: DeliveryReport
    if (error === undefined) {
      const kept = await this.deps.outbox.markDelivered(item.id, leaseToken, nowMs)
      report = { ...base, outcome: kept ? 'delivered' : 'lease_lost', error: undefined }
    } else {
      const isLastAttempt = item.attempts >= this.options.retry.outboxAttemptsMax
      const retryAtMs = isLastAttempt ? undefined : nowMs + retryDelayMs(item.attempts, this.options.retry, this.deps.random)
      const kept = await this.deps.outbox.markFailed(item.id, leaseToken, error, retryAtMs)
      report = { ...base, outcome: !kept ? 'lease_lost' : isLastAttempt ? 'dead' : 'retry_scheduled', error }
    }
    this.deps.onDelivery?.(report)
    return report
  }
}
