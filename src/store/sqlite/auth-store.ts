/** Admin tokens and API-created consumer keys on SQLite. Only hashes are stored. */
import type { AdminTokenRecord, AuthStore, Consumer, ConsumerKeyRecord } from '../../auth/types.js'
import type { SqliteDatabase, SqliteMigration } from './db.js'
import { consumerKeyOf, consumerOfJson, listedTokenOf, tokenOf, type ConsumerKeyRow, type TokenRow } from '../rows/auth.js'

export const authMigrations: readonly SqliteMigration[] = [
  {
    id: 'auth-0001',
    sql: `
      CREATE TABLE admin_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        org_id TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'team_admin', 'viewer')),
        team_id TEXT,
        name TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
      );
      CREATE TABLE consumer_keys (
        key_hash TEXT PRIMARY KEY,
        prefix TEXT NOT NULL,
        name TEXT NOT NULL,
        consumer_json TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
      );
    `,
  },
  {
    // Keys and tokens get an id to list and revoke them by; keys carry their org as a column.
    id: 'auth-0002-revocation',
    sql: `
      ALTER TABLE admin_tokens ADD COLUMN revoked_at_ms INTEGER;
      ALTER TABLE consumer_keys ADD COLUMN id TEXT;
      ALTER TABLE consumer_keys ADD COLUMN org_id TEXT;
      ALTER TABLE consumer_keys ADD COLUMN revoked_at_ms INTEGER;
      UPDATE consumer_keys SET id = 'ck_' || substr(key_hash, 1, 26), org_id = json_extract(consumer_json, '$.orgId');
      CREATE UNIQUE INDEX consumer_keys_id ON consumer_keys (id);
      CREATE INDEX consumer_keys_org ON consumer_keys (org_id, created_at_ms);
    `,
  },
]

export class SqliteAuthStore implements AuthStore {
  constructor(private readonly db: SqliteDatabase) {}

  async findAdminToken(tokenHash: string) {
    const row = this.db.prepare<[string], TokenRow>('SELECT * FROM admin_tokens WHERE token_hash = ? AND revoked_at_ms IS NULL').get(tokenHash)
    return row && tokenOf(row)
  }

  async createAdminToken(record: AdminTokenRecord & { tokenHash: string }): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO admin_tokens (id, token_hash, prefix, org_id, role, team_id, name, created_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(record.tokenId, record.tokenHash, record.prefix, record.orgId, record.role, record.teamId ?? null, record.name, record.createdAtMs)
  }

  async countAdminTokens(): Promise<number> {
    return this.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM admin_tokens').get()!.n
  }

  async listAdminTokens(orgId: string): Promise<AdminTokenRecord[]> {
    return this.db.prepare<[string], TokenRow>('SELECT * FROM admin_tokens WHERE org_id = ? ORDER BY created_at_ms, id').all(orgId).map(listedTokenOf)
  }

  async revokeAdminToken(orgId: string, tokenId: string, atMs: number): Promise<AdminTokenRecord | undefined> {
    this.db.prepare('UPDATE admin_tokens SET revoked_at_ms = ? WHERE org_id = ? AND id = ? AND revoked_at_ms IS NULL').run(atMs, orgId, tokenId)
    const row = this.db.prepare<[string, string], TokenRow>('SELECT * FROM admin_tokens WHERE org_id = ? AND id = ?').get(orgId, tokenId)
    return row && listedTokenOf(row)
  }

  async listConsumerKeys(): Promise<Consumer[]> {
    return this.db
      .prepare<[], { consumer_json: string }>('SELECT consumer_json FROM consumer_keys WHERE revoked_at_ms IS NULL ORDER BY created_at_ms')
      .all()
      .map((row) => consumerOfJson(row.consumer_json))
  }

  async listConsumerKeyRecords(orgId: string): Promise<ConsumerKeyRecord[]> {
    return this.db.prepare<[string], ConsumerKeyRow>('SELECT * FROM consumer_keys WHERE org_id = ? ORDER BY created_at_ms, id').all(orgId).map(consumerKeyOf)
  }

  async createConsumerKey(id: string, consumer: Consumer, prefix: string, atMs: number): Promise<void> {
    this.db
      .prepare('INSERT INTO consumer_keys (id, key_hash, prefix, name, org_id, consumer_json, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, consumer.apiKeyHash, prefix, consumer.name, consumer.orgId, JSON.stringify(consumer), atMs)
  }

  async revokeConsumerKey(orgId: string, keyId: string, atMs: number): Promise<ConsumerKeyRecord | undefined> {
    this.db.prepare('UPDATE consumer_keys SET revoked_at_ms = ? WHERE org_id = ? AND id = ? AND revoked_at_ms IS NULL').run(atMs, orgId, keyId)
    const row = this.db.prepare<[string, string], ConsumerKeyRow>('SELECT * FROM consumer_keys WHERE org_id = ? AND id = ?').get(orgId, keyId)
    return row && consumerKeyOf(row)
  }
}
