/**
 * SQLite adapter for notify's ports: the notifications table (which is the in-app inbox), the
 * delivery outbox, and notification preferences. Claims run in `BEGIN IMMEDIATE` so that
 * dispatchers in several processes sharing the file serialise on the claim and never lease the
 * same item twice; outcomes are written only by the holder of the current lease token.
 */
import { randomBytes } from 'node:crypto'
import { newId } from '../../lib/ids.js'
import type { SqliteDatabase, SqliteMigration } from './db.js'
import type { Notification } from '../../notify/notification.js'
import type { ClaimedDelivery, InboxEntry, InboxQuery, EscalationStore, FiringMark, InboxStore, OutboxItem, OutboxStore } from '../../notify/outbox.js'
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

export const notifyMigrations: readonly SqliteMigration[] = [
  {
    id: 'notify-0001-notifications-outbox-preferences',
    sql: `
      CREATE TABLE notifications (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        data_json TEXT NOT NULL,
        read_at_ms INTEGER
      );
      CREATE INDEX notifications_org_id ON notifications (org_id, id);
      CREATE TABLE notify_outbox (
        id TEXT PRIMARY KEY,
        notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
        channel_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        next_attempt_at_ms INTEGER NOT NULL,
        lease_until_ms INTEGER,
        lease_token TEXT,
        last_error TEXT,
        created_at_ms INTEGER NOT NULL,
        delivered_at_ms INTEGER,
        UNIQUE (notification_id, channel_id)
      );
      CREATE INDEX notify_outbox_due ON notify_outbox (status, next_attempt_at_ms);
      CREATE TABLE notification_preferences (
        org_id TEXT NOT NULL,
        subject_type TEXT NOT NULL CHECK (subject_type IN ('user', 'role')),
        subject_id TEXT NOT NULL,
        channels_json TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (org_id, subject_type, subject_id)
      );
    `,
  },
  { id: 'notify-0002-team', sql: `ALTER TABLE notifications ADD COLUMN team_id TEXT` },
  {
    id: 'notify-0003-ack-escalation',
    sql: `
      ALTER TABLE notifications ADD COLUMN acked_at_ms INTEGER;
      ALTER TABLE notifications ADD COLUMN escalate_at_ms INTEGER;
      ALTER TABLE notifications ADD COLUMN escalated_at_ms INTEGER;
      ALTER TABLE notifications ADD COLUMN escalation_channels_json TEXT;
      CREATE INDEX notifications_escalation_due ON notifications (escalate_at_ms)
        WHERE escalate_at_ms IS NOT NULL AND escalated_at_ms IS NULL AND acked_at_ms IS NULL;
    `,
  },
]

/** Largest page the inbox serves, whatever the caller asks. */
const INBOX_PAGE_MAX = 200

export class SqliteNotifyStore implements OutboxStore, InboxStore, PreferenceStore, EscalationStore {
  constructor(private readonly db: SqliteDatabase) {}

