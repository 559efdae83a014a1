/**
 * The one way domains emit a notification: resolve its channels (the budget's list or every
 * configured channel, filtered by preferences) and write it to the inbox and the outbox in one
 * step. Delivery happens later, in the dispatcher, so emitting never waits on a receiver.
 */
import type { Clock } from '../lib/clock.js'
import type { NotificationChannel } from '../config/types.js'
import type { Notification } from './notification.js'
import type { OutboxStore } from './outbox.js'
import { resolveChannels, type PreferenceStore } from './preferences.js'

/** What domains depend on (budgets, ledger, tickets): they never see the outbox. */
export interface NotificationSink {
  /**
   * Stores `notification` in the org's inbox and queues it for delivery. `channelIds` undefined
   * means every configured channel; ids that are not configured are dropped.
   */
  emit(notification: Notification, channelIds: readonly string[] | undefined): Promise<EmitResult>
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
    const configured = new Set(this.configuredIds)
    const candidates = (channelIds ?? this.configuredIds).filter((id) => configured.has(id))
    const preferences = candidates.length === 0 ? [] : await this.deps.preferences.listPreferences(notification.orgId)
    const resolved = resolveChannels(notification.type, [...new Set(candidates)], preferences)
    await this.deps.outbox.enqueue(notification, resolved, this.deps.clock.nowMs())
    return { notificationId: notification.id, channelIds: resolved }
  }
}
