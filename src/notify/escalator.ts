/**
 * Escalation: a notice that asked to escalate (`Notification.escalation`) and is still
 * unacknowledged when its time comes produces ONE `budget.escalated` notice to the channels it
 * named (the budget's owner and the configured escalation channels). The due time lives in the
 * store with the notice, so a restart loses nothing; the claim marks it escalated in one atomic
 * write, so several gateways polling the same store send it once.
 */
import type { Clock } from '../lib/clock.js'
import { formatDuration } from '../lib/duration.js'
import { newNotification, notificationTitle, type Notification } from './notification.js'
import type { NotificationSink } from './notifier.js'
import type { EscalationStore } from './outbox.js'

export interface EscalatorDeps {
  readonly store: EscalationStore
  readonly sink: NotificationSink
  readonly clock: Clock
  readonly onError?: (error: unknown, notificationId: string) => void
}

/** Claims per tick; more wait for the next tick. */
const ESCALATIONS_PER_TICK = 50

export class Escalator {
  constructor(private readonly deps: EscalatorDeps) {}

  /** Sends every due escalation this process wins; resolves to the escalation notices written. */
  async tick(): Promise<Notification[]> {
    const nowMs = this.deps.clock.nowMs()
    const due = await this.deps.store.claimDueEscalations(nowMs, ESCALATIONS_PER_TICK)
    const sent: Notification[] = []
    for (const original of due) {
      try {
        const notice = escalationOf(original, nowMs)
        await this.deps.sink.emit(notice, original.escalation?.channelIds ?? [])
        sent.push(notice)
      } catch (error) {
        // Not written: give the claim back so the next tick (here or elsewhere) tries again.
        await this.deps.store.releaseEscalation(original.id).catch(() => {})
        this.deps.onError?.(error, original.id)
      }
    }
    return sent
  }
}

/** The escalation notice: the original's context, what it escalates and for how long it waited. */
export function escalationOf(original: Notification, nowMs: number): Notification {
  const waitedMs = Math.max(0, (original.escalation?.atMs ?? nowMs) - original.createdAtMs)
  return newNotification(
    'budget.escalated',
    original.orgId,
    original.teamId,
    {
      ...original.data,
      escalates: original.id,
      escalated_type: original.type,
      escalated_title: notificationTitle(original),
      escalated_created_at: new Date(original.createdAtMs).toISOString(),
      unacknowledged_for: formatDuration(waitedMs),
    },
    nowMs,
  )
}
