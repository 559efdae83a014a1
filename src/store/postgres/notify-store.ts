/**
 * PostgreSQL adapter for notify's ports: notifications (the in-app inbox), the delivery outbox and
 * preferences. Claims take due rows with `FOR UPDATE SKIP LOCKED`, so dispatchers in any number
 * of processes never lease the same item twice and never wait on each other; outcomes are
 * written only by the holder of the current lease token. Same semantics as the SQLite adapter.
 */
import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import { newId } from '../../lib/ids.js'
import type { Notification } from '../../notify/notification.js'
import type { ClaimedDelivery, EscalationStore, FiringMark, InboxEntry, InboxQuery, InboxStore, OutboxItem, OutboxStore } from '../../notify/outbox.js'
import type { NotificationPreference, PreferenceStore, PreferenceSubjectType } from '../../notify/preferences.js'
import {
  claimedNotificationOf,
  inboxEntryOf,
  notificationOf,
  outboxItemOf,
  preferenceOf,
  type ClaimedRow,
  type NotificationRow,
  type OutboxRow,
  type PreferenceRow,
} from '../rows/notify.js'

/** Largest page the inbox serves, whatever the caller asks. */
const INBOX_PAGE_MAX = 200

export class PostgresNotifyStore implements OutboxStore, InboxStore, PreferenceStore, EscalationStore {
  constructor(private readonly pool: pg.Pool) {}

  async enqueue(notification: Notification, channelIds: readonly string[], nowMs: number, mark?: FiringMark): Promise<boolean> {
    const ids = [...new Set(channelIds)]
    // One statement: the mark (budgets' `fired_thresholds`), the notification and its outbox items
    // are written together or not at all. With a mark that is taken (or being taken by a
    // transaction that then commits), \`m\` inserts nothing and neither does anything after it.
    const { rows } = await this.pool.query<{ written: boolean }>(
      `WITH m AS (
         INSERT INTO fired_thresholds (dedupe_key, subject_id, fired_at_ms)
         SELECT $12::text, $13::text, $6::bigint WHERE $12::text IS NOT NULL
         ON CONFLICT DO NOTHING RETURNING 1
       ), n AS (
         INSERT INTO notifications (id, org_id, team_id, type, created_at_ms, data_json, escalate_at_ms, escalation_channels_json)
         SELECT $1, $9, $2, $3, $4, $5, $10, $11 WHERE $12::text IS NULL OR EXISTS (SELECT 1 FROM m) RETURNING id
       ), o AS (
         INSERT INTO notify_outbox (id, notification_id, channel_id, status, attempts, next_attempt_at_ms, created_at_ms)
         SELECT item.id, n.id, item.channel_id, 'pending', 0, $6, $6
         FROM n, unnest($7::text[], $8::text[]) AS item (id, channel_id)
       )
       SELECT EXISTS (SELECT 1 FROM n) AS written`,
      [
        notification.id,
        notification.teamId ?? null,
        notification.type,
        notification.createdAtMs,
        JSON.stringify(notification.data),
        nowMs,
        ids.map(() => newId('obx', nowMs)),
        ids,
        notification.orgId,
        notification.escalation?.atMs ?? null,
        notification.escalation ? JSON.stringify(notification.escalation.channelIds) : null,
        mark?.dedupeKey ?? null,
        mark?.subjectId ?? null,
      ],
    )
    return rows[0]?.written === true
  }

  async claimDue(nowMs: number, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    const leaseToken = randomBytes(12).toString('hex')
    const { rows } = await this.pool.query<ClaimedRow>(
      `WITH due AS (
         SELECT id FROM notify_outbox
         WHERE status = 'pending' AND next_attempt_at_ms <= $1 AND (lease_until_ms IS NULL OR lease_until_ms <= $1)
         ORDER BY next_attempt_at_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED
       ), leased AS (
         UPDATE notify_outbox o SET lease_until_ms = $3, lease_token = $4, attempts = o.attempts + 1
         FROM due WHERE o.id = due.id RETURNING o.*
       )
       SELECT l.*, n.id AS n_id, n.org_id AS n_org_id, n.team_id AS n_team_id, n.type AS n_type, n.created_at_ms AS n_created_at_ms,
              n.data_json AS n_data_json
       FROM leased l JOIN notifications n ON n.id = l.notification_id
       ORDER BY l.next_attempt_at_ms, l.id`,
      [nowMs, limit, nowMs + leaseMs, leaseToken],
    )
    return rows.map((row) => ({
      item: outboxItemOf(row),
      leaseToken,
      notification: claimedNotificationOf(row),
    }))
  }

