/** Console sessions on PostgreSQL: only the sha256 of each session id is stored. */
import type pg from 'pg'
import type { SessionRecord, SessionStore } from '../../auth/index.js'
import { LIVE_SESSION_SQL, sessionOf, type SessionRow } from '../rows/session.js'

export class PostgresSessionStore implements SessionStore {
  constructor(private readonly pool: pg.Pool) {}

  async createSession(record: SessionRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO console_sessions (id_hash, token_id, org_id, role, team_id, created_at_ms, expires_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [record.idHash, record.tokenId, record.orgId, record.role, record.teamId ?? null, record.createdAtMs, record.expiresAtMs],
    )
  }

  async findSession(idHash: string, nowMs: number): Promise<SessionRecord | undefined> {
    const { rows } = await this.pool.query<SessionRow>(LIVE_SESSION_SQL, [idHash, nowMs])
    return rows[0] && sessionOf(rows[0])
  }

  async revokeSession(idHash: string, atMs: number): Promise<boolean> {
    const result = await this.pool.query('UPDATE console_sessions SET revoked_at_ms = $1 WHERE id_hash = $2 AND revoked_at_ms IS NULL', [atMs, idHash])
    return (result.rowCount ?? 0) > 0
  }

  async deleteExpiredSessions(beforeMs: number): Promise<number> {
    return (await this.pool.query('DELETE FROM console_sessions WHERE expires_at_ms <= $1', [beforeMs])).rowCount ?? 0
  }
}
