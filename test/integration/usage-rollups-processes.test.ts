/**
 * Rollups stay exact when several processes write events at once (the claim is cross-process, so
 * it is tested with processes): 4 processes on one PostgreSQL schema, 3 on one SQLite file, each
 * writing its share of 8 000 events (plus 800 repeats of an external id, which must be stored and
 * counted once) in batches of 25 after a common "go" (on SQLite each also folds events into the
 * rollups between its batches). Afterwards the rollup table equals one
 * rebuilt from the stored events, every key and every sum, and reports from rollups equal
 * reports from events.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { PostgresUsageStore } from '../../src/store/postgres/usage-store.js'
import { openSqlite } from '../../src/store/sqlite/db.js'
import { SqliteUsageStore, usageMigrations } from '../../src/store/sqlite/usage-store.js'
import type { UsageQuery, UsageReport } from '../../src/usage/usage-store.js'
import { describeWithPostgres } from '../support/services.js'
import { WINDOW_MS, WINDOW_START_MS } from '../support/usage-events.js'
import { PROCESS_EVENTS_STORED, PROCESS_ORG, rollupDriftPostgres, rollupDriftSqlite } from './usage-rollups-support.js'

const CHILD = fileURLToPath(new URL('./usage-rollups-child.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Starts `workers` children, waits until all are ready, says "go", and waits until all are done. */
async function runWriters(backend: 'sqlite' | 'postgres', where: string, workers: number): Promise<void> {
  const children = Array.from({ length: workers }, (_, w) =>
    spawn(process.execPath, ['--import', 'tsx', CHILD, backend, where, String(w), String(workers)], { cwd: ROOT, stdio: 'pipe' }),
  )
  const output = children.map(() => '')
  const reached = (word: string) =>
    Promise.all(
      children.map(
        (child, w) =>
          new Promise<void>((resolve, reject) => {
            const onData = (chunk: Buffer) => {
              output[w] += chunk.toString('utf8')
              if (output[w]!.includes(`${word}\n`)) {
                child.stdout.off('data', onData)
                resolve()
              }
            }
            child.stdout.on('data', onData)
            child.stderr.on('data', (chunk: Buffer) => (output[w] += chunk.toString('utf8')))
            child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`writer ${w} exited ${code}:\n${output[w]}`))))
          }),
      ),
    )
  try {
    await reached('ready')
    for (const child of children) child.stdin.write('go\n')
    await reached('done')
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  }
}

async function expectReportsFromRollups(store: { query(q: UsageQuery): Promise<UsageReport>; queryEvents(q: UsageQuery): Promise<UsageReport> }) {
  for (const groupBy of [[], ['user'], ['endpoint', 'team']] as UsageQuery['groupBy'][]) {
    const q: UsageQuery = {
      orgId: PROCESS_ORG,
      fromMs: WINDOW_START_MS - 999,
      toMs: WINDOW_START_MS + WINDOW_MS + 999,
      groupBy,
      bucketMs: 3_600_000,
      teamId: undefined,
      environment: undefined,
    }
    const fromEvents = await store.queryEvents(q)
    expect(fromEvents.totals.requests).toBe(PROCESS_EVENTS_STORED)
    expect(await store.query(q)).toEqual(fromEvents)
  }
}

describe('usage rollups with several writer processes on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-rollup-procs-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('3 processes writing one file at once leave rollups equal to a rebuild from the events', async () => {
    const path = join(dir, 'usage.sqlite')
    openSqlite(path, usageMigrations).close()
    await runWriters('sqlite', path, 3)
    const db = openSqlite(path, usageMigrations)
    try {
      // The writers folded as they went and at close; whatever a close could not fold is folded here.
      const store = new SqliteUsageStore(db)
      store.foldRollups()
      expect(rollupDriftSqlite(db)).toBe(0)
      await expectReportsFromRollups(store)
    } finally {
      db.close()
    }
  }, 120_000)
})

describeWithPostgres('usage rollups with several writer processes on PostgreSQL', (ctx) => {
  it('4 processes writing one schema at once leave rollups equal to a rebuild from the events', async () => {
    const pool = createPool(ctx.postgres.url)
    try {
      await migrate(pool)
      await runWriters('postgres', ctx.postgres.url, 4)
      expect(await rollupDriftPostgres(pool)).toBe(0)
      await expectReportsFromRollups(new PostgresUsageStore(pool))
    } finally {
      await pool.end()
    }
  }, 120_000)
})
