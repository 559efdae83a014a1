/** Admin tokens and API-created consumer keys on PostgreSQL. Only hashes are stored. */
import type pg from 'pg'
import type { AdminTokenRecord, AuthStore, Consumer, ConsumerKeyRecord } from '../../auth/types.js'
import { consumerKeyOf, consumerOfJson, listedTokenOf, tokenOf, type ConsumerKeyRow, type TokenRow } from '../rows/auth.js'

export class PostgresAuthStore implements AuthStore {
  constructor(private readonly pool: pg.Pool) {}

  async findAdminToken(tokenHash: string): Promise<(AdminTokenRecord & { tokenHash: string }) | undefined> {
    const row = (await this.pool.query<TokenRow>('SELECT * FROM admin_tokens WHERE token_hash = $1 AND revoked_at_ms IS NULL', [tokenHash])).rows[0]
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
    return (await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM admin_tokens')).rows[0]!.n
  }

  async listAdminTokens(orgId: string): Promise<AdminTokenRecord[]> {
    const { rows } = await this.pool.query<TokenRow>('SELECT * FROM admin_tokens WHERE org_id = $1 ORDER BY created_at_ms, id', [orgId])
    return rows.map(listedTokenOf)
  }

  async revokeAdminToken(orgId: string, tokenId: string, atMs: number): Promise<AdminTokenRecord | undefined> {
    await this.pool.query('UPDATE admin_tokens SET revoked_at_ms = $1 WHERE org_id = $2 AND id = $3 AND revoked_at_ms IS NULL', [atMs, orgId, tokenId])
    const row = (await this.pool.query<TokenRow>('SELECT * FROM admin_tokens WHERE org_id = $1 AND id = $2', [orgId, tokenId])).rows[0]
    return row && listedTokenOf(row)
  }

  async listConsumerKeys(): Promise<Consumer[]> {
    const { rows } = await this.pool.query<{ consumer_json: string }>(
      'SELECT consumer_json FROM consumer_keys WHERE revoked_at_ms IS NULL ORDER BY created_at_ms',
    )
    return rows.map((row) => consumerOfJson(row.consumer_json))
  }

  async listConsumerKeyRecords(orgId: string): Promise<ConsumerKeyRecord[]> {
    const { rows } = await this.pool.query<ConsumerKeyRow>('SELECT * FROM consumer_keys WHERE org_id = $1 ORDER BY created_at_ms, id', [orgId])
    return rows.map(consumerKeyOf)
  }

  async createConsumerKey(id: string, consumer: Consumer, prefix: string, atMs: number): Promise<void> {
    await this.pool.query('INSERT INTO consumer_keys (id, key_hash, prefix, name, org_id, consumer_json, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      id,
      consumer.apiKeyHash,
      prefix,
      consumer.name,
      consumer.orgId,
      JSON.stringify(consumer),
      atMs,
    ])
  }

  async revokeConsumerKey(orgId: string, keyId: string, atMs: number): Promise<ConsumerKeyRecord | undefined> {
    await this.pool.query('UPDATE consumer_keys SET revoked_at_ms = $1 WHERE org_id = $2 AND id = $3 AND revoked_at_ms IS NULL', [atMs, orgId, keyId])
    const row = (await this.pool.query<ConsumerKeyRow>('SELECT * FROM consumer_keys WHERE org_id = $1 AND id = $2', [orgId, keyId])).rows[0]
    return row && consumerKeyOf(row)
  }
}
