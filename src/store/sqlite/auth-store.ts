/** Admin tokens and API-created consumer keys on SQLite. Only hashes are stored. */
import { micros } from '../../money/index.js'
import type { AdminTokenRecord, AuthStore, Consumer } from '../../auth/types.js'
import type { SqliteDatabase, SqliteMigration } from './db.js'
import { tokenOf, type TokenRow } from '../rows/auth.js'

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
]

export class SqliteAuthStore implements AuthStore {
  constructor(private readonly db: SqliteDatabase) {}

  async findAdminToken(tokenHash: string) {
    const row = this.db.prepare<[string], TokenRow>('SELECT * FROM admin_tokens WHERE token_hash = ?').get(tokenHash)
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
    return this.db
      .prepare<[string], TokenRow>('SELECT * FROM admin_tokens WHERE org_id = ? ORDER BY created_at_ms')
      .all(orgId)
      .map(({ token_hash: _omit, ...row }) => {
        const { tokenHash: _hash, ...token } = tokenOf({ ...row, token_hash: '' })
        return token
      })
  }

  async listConsumerKeys(): Promise<Consumer[]> {
    return this.db
      .prepare<[], { consumer_json: string }>('SELECT consumer_json FROM consumer_keys ORDER BY created_at_ms')
      .all()
      .map((row) => {
        const parsed = JSON.parse(row.consumer_json) as Consumer & { emergencyAllowanceMicros: number }
        return { ...parsed, emergencyAllowanceMicros: micros(parsed.emergencyAllowanceMicros) }
      })
  }

  async createConsumerKey(consumer: Consumer, prefix: string, atMs: number): Promise<void> {
    this.db
      .prepare('INSERT INTO consumer_keys (key_hash, prefix, name, consumer_json, created_at_ms) VALUES (?, ?, ?, ?, ?)')
      .run(consumer.apiKeyHash, prefix, consumer.name, JSON.stringify(consumer), atMs)
  }
}
