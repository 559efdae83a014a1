/**
 * Shared by the rollup process test and its child: the events every process draws its share
 * from, and the exact check — the rollup table equals one rebuilt from the events, every column.
 */
import type pg from 'pg'
import type { SqliteDatabase } from '../../src/store/sqlite/db.js'
import { rollupUpsertFromSql } from '../../src/store/rows/usage-rollups.js'
import type { UsageEvent } from '../../src/usage/types.js'
import { WINDOW_MS, WINDOW_START_MS, usageEvent } from '../support/usage-events.js'

export const PROCESS_ORG = 'org_processes'

/** 8 000 events over three days, few enough distinct keys that every batch contends for the same rollup rows. */
export function processEvents(): UsageEvent[] {
  const events = Array.from({ length: 8000 }, (_, i) =>
    usageEvent({
      id: `proc_${i}`,
      orgId: PROCESS_ORG,
      atMs: WINDOW_START_MS + ((i * 7_919_993) % WINDOW_MS),
      teamId: ['growth', 'search', undefined][i % 3],
      userId: `user_${i % 7}`,
      endpointTag: `/e${i % 4}`,
      model: i % 2 ? 'claude-haiku' : 'gpt-4o-mini',
      costMicros: 1 + ((i * 7919) % 90_000),
      cacheReadTokens: i % 17,
      status: i % 13 === 0 ? 'upstream_error' : 'ok',
      dataMode: i % 5 === 0 ? 'demo' : 'real',
      // Every 10th event is also sent again by another process under a new id: stored once.
      externalRequestId: i % 10 === 0 ? `ext_${i}` : undefined,
    }),
  )
  const again = events.filter((e) => e.externalRequestId !== undefined).map((e) => ({ ...e, id: `${e.id}_again` }))
  return [...events, ...again]
}

/** How many of processEvents() a store keeps: the repeats are skipped. */
export const PROCESS_EVENTS_STORED = 8000

/** Rows in one table and not the other, both ways, after rebuilding the rollups from events (rolled back). */
export async function rollupDriftPostgres(pool: pg.Pool): Promise<number> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('CREATE TEMP TABLE kept ON COMMIT DROP AS SELECT * FROM usage_rollups')
    await client.query('DELETE FROM usage_rollups')
    await client.query(rollupUpsertFromSql('usage_events'))
    const { rows } = await client.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM (SELECT * FROM usage_rollups EXCEPT SELECT * FROM kept) a)
            + (SELECT count(*) FROM (SELECT * FROM kept EXCEPT SELECT * FROM usage_rollups) b) AS n`,
    )
    return Number(rows[0]!.n)
  } finally {
    await client.query('ROLLBACK')
    client.release()
  }
}

export function rollupDriftSqlite(db: SqliteDatabase): number {
  db.exec('BEGIN IMMEDIATE')
  try {
    db.exec('CREATE TEMP TABLE kept AS SELECT * FROM usage_rollups; DELETE FROM usage_rollups;')
    db.exec(rollupUpsertFromSql('usage_events'))
    const row = db
      .prepare<[], { n: number }>(
        `SELECT (SELECT count(*) FROM (SELECT * FROM usage_rollups EXCEPT SELECT * FROM kept))
              + (SELECT count(*) FROM (SELECT * FROM kept EXCEPT SELECT * FROM usage_rollups)) AS n`,
      )
      .get()!
    return row.n
  } finally {
    db.exec('ROLLBACK')
    db.exec('DROP TABLE IF EXISTS temp.kept')
  }
}
