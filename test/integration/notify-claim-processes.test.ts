/**
 * A threshold fires once per budget per period across processes. Method: three child
 * processes (node --import tsx) open one SQLite file, wait for a common "go", then each settles
 * the same crossing (10% → 100% of a budget with thresholds 50/80/95/100) 30 times at once.
 * Afterwards: each dedupe key was fired by exactly one process, and the store holds exactly one
 * notification per threshold.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../../src/lib/clock.js'
import { budgetCreateBodySchema } from '../../src/budgets/index.js'
import { lineReader, openNotifyDb, tempDbPath, wire } from './notify-support.js'

const CHILD = fileURLToPath(new URL('./notify-claim-child.ts', import.meta.url))
const PROCESSES = 3
const ROUNDS = 30

describe('exactly-once threshold firing across processes', () => {
  it('three processes settling the same crossing at once fire each threshold exactly once', async () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
    const path = tempDbPath()
    const db = openNotifyDb(path)
    const { service } = wire(db, clock, [{ id: 'ops-webhook', type: 'webhook', url: 'http://127.0.0.1:9/', secret: 's' }])
    const budget = await service.create(
      'org_acme',
      budgetCreateBodySchema.parse({
        name: 'team monthly',
        scope: { kind: 'team', id: 'team_marketing' },
        period: 'monthly',
        amount_usd: 100,
        alert_thresholds: [50, 80, 95],
        hard_limit: true,
      }),
    )

    const children = Array.from({ length: PROCESSES }, () =>
      spawn(process.execPath, ['--import', 'tsx', CHILD, path, budget.id, String(clock.nowMs()), String(ROUNDS)], {
        cwd: fileURLToPath(new URL('../../', import.meta.url)),
        stdio: 'pipe',
      }),
    )
    const stderr: string[] = []
    for (const child of children) child.stderr.on('data', (c: Buffer) => stderr.push(c.toString()))
    const readers = children.map((child) => lineReader(child))
    for (const next of readers) expect(await next(), stderr.join('')).toBe('ready')
    for (const child of children) child.stdin.write('go\n')
    const results = await Promise.all(readers.map(async (next) => JSON.parse(await next()) as string[]))

    const thresholdKeys = results
      .flat()
      .filter((key) => /:(\d+|blocked)$/.test(key))
      .sort()
    // The 100% mark of a hard limit is where blocking starts: one `blocked` firing, shared with a refusal's.
    expect(thresholdKeys).toEqual([...[50, 80, 95].map((p) => `v1:${budget.id}:2026-11:${p}`), `v1:${budget.id}:2026-11:blocked`].sort())
    const rows = db
      .prepare("SELECT type, COUNT(*) AS n FROM notifications WHERE type IN ('budget.threshold', 'budget.blocked') GROUP BY type ORDER BY type")
      .all()
    expect(rows).toEqual([
      { type: 'budget.blocked', n: 1 },
      { type: 'budget.threshold', n: 3 },
    ])
    const fired = db.prepare('SELECT COUNT(*) AS n FROM fired_thresholds WHERE subject_id = ?').get(budget.id) as { n: number }
    expect(fired.n).toBe(new Set(results.flat()).size)
    db.close()
  }, 60_000)
})
