/**
 * An unacknowledged notice escalates once, however many gateway processes look for due
 * escalations. Method: the parent writes 30 notices whose escalation is due (5 of them
 * acknowledged, 5 not yet due) to one store; three child processes (node --import tsx) wait for a
 * common "go", then each runs 10 escalator ticks at once. Afterwards every due, unacknowledged
 * notice was escalated by exactly one process and the store holds exactly one escalation notice
 * for each. Run against a SQLite file and against PostgreSQL.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../../src/lib/clock.js'
import { newNotification, type EscalationStore, type InboxStore, type OutboxStore } from '../../src/notify/index.js'
import { SqliteNotifyStore } from '../../src/store/sqlite/notify-store.js'
import { PostgresNotifyStore } from '../../src/store/postgres/notify-store.js'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { describeWithPostgres } from '../support/services.js'
import { lineReader, openNotifyDb, tempDbPath } from './notify-support.js'

const CHILD = fileURLToPath(new URL('./escalation-claim-child.ts', import.meta.url))
const PROCESSES = 3
const TICKS = 10
const HOUR = 3_600_000
const ORG = 'org_acme'

/** 30 threshold notices asking to escalate after 2h: 20 due and open, 5 due but acknowledged, 5 not due yet. */
async function seed(store: OutboxStore & InboxStore, clock: FakeClock): Promise<string[]> {
  const due: string[] = []
  for (let i = 0; i < 30; i++) {
    const escalateAtMs = i < 25 ? clock.nowMs() - HOUR : clock.nowMs() + HOUR
    const base = newNotification('budget.threshold', ORG, undefined, { scope: 'team:t', threshold_percent: 80, budget_name: `b${i}` }, clock.nowMs() - 3 * HOUR)
    await store.enqueue({ ...base, escalation: { atMs: escalateAtMs, channelIds: [] } }, [], clock.nowMs())
    if (i >= 20 && i < 25) await store.acknowledge(ORG, base.id, clock.nowMs(), undefined)
    else if (i < 20) due.push(base.id)
  }
  return due
}

async function race(backend: 'sqlite' | 'postgres', location: string, clock: FakeClock): Promise<string[][]> {
  const children = Array.from({ length: PROCESSES }, () =>
    spawn(process.execPath, ['--import', 'tsx', CHILD, backend, location, String(clock.nowMs()), String(TICKS)], {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      stdio: 'pipe',
    }),
  )
  const stderr: string[] = []
  for (const child of children) child.stderr.on('data', (c: Buffer) => stderr.push(c.toString()))
  const readers = children.map((child) => lineReader(child))
  for (const next of readers) expect(await next(), stderr.join('')).toBe('ready')
  for (const child of children) child.stdin.write('go\n')
  return Promise.all(readers.map(async (next) => JSON.parse(await next()) as string[]))
}

function expectOncePerNotice(results: string[][], due: string[]): void {
  const all = results.flat()
  expect(all.length).toBe(due.length)
  expect([...all].sort()).toEqual([...due].sort())
}

describe('escalation across processes (SQLite)', () => {
  it('three processes ticking at once escalate each due, unacknowledged notice exactly once', async () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
    const path = tempDbPath()
    const db = openNotifyDb(path)
    const store: OutboxStore & InboxStore & EscalationStore = new SqliteNotifyStore(db)
    const due = await seed(store, clock)
    expectOncePerNotice(await race('sqlite', path, clock), due)
    const rows = db.prepare("SELECT COUNT(*) AS n FROM notifications WHERE type = 'budget.escalated'").get() as { n: number }
    expect(rows.n).toBe(due.length)
    db.close()
  }, 60_000)
})

describeWithPostgres('escalation across processes (PostgreSQL)', (ctx) => {
  it('three processes ticking at once escalate each due, unacknowledged notice exactly once', async () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
    const pool = createPool(ctx.postgres.url)
    try {
      await migrate(pool)
      const due = await seed(new PostgresNotifyStore(pool), clock)
      expectOncePerNotice(await race('postgres', ctx.postgres.url, clock), due)
      const { rows } = await pool.query<{ n: string }>("SELECT COUNT(*) AS n FROM notifications WHERE type = 'budget.escalated'")
      expect(Number(rows[0]!.n)).toBe(due.length)
    } finally {
      await pool.end()
    }
  }, 60_000)
})
