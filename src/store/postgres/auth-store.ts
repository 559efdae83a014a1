/** Admin tokens and API-created consumer keys on PostgreSQL. Only hashes are stored. */
import type pg from 'pg'
import { micros } from '../../money/index.js'
import type { AdminTokenRecord, AuthStore, Consumer } from '../../auth/types.js'
import { tokenOf, type TokenRow } from '../rows/auth.js'

export class PostgresAuthStore implements AuthStore {
  constructor(private readonly pool: pg.Pool) {}

  async findAdminToken(tokenHash: string): Promise<(AdminTokenRecord & { tokenHash: string }) | undefined> {
    const row = (await this.pool.query<TokenRow>('SELECT * FROM admin_tokens WHERE token_hash = $1', [tokenHash])).rows[0]
    return row && tokenOf(row)
  }

  async createAdminToken(record: AdminTokenRecord & { tokenHash: string }): Promise<void> {
    await this.pool.query(
      `INSERT INTO admin_tokens (id, token_hash, prefix, org_id, role, team_id, name, created_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [record.tokenId, record.tokenHash, record.prefix, record.orgId, record.role, record.teamId ?? null, record.name, record.createdAtMs],
    )
  }

  async countAdminTokens(): Promise<number> {
    return (await this.pool.query<{ n: number }>('SELECT count(*) AS n FROM admin_tokens')).rows[0]!.n
  }

  async listAdminTokens(orgId: string): Promise<AdminTokenRecord[]> {
    const { rows } = await this.pool.query<TokenRow>('SELECT * FROM admin_tokens WHERE org_id = $1 ORDER BY created_at_ms', [orgId])
    return rows.map((row) => {
      const { tokenHash: _hash, ...token } = tokenOf(row)
      return token
    })
  }

  async listConsumerKeys(): Promise<Consumer[]> {
    const { rows } = await this.pool.query<{ consumer_json: string }>('SELECT consumer_json FROM consumer_keys ORDER BY created_at_ms')
    return rows.map((row) => {
      const parsed = JSON.parse(row.consumer_json) as Consumer & { emergencyAllowanceMicros: number }
      return { ...parsed, emergencyAllowanceMicros: micros(parsed.emergencyAllowanceMicros) }
    })
  }

  async createConsumerKey(consumer: Consumer, prefix: string, atMs: number): Promise<void> {
    await this.pool.query(
      'INSERT INTO consumer_keys (key_hash, prefix, name, consumer_json, created_at_ms) VALUES ($1, $2, $3, $4, $5)',
      [consumer.apiKeyHash, prefix, consumer.name, JSON.stringify(consumer), atMs],
    )
  }
}
