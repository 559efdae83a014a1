/**
 * `console_sessions` row → SessionRecord, shared by the SQLite and PostgreSQL session stores
 * (same snake_case columns; BIGINT is read as a JS number by the pool's type parser).
 */
import type { Role, SessionRecord } from '../../auth/index.js'

export interface SessionRow {
  id_hash: string
  token_id: string
  org_id: string
  role: Role
  team_id: string | null
  created_at_ms: number
  expires_at_ms: number
}

/**
 * A live session ($1 id hash, $2 now): not expired, not signed out, and its admin token not
 * revoked — revoking a token ends the sessions opened with it, in every process. The environment
 * token is never stored, so it has no row to check: its sessions (`env:<fingerprint>`) are checked
 * against the running gateway's token by Sessions.find.
 */
export const LIVE_SESSION_SQL = `
  SELECT s.id_hash, s.token_id, s.org_id, s.role, s.team_id, s.created_at_ms, s.expires_at_ms
  FROM console_sessions s LEFT JOIN admin_tokens t ON t.id = s.token_id
  WHERE s.id_hash = $1 AND s.expires_at_ms > $2 AND s.revoked_at_ms IS NULL
    AND (s.token_id LIKE 'env:%' OR (t.id IS NOT NULL AND t.revoked_at_ms IS NULL))`

export function sessionOf(row: SessionRow): SessionRecord {
  return {
    idHash: row.id_hash,
    tokenId: row.token_id,
    orgId: row.org_id,
    role: row.role,
    teamId: row.team_id ?? undefined,
    createdAtMs: row.created_at_ms,
    expiresAtMs: row.expires_at_ms,
  }
}
