/** IdempotencyStore on SQLite: the key is claimed with INSERT … ON CONFLICT, atomically across processes. */
import type { IdempotencyClaim, IdempotencyStore, StoredResponse } from '../../ledger/idempotency.js'
import type { SqliteDatabase, SqliteMigration } from './db.js'

export const idempotencyMigrations: readonly SqliteMigration[] = [
  {
    id: 'idempotency-0001',
    sql: `
      CREATE TABLE idempotency_keys (
        key TEXT PRIMARY KEY,
        request_hash TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('in_progress', 'done')),
        response_json TEXT,
        expires_at_ms INTEGER NOT NULL
      );
    `,
  },
]

interface Row {
  request_hash: string
  status: 'in_progress' | 'done'
  response_json: string | null
  expires_at_ms: number
}

export class SqliteIdempotencyStore implements IdempotencyStore {
  private readonly claimTx

  constructor(private readonly db: SqliteDatabase) {
    const select = db.prepare<[string], Row>('SELECT * FROM idempotency_keys WHERE key = ?')
    const insert = db.prepare(
      `INSERT INTO idempotency_keys (key, request_hash, status, expires_at_ms) VALUES (?, ?, 'in_progress', ?)
       ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, status = 'in_progress',
         response_json = NULL, expires_at_ms = excluded.expires_at_ms
       WHERE idempotency_keys.expires_at_ms <= ?`,
    )
    this.claimTx = db.transaction((key: string, requestHash: string, nowMs: number, windowMs: number): IdempotencyClaim => {
      if (insert.run(key, requestHash, nowMs + windowMs, nowMs).changes === 1) return { kind: 'claimed' }
      const row = select.get(key)!
      if (row.request_hash !== requestHash) return { kind: 'mismatch' }
      if (row.status === 'in_progress' || row.response_json === null) return { kind: 'in_progress' }
      return { kind: 'replay', response: JSON.parse(row.response_json) as StoredResponse }
    })
  }

  async claim(key: string, requestHash: string, nowMs: number, windowMs: number): Promise<IdempotencyClaim> {
    return this.claimTx.immediate(key, requestHash, nowMs, windowMs)
  }

  async complete(key: string, response: StoredResponse): Promise<void> {
    this.db.prepare(`UPDATE idempotency_keys SET status = 'done', response_json = ? WHERE key = ?`).run(JSON.stringify(response), key)
  }

  async release(key: string): Promise<void> {
    this.db.prepare(`DELETE FROM idempotency_keys WHERE key = ? AND status = 'in_progress'`).run(key)
  }
}
