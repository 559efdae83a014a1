/**
 * The one way domains emit a notification: resolve its channels (the budget's list or every
 * configured channel, filtered by preferences) and write it to the inbox and the outbox in one
 * step. Delivery happens later, in the dispatcher, so emitting never waits on a receiver.
 */
import type { Clock } from '../lib/clock.js'
import type { NotificationChannel } from '../config/types.js'
import type { Notification } from './notification.js'
import type { FiringMark, OutboxStore } from './outbox.js'
import { resolveChannels, type PreferenceStore } from './preferences.js'

/** What domains depend on (budgets, ledger, tickets): they never see the outbox. */
export interface NotificationSink {
  /**
   * Stores `notification` in the org's inbox and queues it for delivery. `channelIds` undefined
   * means every configured channel; ids that are not configured are dropped.
   */
  emit(notification: Notification, channelIds: readonly string[] | undefined): Promise<EmitResult>
  /**
   * As `emit`, once per `mark.dedupeKey` ever, across processes: the mark and the notice are
   * written in one transaction (see `FiringMark`). Undefined when the mark was taken before, by
   * this process or another; then nothing is written.
   */
  emitOnce(notification: Notification, channelIds: readonly string[] | undefined, mark: FiringMark): Promise<EmitResult | undefined>
}

export interface EmitResult {
  readonly notificationId: string
  readonly channelIds: readonly string[]
}

export interface NotifierDeps {
  readonly outbox: OutboxStore
  readonly preferences: PreferenceStore
  readonly channels: readonly NotificationChannel[]
  readonly clock: Clock
}

export class Notifier implements NotificationSink {
  private readonly configuredIds: readonly string[]

  constructor(private readonly deps: NotifierDeps) {
    this.configuredIds = deps.channels.map((c) => c.id)
  }

  async emit(notification: Notification, channelIds: readonly string[] | undefined): Promise<EmitResult> {
    const resolved = await this.channelsOf(notification, channelIds)
    await this.deps.outbox.enqueue(notification, resolved, this.deps.clock.nowMs())
    return { notificationId: notification.id, channelIds: resolved }
  }

  async emitOnce(notification: Notification, channelIds: readonly string[] | undefined, mark: FiringMark): Promise<EmitResult | undefined> {
    const resolved = await this.channelsOf(notification, channelIds)
    const written = await this.deps.outbox.enqueue(notification, resolved, this.deps.clock.nowMs(), mark)
    return written ? { notificationId: notification.id, channelIds: resolved } : undefined
  }

  private async channelsOf(notification: Notification, channelIds: readonly string[] | undefined): Promise<string[]> {
    const configured = new Set(this.configuredIds)
    const candidates = (channelIds ?? this.configuredIds).filter((id) => configured.has(id))
    const preferences = candidates.length === 0 ? [] : await this.deps.preferences.listPreferences(notification.orgId)
    return resolveChannels(notification.type, [...new Set(candidates)], preferences)
  }
}
