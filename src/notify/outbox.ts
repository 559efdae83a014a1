/**
 * The durable outbox (port) and its retry policy. A notification is written once (that row is the
 * in-app inbox entry, always on) together with one outbox item per external channel, in one
 * transaction. Items are claimed with a lease, so two dispatchers — in one process or many —
 * never deliver the same item at the same time; a dispatcher that dies mid-delivery loses its
 * lease and the item is delivered again later (at-least-once; receivers drop duplicates by id).
 */
import { assert } from '../lib/assert.js'
import { notificationPayload, type Notification, type NotificationPayload } from './notification.js'

export type OutboxStatus = 'pending' | 'delivered' | 'dead'

export interface OutboxItem {
  readonly id: string
  readonly notificationId: string
  readonly channelId: string
  readonly status: OutboxStatus
  /** Delivery attempts started so far (a claim counts as an attempt). */
  readonly attempts: number
  readonly nextAttemptAtMs: number
  readonly lastError: string | undefined
  readonly deliveredAtMs: number | undefined
}

export interface ClaimedDelivery {
  readonly item: OutboxItem
  /** Proves the claim: outcomes are recorded only by the holder of the current lease. */
  readonly leaseToken: string
  readonly notification: Notification
}

export interface InboxQuery {
  readonly unreadOnly: boolean
  /** Newest first; at most this many. */
  readonly limit: number
  /** Page: only notifications with an id before this one. */
  readonly beforeId: string | undefined
  /** Only this team's notifications (a team_admin's inbox); undefined for the whole org. */
  readonly teamId: string | undefined
}

export interface InboxEntry {
  readonly notification: Notification
  readonly readAtMs: number | undefined
  readonly acknowledgedAtMs?: number | undefined
  readonly escalatedAtMs?: number | undefined
}

/**
 * Makes a notice once-only (a budget threshold, a wallet alert: `v1:{subject}:{period}:{what}`).
 * The mark is stored in `fired_thresholds` in the same transaction as the notice and its outbox
 * items, and the notice is written only when the mark is new. So a mark never exists without its
 * notice (a crash or an error before COMMIT leaves neither), and two writers with the same mark,
 * in one process or many, write one notice.
 */
export interface FiringMark {
  readonly dedupeKey: string
  /** The budget or wallet the firing is about. */
  readonly subjectId: string
}

export interface OutboxStore {
  /**
   * Writes the notification (inbox row) and one pending item per channel, due now, atomically.
   * With `mark`: writes them together with the mark only if the mark is new, and resolves to
   * false (nothing written) when it was taken before. Without: always writes, resolves to true.
   */
  enqueue(notification: Notification, channelIds: readonly string[], nowMs: number, mark?: FiringMark): Promise<boolean>
  /** Up to `limit` due items whose lease is free, each leased until `nowMs + leaseMs`. */
  claimDue(nowMs: number, limit: number, leaseMs: number): Promise<ClaimedDelivery[]>
  /** False when the lease was lost (another dispatcher took the item over). */
  markDelivered(itemId: string, leaseToken: string, nowMs: number): Promise<boolean>
  /** `retryAtMs` undefined: the item is dead (no more attempts). */
  markFailed(itemId: string, leaseToken: string, error: string, retryAtMs: number | undefined): Promise<boolean>
  itemsOf(notificationId: string): Promise<OutboxItem[]>
}

export interface InboxStore {
  listInbox(orgId: string, query: InboxQuery): Promise<InboxEntry[]>
  /** False when there is no such notification in this org (and team, when given). Marking twice keeps the first time. */
  markRead(orgId: string, notificationId: string, nowMs: number, teamId: string | undefined): Promise<boolean>
  /**
   * Acknowledges a notification (someone owns it now): its escalation will not fire. Also marks
   * it read. Undefined when there is no such notification in this org (and team); acknowledging
   * twice keeps the first time, which is returned.
   */
  acknowledge(orgId: string, notificationId: string, nowMs: number, teamId: string | undefined): Promise<InboxEntry | undefined>
}

/** Notifications whose escalation is due, taken once across every process sharing the store. */
export interface EscalationStore {
  /**
   * Claims up to `limit` notifications whose escalation time has passed and that nobody has
   * acknowledged or escalated yet, marking them escalated at `nowMs` in the same atomic step: a
   * notification is returned to exactly one caller, ever.
   */
  claimDueEscalations(nowMs: number, limit: number): Promise<Notification[]>
  /** Undoes a claim whose escalation notice could not be written, so a later tick retries it. */
  releaseEscalation(notificationId: string): Promise<void>
}

export interface RetryPolicy {
  /** Attempts in total, the first included; after the last failure the item is `dead`. */
  readonly outboxAttemptsMax: number
  readonly backoffBaseMs: number
  readonly backoffCapMs: number
}

export const RETRY_POLICY_DEFAULT: RetryPolicy = {
  outboxAttemptsMax: 8,
  backoffBaseMs: 5_000,
  backoffCapMs: 15 * 60_000,
}

/**
 * Delay before the attempt after `attemptsSoFar` failures: exponential from the base, capped,
 * with "equal jitter" (half fixed, half random) so a receiver that was down is not hit by every
 * gateway at the same instant, yet no retry comes sooner than half the back-off. Never above the cap.
 */
export function retryDelayMs(attemptsSoFar: number, policy: RetryPolicy, random: () => number = Math.random): number {
  assert(Number.isSafeInteger(attemptsSoFar) && attemptsSoFar >= 1, `attemptsSoFar: ${attemptsSoFar}`)
  const exponent = Math.min(attemptsSoFar - 1, 30)
  const backoffMs = Math.min(policy.backoffCapMs, policy.backoffBaseMs * 2 ** exponent)
  const half = Math.floor(backoffMs / 2)
  const jitter = Math.min(1, Math.max(0, random()))
  return half + Math.floor(jitter * (backoffMs - half))
}

/** `GET /v1/notifications` item: the webhook payload plus when it was read (null if unread). */
export function inboxEntryView(entry: InboxEntry): NotificationPayload & {
  read_at: string | null
  acknowledged_at: string | null
  escalate_at: string | null
  escalated_at: string | null
} {
  return {
    ...notificationPayload(entry.notification),
    read_at: isoOrNull(entry.readAtMs),
    acknowledged_at: isoOrNull(entry.acknowledgedAtMs),
    escalate_at: isoOrNull(entry.notification.escalation?.atMs),
    escalated_at: isoOrNull(entry.escalatedAtMs),
  }
}

function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString()
}
