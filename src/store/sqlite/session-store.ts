/** Console sessions on SQLite: only the sha256 of each session id is stored. */
import type { SessionRecord, SessionStore } from '../../auth/index.js'
import type { SqliteDatabase, SqliteMigration } from './db.js'
import { LIVE_SESSION_SQL, sessionOf, type SessionRow } from '../rows/session.js'

export const sessionMigrations: readonly SqliteMigration[] = [
  {
    id: 'sessions-0001',
    sql: `
      CREATE TABLE console_sessions (
        id_hash TEXT PRIMARY KEY,
        token_id TEXT NOT NULL,
        org_id TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'team_admin', 'viewer')),
        team_id TEXT,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
      );
      CREATE INDEX console_sessions_expiry ON console_sessions (expires_at_ms);
    `,
  },
]

export class SqliteSessionStore implements SessionStore {
  constructor(private readonly db: SqliteDatabase) {}

  async createSession(record: SessionRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO console_sessions (id_hash, token_id, org_id, role, team_id, created_at_ms, expires_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(record.idHash, record.tokenId, record.orgId, record.role, record.teamId ?? null, record.createdAtMs, record.expiresAtMs)
  }

  async findSession(idHash: string, nowMs: number): Promise<SessionRecord | undefined> {
    const row = this.db.prepare<[string, number], SessionRow>(LIVE_SESSION_SQL.replace('$1', '?').replace('$2', '?')).get(idHash, nowMs)
    return row && sessionOf(row)
  }

  async revokeSession(idHash: string, atMs: number): Promise<boolean> {
    const result = this.db.prepare('UPDATE console_sessions SET revoked_at_ms = ? WHERE id_hash = ? AND revoked_at_ms IS NULL').run(atMs, idHash)
    return result.changes > 0
  }

  async deleteExpiredSessions(beforeMs: number): Promise<number> {
    return this.db.prepare('DELETE FROM console_sessions WHERE expires_at_ms <= ?').run(beforeMs).changes
  }
}
