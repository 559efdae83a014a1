/**
 * `admin_tokens` row → AdminTokenRecord, shared by the PostgreSQL and SQLite AuthStores. Both
 * schemas declare the same snake_case columns (src/store/postgres/schema.ts, src/store/sqlite/auth-store.ts);
 * `created_at_ms` is BIGINT in PostgreSQL, read as a JS number by the pool's type parser
 * (src/store/postgres/db.ts), and INTEGER in SQLite, so one mapper reads both.
 */
import type { AdminTokenRecord, Role } from '../../auth/types.js'

export interface TokenRow {
  id: string
  token_hash: string
  prefix: string
  org_id: string
  role: Role
  team_id: string | null
  name: string
  created_at_ms: number
}

export function tokenOf(row: TokenRow): AdminTokenRecord & { tokenHash: string } {
  return {
    tokenId: row.id,
    tokenHash: row.token_hash,
    prefix: row.prefix,
    orgId: row.org_id,
    role: row.role,
    teamId: row.team_id ?? undefined,
    name: row.name,
    createdAtMs: row.created_at_ms,
  }
}
