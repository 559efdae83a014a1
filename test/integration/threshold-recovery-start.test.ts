/**
 * A threshold notice lost by a crash is written when a gateway starts, even if the budget sees
 * no more spend. What a process killed between its settle's commit and the notice leaves behind
 * is a period counter past the mark with no firing mark and no notice: here one gateway moves
 * the counter through its ledger (as that settle did) and closes without evaluating it, then the
 * next gateway on the same store starts. On SQLite and on Redis + PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../../src/app.js'
import { counterRefOf } from '../../src/budgets/budget.js'
import { periodOf } from '../../src/budgets/index.js'
import { parseConfig } from '../../src/config/index.js'
import { micros } from '../../src/money/index.js'
import { createLogger } from '../../src/observability/logger.js'
import { describeWithBoth } from '../support/services.js'

const ADMIN = 'tg_admin_threshold_recovery_0123456789'
const ORG = 'default'
const WAIT_MS = 10_000

function yamlOf(storage: Record<string, unknown>): string {
  return stringify({
    version: '1',
    storage,
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    budgets: [{ name: 'quiet team daily', scope: { kind: 'team', id: 'team_quiet' }, period: 'daily', amount_usd: 1, alert_thresholds: [50, 80] }],
  })
}

async function started(yaml: string, env: Record<string, string>): Promise<App> {
  const all = { ...env, TOLLGATE_ADMIN_TOKEN: ADMIN }
  const app = await buildApp(parseConfig(yaml, '<threshold-recovery>', { env: all }), { env: all, logger: createLogger({ level: 'silent' }) })
  await app.start()
  return app
}

async function thresholdNotices(app: App): Promise<Array<{ data: Record<string, unknown> }>> {
  const response = await app.fastify.inject({ method: 'GET', url: '/v1/notifications?limit=100', headers: { authorization: `Bearer ${ADMIN}` } })
  expect(response.statusCode).toBe(200)
  return (response.json().data as Array<{ type: string; data: Record<string, unknown> }>).filter((n) => n.type === 'budget.threshold')
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const value = await read()
    if (done(value) || Date.now() > deadline) return value
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function recovery(storage: () => Record<string, unknown>, env: () => Record<string, string>) {
  it('the next start writes the notice of a threshold whose spend committed but whose notice was lost, once', async () => {
    const yaml = yamlOf(storage())
    // The process that "died": its settle moved the counter to $0.60 of $1, no notice followed.
    const first = await started(yaml, env())
    const [budget] = await first.budgets.list(ORG)
    const counter = counterRefOf(budget!, periodOf(budget!.period, budget!.timezone, Date.now()))
    await first.stores.ledger.recordSpend(ORG, [counter], micros(600_000))
    expect(await thresholdNotices(first)).toEqual([])
    await first.close()

    const second = await started(yaml, env())
    try {
      const notices = await eventually(
        () => thresholdNotices(second),
        (n) => n.length > 0,
      )
      expect(notices.map((n) => n.data)).toEqual([expect.objectContaining({ budget_name: 'quiet team daily', threshold_percent: 50, spend_usd: 0.6 })])
    } finally {
      await second.close()
    }

    // Every later start finds the mark: still one notice.
    const third = await started(yaml, env())
    try {
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await thresholdNotices(third)).toHaveLength(1)
    } finally {
      await third.close()
    }
  }, 60_000)
}

describe('threshold notices lost by a crash are written at the next start (SQLite)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-threshold-recovery-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  recovery(
    () => ({ sqlite: join(dir, 'tollgate.sqlite') }),
    () => ({}),
  )
})

describeWithBoth('threshold notices lost by a crash are written at the next start (Redis + PostgreSQL)', (ctx) => {
  recovery(
    () => ({ postgres: ctx.postgres.url, redis: ctx.redis.url }),
    () => ({ TOLLGATE_REDIS_PREFIX: ctx.redis.prefix }),
  )
})
