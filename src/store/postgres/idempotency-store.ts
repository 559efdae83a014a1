/**
 * IdempotencyStore on PostgreSQL: the key is claimed with INSERT … ON CONFLICT DO UPDATE … WHERE
 * expired, one atomic statement across all gateway processes.
 */
import type pg from 'pg'
import type { IdempotencyClaim, IdempotencyStore, StoredResponse } from '../../ledger/idempotency.js'

interface Row {
  request_hash: string
  status: 'in_progress' | 'done'
  response_json: string | null
}

export class PostgresIdempotencyStore implements IdempotencyStore {
  constructor(private readonly pool: pg.Pool) {}

  async claim(key: string, requestHash: string, nowMs: number, windowMs: number): Promise<IdempotencyClaim> {
    const claimed = await this.pool.query(
      `INSERT INTO idempotency_keys (key, request_hash, status, expires_at_ms) VALUES ($1, $2, 'in_progress', $3)
       ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = 'in_progress',
         response_json = NULL, expires_at_ms = EXCLUDED.expires_at_ms
       WHERE idempotency_keys.expires_at_ms <= $4`,
      [key, requestHash, nowMs + windowMs, nowMs],
    )
    if (claimed.rowCount === 1) return { kind: 'claimed' }
    const row = (await this.pool.query<Row>('SELECT request_hash, status, response_json FROM idempotency_keys WHERE key = $1', [key])).rows[0]
    // Released between our INSERT and SELECT: it is free again, but a retry decides; say in progress.
    if (!row) return { kind: 'in_progress' }
    if (row.request_hash !== requestHash) return { kind: 'mismatch' }
    if (row.status === 'in_progress' || row.response_json === null) return { kind: 'in_progress' }
    return { kind: 'replay', response: JSON.parse(row.response_json) as StoredResponse }
  }

  async complete(key: string, response: StoredResponse): Promise<void> {
    await this.pool.query(`UPDATE idempotency_keys SET status = 'done', response_json = $1 WHERE key = $2`, [JSON.stringify(response), key])
  }

  async release(key: string): Promise<void> {
    await this.pool.query(`DELETE FROM idempotency_keys WHERE key = $1 AND status = 'in_progress'`, [key])
  }
}
