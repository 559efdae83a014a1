/**
 * `admin_tokens` and `consumer_keys` rows, shared by the PostgreSQL and SQLite AuthStores. Both
 * schemas declare the same snake_case columns (src/store/postgres/schema.ts,
 * src/store/sqlite/auth-store.ts); BIGINT columns are read as JS numbers by the pool's type
 * parser (src/store/postgres/db.ts) and INTEGER in SQLite, so one mapper reads both.
 */
import { micros } from '../../money/index.js'
import { DEFAULTS } from '../../config/defaults.js'
import type { AdminTokenRecord, Consumer, ConsumerKeyRecord, Role } from '../../auth/types.js'

export interface TokenRow {
  id: string
  token_hash: string
  prefix: string
  org_id: string
  role: Role
  team_id: string | null
  name: string
  created_at_ms: number
  revoked_at_ms: number | null
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
    revokedAtMs: row.revoked_at_ms ?? undefined,
  }
}

/** A listed token never carries its hash. */
export function listedTokenOf(row: TokenRow): AdminTokenRecord {
  const { tokenHash: _hash, ...token } = tokenOf(row)
  return token
}

export interface ConsumerKeyRow {
  id: string
  key_hash: string
  prefix: string
  name: string
  org_id: string
  consumer_json: string
  created_at_ms: number
  revoked_at_ms: number | null
}

/** The stored JSON of a consumer; keys stored before a field existed take its default. */
export function consumerOfJson(json: string): Consumer {
  const parsed = JSON.parse(json) as Consumer & { emergencyAllowanceMicros: number; allowNamedUsers?: boolean }
  return {
    ...parsed,
    emergencyAllowanceMicros: micros(parsed.emergencyAllowanceMicros),
    allowNamedUsers: parsed.allowNamedUsers ?? DEFAULTS.consumerGroup.allowNamedUsers,
  }
}

export function consumerKeyOf(row: ConsumerKeyRow): ConsumerKeyRecord {
  return {
    id: row.id,
    prefix: row.prefix,
    consumer: consumerOfJson(row.consumer_json),
    createdAtMs: row.created_at_ms,
    revokedAtMs: row.revoked_at_ms ?? undefined,
  }
}
