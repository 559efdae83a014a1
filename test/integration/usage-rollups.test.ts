/**
 * Usage reports served from rollups equal reports computed from the raw events, on SQLite and on
 * PostgreSQL: for random events (absent attribution, repeated external ids, demo and real, errors)
 * and random queries (any instants, aligned or not; hour, day and minute buckets; team,
 * environment and data-mode filters; up to two dimensions). Also: a store upgraded from before
 * rollups builds them from its events, and many concurrent batch writers keep them exact.
 *
 * Each property run writes its events under its own org, so runs share one store without mixing.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite/db.js'
import { SqliteUsageStore, USAGE_COLUMNS, usageMigrations, usageRow } from '../../src/store/sqlite/usage-store.js'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { postgresMigrations } from '../../src/store/postgres/schema.js'
import { PostgresUsageStore } from '../../src/store/postgres/usage-store.js'
import type { UsageEvent } from '../../src/usage/types.js'
import type { UsageQuery, UsageReport } from '../../src/usage/usage-store.js'
import { describeWithPostgres } from '../support/services.js'
import { rollupDriftSqlite } from './usage-rollups-support.js'
import { WINDOW_MS, WINDOW_START_MS, eventsArbitrary, expectedReport, queryArbitrary, storedEvents, usageEvent } from '../support/usage-events.js'

interface ReportStore {
  insertBatch(events: readonly UsageEvent[]): Promise<void>
  insertIngested(event: UsageEvent): Promise<boolean>
  query(q: UsageQuery): Promise<UsageReport>
  queryEvents(q: UsageQuery): Promise<UsageReport>
  spendSeries(q: Omit<UsageQuery, 'groupBy'>): Promise<Map<number, number>>
}

/** Spend per bucket start as the report's series has it (summed over its groups): what `spendSeries` must answer. */
function spendOf(report: UsageReport): Map<number, number> {
  const spend = new Map<number, number>()
  for (const p of report.series) spend.set(p.bucketStartMs, (spend.get(p.bucketStartMs) ?? 0) + p.costMicros)
  return spend
}

/** Writes `events` the ways the gateway does: batches, and single ingested events. */
async function write(store: ReportStore, events: readonly UsageEvent[]): Promise<void> {
  for (let i = 0; i < events.length; ) {
    const size = 1 + (i % 37)
    const chunk = events.slice(i, i + size)
    if (size % 3 === 0) for (const e of chunk) await store.insertIngested(e)
    else await store.insertBatch(chunk)
    i += size
  }
}

let run = 0
/**
 * The property both stores must hold: rollup report = JS report over the stored events = event-scan
 * report. Every execution (shrinking included) writes under a fresh org, so none sees another's events.
 */
async function checkReports(store: ReportStore, numRuns: number, fold?: (chunks: number) => void): Promise<void> {
  await fc.assert(
    fc.asyncProperty(eventsArbitrary('ev'), fc.array(queryArbitrary('org'), { minLength: 1, maxLength: 4 }), fc.nat(4), async (events, queries, folds) => {
      const org = `org_p${run++}_${process.pid}`
      const ours = events.map((e) => ({ ...e, id: `${org}_${e.id}`, attribution: { ...e.attribution, orgId: org } }))
      await write(store, ours)
      // SQLite: none, part or all of the events folded into the rollups (4: all) — reports are the same.
      fold?.(folds === 4 ? Number.POSITIVE_INFINITY : folds)
      const stored = storedEvents(ours)
      for (const query of queries) {
        const q = { ...query, orgId: org }
        const expected = expectedReport(stored, q)
        expect(await store.query(q)).toEqual(expected)
        expect(await store.queryEvents(q)).toEqual(expected)
        expect(await store.spendSeries(q)).toEqual(spendOf(expected))
      }
    }),
    { numRuns },
  )
}

const HOUR_MS = 3_600_000
const wholeWindow = (orgId: string, groupBy: UsageQuery['groupBy'], bucketMs: number): UsageQuery => ({
  orgId,
  fromMs: WINDOW_START_MS - 1234,
  toMs: WINDOW_START_MS + WINDOW_MS + 4321,
  groupBy,
  bucketMs,
  teamId: undefined,
  environment: undefined,
  dataMode: undefined,
})

/** Many events over the window, for the upgrade and concurrency checks. */
function manyEvents(prefix: string, orgId: string, count: number): UsageEvent[] {
  return Array.from({ length: count }, (_, i) =>
    usageEvent({
      id: `${prefix}_${i}`,
      orgId,
      atMs: WINDOW_START_MS + ((i * 7_919_993) % WINDOW_MS),
      teamId: ['growth', 'search', undefined][i % 3],
      userId: `user_${i % 11}`,
      endpointTag: `/e${i % 5}`,
      model: i % 2 ? 'claude-haiku' : 'gpt-4o-mini',
      costMicros: 1 + ((i * 7919) % 90_000),
      status: i % 13 === 0 ? 'upstream_error' : 'ok',
    }),
  )
}

async function expectRollupsServeEvents(store: ReportStore, orgId: string): Promise<void> {
  for (const groupBy of [[], ['user'], ['team'], ['model', 'environment']] as UsageQuery['groupBy'][]) {
    for (const bucketMs of [HOUR_MS, 24 * HOUR_MS]) {
      const q = wholeWindow(orgId, groupBy, bucketMs)
      const fromEvents = await store.queryEvents(q)
      expect(fromEvents.totals.requests).toBeGreaterThan(0)
      expect(await store.query(q)).toEqual(fromEvents)
      expect(await store.spendSeries(q)).toEqual(spendOf(fromEvents))
    }
  }
}

