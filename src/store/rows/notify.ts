/**
 * Notify rows → domain (notifications, outbox items, preferences), shared by the PostgreSQL and
 * SQLite notify stores. Both schemas declare the same snake_case columns (src/store/postgres/schema.ts,
 * src/store/sqlite/notify-store.ts). PostgreSQL's BIGINT columns arrive as JS numbers (the pool's
 * type parser, src/store/postgres/db.ts) and SQLite's INTEGER columns are numbers already.
 */
import type { Notification, NotificationType } from '../../notify/notification.js'
import type { InboxEntry, OutboxItem, OutboxStatus } from '../../notify/outbox.js'
import { channelsByTypeOf, type NotificationPreference, type PreferenceSubjectType } from '../../notify/preferences.js'

export interface NotificationRow {
  id: string
  org_id: string
  team_id: string | null
  type: string
  created_at_ms: number
  data_json: string
  read_at_ms: number | null
  acked_at_ms?: number | null
  escalate_at_ms?: number | null
  escalated_at_ms?: number | null
  escalation_channels_json?: string | null
}

export interface OutboxRow {
  id: string
  notification_id: string
  channel_id: string
  status: string
  attempts: number
  next_attempt_at_ms: number
  lease_token: string | null
  last_error: string | null
  delivered_at_ms: number | null
}

/** An outbox row joined with its notification's columns, prefixed `n_`, as a claim reads it. */
export type ClaimedRow = OutboxRow & { n_id: string; n_org_id: string; n_team_id: string | null; n_type: string; n_created_at_ms: number; n_data_json: string }

export interface PreferenceRow {
  org_id: string
  subject_type: string
  subject_id: string
  channels_json: string
  updated_at_ms: number
}

export function notificationOf(row: NotificationRow): Notification {
  return {
    id: row.id,
    orgId: row.org_id,
    teamId: row.team_id ?? undefined,
    type: row.type as NotificationType,
    createdAtMs: row.created_at_ms,
    data: JSON.parse(row.data_json) as Record<string, unknown>,
    ...(row.escalate_at_ms != null && {
      escalation: { atMs: row.escalate_at_ms, channelIds: JSON.parse(row.escalation_channels_json ?? '[]') as string[] },
    }),
  }
}

/** An inbox row with its read, acknowledged and escalated times. */
export function inboxEntryOf(row: NotificationRow): InboxEntry {
  return {
    notification: notificationOf(row),
    readAtMs: row.read_at_ms ?? undefined,
    acknowledgedAtMs: row.acked_at_ms ?? undefined,
    escalatedAtMs: row.escalated_at_ms ?? undefined,
  }
}

/** The notification half of a claimed row. */
export function claimedNotificationOf(row: ClaimedRow): Notification {
  return notificationOf({
    id: row.n_id,
    org_id: row.n_org_id,
    team_id: row.n_team_id,
    type: row.n_type,
    created_at_ms: row.n_created_at_ms,
    data_json: row.n_data_json,
    read_at_ms: null,
  })
}

export function outboxItemOf(row: OutboxRow): OutboxItem {
  return {
    id: row.id,
    notificationId: row.notification_id,
    channelId: row.channel_id,
    status: row.status as OutboxStatus,
    attempts: row.attempts,
    nextAttemptAtMs: row.next_attempt_at_ms,
    lastError: row.last_error ?? undefined,
    deliveredAtMs: row.delivered_at_ms ?? undefined,
  }
}

export function preferenceOf(row: PreferenceRow): NotificationPreference {
  return {
    orgId: row.org_id,
    subjectType: row.subject_type as PreferenceSubjectType,
    subjectId: row.subject_id,
    channelsByType: channelsByTypeOf(JSON.parse(row.channels_json) as Record<string, string[]>),
    updatedAtMs: row.updated_at_ms,
  }
}
