/**
 * A forecast notice lost by a crash is written when a gateway starts, even if the budget sees no
 * more spend. What a process killed after its settle's commit leaves behind is usage events and
 * a period counter that say the budget runs out before its period ends, and no forecast notice:
 * here one gateway commits ingested events through its ledger (as the ingestor does) and closes
 * without evaluating them; then two gateways on the same store start at once, and a third after
 * them. On SQLite and on Redis + PostgreSQL.
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
import { FakeClock } from '../../src/lib/clock.js'
import { createLogger } from '../../src/observability/logger.js'
import { describeWithBoth } from '../support/services.js'
import { usageEvent } from '../support/usage-events.js'

const ADMIN = 'tg_admin_trend_recovery_0123456789ab'
const ORG = 'default'
const TEAM = 'team_burning'
const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

function yamlOf(storage: Record<string, unknown>): string {
  return stringify({
    version: '1',
    storage,
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    budgets: [{ name: 'burning team daily', scope: { kind: 'team', id: TEAM }, period: 'daily', timezone: 'UTC', amount_usd: 10 }],
  })
}

async function built(yaml: string, env: Record<string, string>, clock: FakeClock): Promise<App> {
  const all = { ...env, TOLLGATE_ADMIN_TOKEN: ADMIN }
  return buildApp(parseConfig(yaml, '<trend-recovery>', { env: all }), { env: all, clock, logger: createLogger({ level: 'silent' }) })
}

async function started(yaml: string, env: Record<string, string>, clock: FakeClock): Promise<App> {
  const app = await built(yaml, env, clock)
  await app.start()
  return app
}

/** The budget notices in the store, read by a gateway that is built but never started (it recovers nothing). */
async function noticesOf(yaml: string, env: Record<string, string>, clock: FakeClock, type: string): Promise<Array<Record<string, unknown>>> {
  const reader = await built(yaml, env, clock)
  try {
    const response = await reader.fastify.inject({ method: 'GET', url: '/v1/notifications?limit=100', headers: { authorization: `Bearer ${ADMIN}` } })
    expect(response.statusCode).toBe(200)
    return (response.json().data as Array<{ type: string; data: Record<string, unknown> }>).filter((n) => n.type === type).map((n) => n.data)
  } finally {
    await reader.close()
  }
}

function recovery(storage: () => Record<string, unknown>, env: () => Record<string, string>) {
  it('the next start writes the forecast notice whose spend committed but whose evaluation was lost, once for two gateways starting at once', async () => {
    const yaml = yamlOf(storage())
    // Noon (UTC) of today: the daily period is half over, and its counters outlive the test.
    const nowMs = Math.floor(Date.now() / DAY_MS) * DAY_MS + 12 * HOUR_MS
    const clock = new FakeClock(nowMs)

    // The process that "died": $0.50 every hour since midnight ($6 of $10, $12 by the end of the
    // day at that rate) committed with the counter; no evaluation, no notice. Never started, so
    // it runs no recovery of its own.
    const dead = await built(yaml, env(), clock)
    const [budget] = await dead.budgets.list(ORG)
    const counter = counterRefOf(budget!, periodOf(budget!.period, budget!.timezone, nowMs))
    const events = Array.from({ length: 12 }, (_, hour) => ({
      event: usageEvent({
        id: `evt_trend_${hour}`,
        atMs: nowMs - 12 * HOUR_MS + hour * HOUR_MS + 30 * 60_000,
        orgId: ORG,
        teamId: TEAM,
        costMicros: 500_000,
        externalRequestId: `trend-${hour}`,
      }),
      budgets: [counter],
    }))
    await dead.stores.ledger.commitIngested({ atMs: nowMs, events })
    await dead.usage.flush()
    await dead.close()
    expect(await noticesOf(yaml, env(), clock, 'budget.forecast')).toEqual([])

    // Two gateways start at once; close() waits for their start-up recovery to end.
    const pair = await Promise.all([started(yaml, env(), clock), started(yaml, env(), clock)])
    await Promise.all(pair.map((app) => app.close()))
    const notices = await noticesOf(yaml, env(), clock, 'budget.forecast')
    expect(notices).toEqual([expect.objectContaining({ budget_name: 'burning team daily', spend_usd: 6, amount_usd: 10, projected_spend_usd: 12 })])
    expect(notices[0]!['forecast_exhaustion_at']).toBe(new Date(nowMs + 8 * HOUR_MS).toISOString())
    // $0.50 an hour is below the spike floor: no spike.
    expect(await noticesOf(yaml, env(), clock, 'budget.spike')).toEqual([])

    // Every later start finds the mark: still one notice.
    const third = await started(yaml, env(), clock)
    await third.close()
    expect(await noticesOf(yaml, env(), clock, 'budget.forecast')).toHaveLength(1)
  }, 60_000)
}

describe('forecast notices lost by a crash are written at the next start (SQLite)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-trend-recovery-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  recovery(
    () => ({ sqlite: join(dir, 'tollgate.sqlite') }),
    () => ({}),
  )
})

describeWithBoth('forecast notices lost by a crash are written at the next start (Redis + PostgreSQL)', (ctx) => {
  recovery(
    () => ({ postgres: ctx.postgres.url, redis: ctx.redis.url }),
    () => ({ TOLLGATE_REDIS_PREFIX: ctx.redis.prefix }),
  )
})