  async markDelivered(itemId: string, leaseToken: string, nowMs: number): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE notify_outbox SET status = 'delivered', delivered_at_ms = $1, lease_until_ms = NULL, lease_token = NULL, last_error = NULL
       WHERE id = $2 AND lease_token = $3 AND status = 'pending'`,
      [nowMs, itemId, leaseToken],
    )
    return result.rowCount === 1
  }

  async markFailed(itemId: string, leaseToken: string, error: string, retryAtMs: number | undefined): Promise<boolean> {
    const result =
      retryAtMs === undefined
        ? await this.pool.query(
            `UPDATE notify_outbox SET status = 'dead', last_error = $1, lease_until_ms = NULL, lease_token = NULL
             WHERE id = $2 AND lease_token = $3 AND status = 'pending'`,
            [error, itemId, leaseToken],
          )
        : await this.pool.query(
            `UPDATE notify_outbox SET next_attempt_at_ms = $1, last_error = $2, lease_until_ms = NULL, lease_token = NULL
             WHERE id = $3 AND lease_token = $4 AND status = 'pending'`,
            [retryAtMs, error, itemId, leaseToken],
          )
    return result.rowCount === 1
  }

  async itemsOf(notificationId: string): Promise<OutboxItem[]> {
    const { rows } = await this.pool.query<OutboxRow>('SELECT * FROM notify_outbox WHERE notification_id = $1 ORDER BY channel_id', [notificationId])
    return rows.map(outboxItemOf)
  }

  async listInbox(orgId: string, query: InboxQuery): Promise<InboxEntry[]> {
    const limit = Math.max(1, Math.min(query.limit, INBOX_PAGE_MAX))
    const { rows } = await this.pool.query<NotificationRow>(
      `SELECT * FROM notifications
       WHERE org_id = $1 AND ($2::text IS NULL OR id < $2) AND (NOT $3::boolean OR read_at_ms IS NULL)
         AND ($5::text IS NULL OR team_id = $5)
       ORDER BY id DESC LIMIT $4`,
      [orgId, query.beforeId ?? null, query.unreadOnly, limit, query.teamId ?? null],
    )
    return rows.map(inboxEntryOf)
  }

  async acknowledge(orgId: string, notificationId: string, nowMs: number, teamId: string | undefined): Promise<InboxEntry | undefined> {
    const { rows } = await this.pool.query<NotificationRow>(
      `UPDATE notifications SET acked_at_ms = COALESCE(acked_at_ms, $1), read_at_ms = COALESCE(read_at_ms, $1)
       WHERE id = $2 AND org_id = $3 AND ($4::text IS NULL OR team_id = $4) RETURNING *`,
      [nowMs, notificationId, orgId, teamId ?? null],
    )
    return rows[0] ? inboxEntryOf(rows[0]) : undefined
  }

  async claimDueEscalations(nowMs: number, limit: number): Promise<Notification[]> {
    // SKIP LOCKED lets several gateways claim side by side; the re-check of escalated_at_ms and
    // acked_at_ms in the outer UPDATE makes a claim racing an acknowledgement lose cleanly.
    const { rows } = await this.pool.query<NotificationRow>(
      `UPDATE notifications SET escalated_at_ms = $1
       WHERE id IN (
         SELECT id FROM notifications
         WHERE escalate_at_ms IS NOT NULL AND escalate_at_ms <= $1 AND escalated_at_ms IS NULL AND acked_at_ms IS NULL
         ORDER BY escalate_at_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED
       ) AND escalated_at_ms IS NULL AND acked_at_ms IS NULL
       RETURNING *`,
      [nowMs, limit],
    )
    return rows.map(notificationOf)
  }

  async releaseEscalation(notificationId: string): Promise<void> {
    await this.pool.query('UPDATE notifications SET escalated_at_ms = NULL WHERE id = $1', [notificationId])
  }

  async markRead(orgId: string, notificationId: string, nowMs: number, teamId: string | undefined): Promise<boolean> {
    const result = await this.pool.query(
      'UPDATE notifications SET read_at_ms = COALESCE(read_at_ms, $1) WHERE id = $2 AND org_id = $3 AND ($4::text IS NULL OR team_id = $4)',
      [nowMs, notificationId, orgId, teamId ?? null],
    )
    return result.rowCount === 1
  }

  async listPreferences(orgId: string): Promise<NotificationPreference[]> {
    const { rows } = await this.pool.query<PreferenceRow>('SELECT * FROM notification_preferences WHERE org_id = $1 ORDER BY subject_type, subject_id', [orgId])
    return rows.map(preferenceOf)
  }

  async getPreference(orgId: string, subjectType: PreferenceSubjectType, subjectId: string): Promise<NotificationPreference | undefined> {
    const row = (
      await this.pool.query<PreferenceRow>('SELECT * FROM notification_preferences WHERE org_id = $1 AND subject_type = $2 AND subject_id = $3', [
        orgId,
        subjectType,
        subjectId,
      ])
    ).rows[0]
    return row ? preferenceOf(row) : undefined
  }

  async putPreference(preference: NotificationPreference): Promise<void> {
    await this.pool.query(
      `INSERT INTO notification_preferences (org_id, subject_type, subject_id, channels_json, updated_at_ms)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (org_id, subject_type, subject_id)
       DO UPDATE SET channels_json = EXCLUDED.channels_json, updated_at_ms = EXCLUDED.updated_at_ms`,
      [preference.orgId, preference.subjectType, preference.subjectId, JSON.stringify(preference.channelsByType), preference.updatedAtMs],
    )
  }
}
