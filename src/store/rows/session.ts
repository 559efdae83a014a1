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