describe('usage rollups on SQLite', () => {
  let dir: string
  let db: SqliteDatabase
  let store: SqliteUsageStore

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-rollups-'))
    db = openSqlite(join(dir, 'usage.sqlite'), usageMigrations)
    // Small fold chunks: a report must be exact with any part of its events folded.
    store = new SqliteUsageStore(db, { foldChunkEvents: 7 })
  })
  afterAll(() => {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a report from rollups equals the report computed from the raw events (random events, filters, ranges)', async () => {
    await checkReports(store, 150, (chunks) => store.foldRollups(chunks))
  })

  it('upgrading a store written before rollups builds them from its events', async () => {
    const path = join(dir, 'upgrade.sqlite')
    const before = openSqlite(
      path,
      usageMigrations.filter((m) => m.id < 'usage-0004'),
    )
    // The rows alone, as a store from before rollups wrote them (today's store adds rollups in the
    // same transaction), in the columns it had (later migrations add theirs at the row's end).
    const had = new Set(before.prepare<[], string>("SELECT name FROM pragma_table_info('usage_events')").pluck().all())
    const columns = USAGE_COLUMNS.filter((c) => had.has(c))
    const insert = before.prepare(`INSERT INTO usage_events (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`)
    before.transaction(() => {
      for (const e of manyEvents('up', 'org_upgrade', 3000)) insert.run(usageRow(e).slice(0, columns.length))
    })()
    before.close()
    const after = openSqlite(path, usageMigrations)
    try {
      await expectRollupsServeEvents(new SqliteUsageStore(after), 'org_upgrade')
    } finally {
      after.close()
    }
  })

  it('a store opened over events a killed writer left unfolded folds them, with no insert after', async () => {
    const path = join(dir, 'killed.sqlite')
    const writer = openSqlite(path, usageMigrations)
    // The writer commits its events and "dies" (its connection closes) before its fold runs.
    await new SqliteUsageStore(writer, { foldDelayMs: 60_000 }).insertBatch(manyEvents('kill', 'org_killed', 500))
    writer.close()
    const next = openSqlite(path, usageMigrations)
    try {
      const foldedThrough = () => next.prepare<[], number>('SELECT through_rowid FROM usage_rollups_folded').pluck().get()
      expect(foldedThrough()).toBe(0)
      const store = new SqliteUsageStore(next, { foldDelayMs: 10 })
      await vi.waitFor(() => expect(foldedThrough()).toBe(500))
      expect(rollupDriftSqlite(next)).toBe(0)
      await expectRollupsServeEvents(store, 'org_killed')
    } finally {
      next.close()
    }
  })

  it('concurrent writers on one file keep the rollups exact', async () => {
    const path = join(dir, 'concurrent.sqlite')
    const handles = Array.from({ length: 4 }, () => openSqlite(path, usageMigrations))
    try {
      const events = manyEvents('cc', 'org_concurrent', 4000)
      // Four connections, interleaved batches of overlapping hours and groups.
      await Promise.all(
        handles.map(async (h, w) => {
          const mine = events.filter((_, i) => i % 4 === w)
          const s = new SqliteUsageStore(h, { foldChunkEvents: 120 })
          for (let i = 0; i < mine.length; i += 50) {
            await s.insertBatch(mine.slice(i, i + 50))
            // Folds from every connection, between one another's inserts.
            if (i % 150 === 0) s.foldRollups(1)
            await new Promise((resolve) => setImmediate(resolve))
          }
        }),
      )
      const reader = new SqliteUsageStore(handles[0]!)
      await expectRollupsServeEvents(reader, 'org_concurrent')
      reader.foldRollups()
      expect(rollupDriftSqlite(handles[0]!)).toBe(0)
      await expectRollupsServeEvents(reader, 'org_concurrent')
    } finally {
      for (const h of handles) h.close()
    }
  })
})

describeWithPostgres('usage rollups on PostgreSQL', (ctx) => {
  let pool: pg.Pool
  let store: PostgresUsageStore

  beforeAll(async () => {
    pool = createPool(ctx.postgres.url)
    await migrate(pool)
    store = new PostgresUsageStore(pool)
  })
  afterAll(async () => {
    await pool.end()
  })

  it('a report from rollups equals the report computed from the raw events (random events, filters, ranges)', async () => {
    await checkReports(store, 40)
  })

  it('many concurrent batch inserts sharing rollup rows keep them exact, without deadlock', async () => {
    const events = manyEvents('pgc', 'org_pg_concurrent', 6000)
    // 12 writers at once over 8 connections; batches touch the same hour/day rows in any order.
    await Promise.all(
      Array.from({ length: 12 }, async (_, w) => {
        const mine = events.filter((_, i) => i % 12 === w).reverse()
        for (let i = 0; i < mine.length; i += 40) await store.insertBatch(mine.slice(i, i + 40))
      }),
    )
    await expectRollupsServeEvents(store, 'org_pg_concurrent')
  })

  it('upgrading a store written before rollups builds them from its events', async () => {
    const schemaPool = createPool(ctx.postgres.baseUrl)
    const schema = `${ctx.postgres.schema}_up`
    await schemaPool.query(`CREATE SCHEMA ${schema}`)
    const upgraded = createPool(ctx.postgres.baseUrl, { schema })
    try {
      await migrate(
        upgraded,
        postgresMigrations.filter((m) => m.id !== 'usage-0004-rollups'),
      )
      await new PostgresUsageStore(upgraded).insertBatch(manyEvents('pgup', 'org_upgrade', 3000))
      await migrate(upgraded)
      await expectRollupsServeEvents(new PostgresUsageStore(upgraded), 'org_upgrade')
    } finally {
      await upgraded.end()
      await schemaPool.query(`DROP SCHEMA ${schema} CASCADE`)
      await schemaPool.end()
    }
  })
})