  async enqueue(notification: Notification, channelIds: readonly string[], nowMs: number, mark?: FiringMark): Promise<boolean> {
    // The mark lives in budgets' `fired_thresholds` (same file): inserted first, in the same
    // transaction, so a mark taken before writes nothing and a rollback or a kill keeps neither.
    const insertMark = this.db.prepare('INSERT INTO fired_thresholds (dedupe_key, subject_id, fired_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
    const insertNotification = this.db.prepare(
      `INSERT INTO notifications (id, org_id, team_id, type, created_at_ms, data_json, escalate_at_ms, escalation_channels_json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    const insertItem = this.db.prepare(
      `INSERT INTO notify_outbox (id, notification_id, channel_id, status, attempts, next_attempt_at_ms, created_at_ms)
       VALUES (?, ?, ?, 'pending', 0, ?, ?)`,
    )
    return this.db
      .transaction(() => {
        if (mark && insertMark.run(mark.dedupeKey, mark.subjectId, nowMs).changes === 0) return false
        insertNotification.run(
          notification.id,
          notification.orgId,
          notification.teamId ?? null,
          notification.type,
          notification.createdAtMs,
          JSON.stringify(notification.data),
          notification.escalation?.atMs ?? null,
          notification.escalation ? JSON.stringify(notification.escalation.channelIds) : null,
        )
        for (const channelId of new Set(channelIds)) insertItem.run(newId('obx', nowMs), notification.id, channelId, nowMs, nowMs)
        return true
      })
      .immediate()
  }

  async claimDue(nowMs: number, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    const due = this.db.prepare<[number, number, number], { id: string }>(
      `SELECT id FROM notify_outbox
       WHERE status = 'pending' AND next_attempt_at_ms <= ? AND (lease_until_ms IS NULL OR lease_until_ms <= ?)
       ORDER BY next_attempt_at_ms, id LIMIT ?`,
    )
    const lease = this.db.prepare('UPDATE notify_outbox SET lease_until_ms = ?, lease_token = ?, attempts = attempts + 1 WHERE id = ?')
    const read = this.db.prepare<[string], ClaimedRow>(
      `SELECT o.*, n.id AS n_id, n.org_id AS n_org_id, n.team_id AS n_team_id, n.type AS n_type, n.created_at_ms AS n_created_at_ms,
              n.data_json AS n_data_json
       FROM notify_outbox o JOIN notifications n ON n.id = o.notification_id WHERE o.id = ?`,
    )
    return this.db
      .transaction(() => {
        const claimed: ClaimedDelivery[] = []
        for (const { id } of due.all(nowMs, nowMs, limit)) {
          const leaseToken = randomBytes(12).toString('hex')
          lease.run(nowMs + leaseMs, leaseToken, id)
          const row = read.get(id)
          if (!row) continue
          claimed.push({
            item: outboxItemOf(row),
            leaseToken,
            notification: claimedNotificationOf(row),
          })
        }
        return claimed
      })
      .immediate()
  }

  async markDelivered(itemId: string, leaseToken: string, nowMs: number): Promise<boolean> {
    const result = this.db
      .prepare(
        `UPDATE notify_outbox SET status = 'delivered', delivered_at_ms = ?, lease_until_ms = NULL, lease_token = NULL,
           last_error = NULL
         WHERE id = ? AND lease_token = ? AND status = 'pending'`,
      )
      .run(nowMs, itemId, leaseToken)
    return result.changes === 1
  }

  async markFailed(itemId: string, leaseToken: string, error: string, retryAtMs: number | undefined): Promise<boolean> {
    const result =
      retryAtMs === undefined
        ? this.db
            .prepare(
              `UPDATE notify_outbox SET status = 'dead', last_error = ?, lease_until_ms = NULL, lease_token = NULL
               WHERE id = ? AND lease_token = ? AND status = 'pending'`,
            )
            .run(error, itemId, leaseToken)
        : this.db
            .prepare(
              `UPDATE notify_outbox SET next_attempt_at_ms = ?, last_error = ?, lease_until_ms = NULL, lease_token = NULL
               WHERE id = ? AND lease_token = ? AND status = 'pending'`,
            )
            .run(retryAtMs, error, itemId, leaseToken)
    return result.changes === 1
  }

  async itemsOf(notificationId: string): Promise<OutboxItem[]> {
    return this.db
      .prepare<[string], OutboxRow>('SELECT * FROM notify_outbox WHERE notification_id = ? ORDER BY channel_id')
      .all(notificationId)
      .map(outboxItemOf)
  }

  async listInbox(orgId: string, query: InboxQuery): Promise<InboxEntry[]> {
    const limit = Math.max(1, Math.min(query.limit, INBOX_PAGE_MAX))
    const rows = this.db
      .prepare<[string, string | null, string | null, number, string | null, string | null, number], NotificationRow>(
        `SELECT * FROM notifications
         WHERE org_id = ? AND (? IS NULL OR id < ?) AND (? = 0 OR read_at_ms IS NULL) AND (? IS NULL OR team_id = ?)
         ORDER BY id DESC LIMIT ?`,
      )
      .all(orgId, query.beforeId ?? null, query.beforeId ?? null, query.unreadOnly ? 1 : 0, query.teamId ?? null, query.teamId ?? null, limit)
    return rows.map(inboxEntryOf)
  }

  async acknowledge(orgId: string, notificationId: string, nowMs: number, teamId: string | undefined): Promise<InboxEntry | undefined> {
    const row = this.db
      .prepare<[number, number, string, string, string | null, string | null], NotificationRow>(
        `UPDATE notifications SET acked_at_ms = COALESCE(acked_at_ms, ?), read_at_ms = COALESCE(read_at_ms, ?)
         WHERE id = ? AND org_id = ? AND (? IS NULL OR team_id = ?) RETURNING *`,
      )
      .get(nowMs, nowMs, notificationId, orgId, teamId ?? null, teamId ?? null)
    return row ? inboxEntryOf(row) : undefined
  }

  async claimDueEscalations(nowMs: number, limit: number): Promise<Notification[]> {
    // One UPDATE … RETURNING under the file's write lock: a row another process claimed first no
    // longer matches `escalated_at_ms IS NULL`, so each notification is returned once.
    const rows = this.db
      .prepare<[number, number, number], NotificationRow>(
        `UPDATE notifications SET escalated_at_ms = ?
         WHERE id IN (
           SELECT id FROM notifications
           WHERE escalate_at_ms IS NOT NULL AND escalate_at_ms <= ? AND escalated_at_ms IS NULL AND acked_at_ms IS NULL
           ORDER BY escalate_at_ms, id LIMIT ?
         )
         RETURNING *`,
      )
      .all(nowMs, nowMs, limit)
    return rows.map(notificationOf)
  }

  async releaseEscalation(notificationId: string): Promise<void> {
    this.db.prepare('UPDATE notifications SET escalated_at_ms = NULL WHERE id = ?').run(notificationId)
  }

  async markRead(orgId: string, notificationId: string, nowMs: number, teamId: string | undefined): Promise<boolean> {
    const result = this.db
      .prepare('UPDATE notifications SET read_at_ms = COALESCE(read_at_ms, ?) WHERE id = ? AND org_id = ? AND (? IS NULL OR team_id = ?)')
      .run(nowMs, notificationId, orgId, teamId ?? null, teamId ?? null)
    return result.changes === 1
  }

  async listPreferences(orgId: string): Promise<NotificationPreference[]> {
    return this.db
      .prepare<[string], PreferenceRow>('SELECT * FROM notification_preferences WHERE org_id = ? ORDER BY subject_type, subject_id')
      .all(orgId)
      .map(preferenceOf)
  }

  async getPreference(orgId: string, subjectType: PreferenceSubjectType, subjectId: string): Promise<NotificationPreference | undefined> {
    const row = this.db
      .prepare<[string, string, string], PreferenceRow>('SELECT * FROM notification_preferences WHERE org_id = ? AND subject_type = ? AND subject_id = ?')
      .get(orgId, subjectType, subjectId)
    return row ? preferenceOf(row) : undefined
  }

  async putPreference(preference: NotificationPreference): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO notification_preferences (org_id, subject_type, subject_id, channels_json, updated_at_ms)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (org_id, subject_type, subject_id)
         DO UPDATE SET channels_json = excluded.channels_json, updated_at_ms = excluded.updated_at_ms`,
      )
      .run(preference.orgId, preference.subjectType, preference.subjectId, JSON.stringify(preference.channelsByType), preference.updatedAtMs)
  }
}
