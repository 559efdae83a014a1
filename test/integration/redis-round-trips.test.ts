/**
 * What a call with a hard budget costs in Redis round trips, read from a running gateway's own
 * `/metrics`: one to reserve, one to settle, nothing else — the budget policy decides from the
 * counter values the settles bring back instead of reading them first. And the other side of
 * that bargain: a degrade mark crossed by another gateway process takes effect here too, once
 * this process's view of the counter is older than a second.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startMockUpstream, type MockUpstream } from '../../src/providers/index.js'
import { migratePostgres } from '../../src/store/postgres-redis.js'
import { spawnGateway, type GatewayHandle } from '../support/processes.js'
import { describeWithBoth } from '../support/services.js'
import { chatBody, mapBounded, pendingReservations, until, usdToMicros } from './hard-caps-support.js'
import { adminAt, gatewayEnv, scaleConfig, writeConfig } from './scale-support.js'

const ADMIN = 'tg_round_trips_admin_token_0123456789'
const MOCK_KEY = 'sk-round-trips-mock-upstream-key'
const KEY = 'tg_round_trips_consumer_key_0123456'
const BURST = 64

let dir: string
const mocks: MockUpstream[] = []
const gateways: GatewayHandle[] = []
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-round-trips-'))
})
afterAll(async () => {
  await Promise.all(mocks.map((m) => m.close()))
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function roundTrips(gateway: GatewayHandle): Promise<number> {
  const text = await (await fetch(`${gateway.baseUrl}/metrics`)).text()
  const match = /^tollgate_redis_round_trips_total (\d+)/m.exec(text)
  if (!match) throw new Error('no tollgate_redis_round_trips_total in /metrics')
  return Number(match[1])
}

describeWithBoth('Redis round trips on the request path', (ctx) => {
  // Before the block's own afterAll drops the schema: a gateway still draining its journal into it
  // would deadlock with DROP SCHEMA.
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.kill('SIGTERM')))
  })

  async function start(name: string, team: string, budgets: ReadonlyArray<Record<string, unknown>>, count: number): Promise<GatewayHandle[]> {
    const mock = await startMockUpstream({ apiKey: MOCK_KEY })
    mocks.push(mock)
    await migratePostgres(ctx.postgres.url)
    const config = writeConfig(
      dir,
      `${name}.yaml`,
      scaleConfig({
        postgresUrl: ctx.postgres.url,
        redisUrl: ctx.redis.url,
        mockBaseUrl: `${mock.url}/v1`,
        consumers: [{ name: 'svc', apiKey: KEY, teamId: team }],
        budgets,
        // The expiry sweeper's own round trips would blur the count; it is not on a request's path.
        reservations: { ttlMs: 900_000, sweepIntervalMs: 600_000 },
      }),
    )
    const env = gatewayEnv(ADMIN, MOCK_KEY, `${ctx.redis.prefix}${name}:`)
    const started = await Promise.all(Array.from({ length: count }, () => spawnGateway({ config, env })))
    gateways.push(...started)
    expect((await adminAt(started[0]!.baseUrl, ADMIN)('POST', '/v1/wallets/allocate', { team_id: team, amount: 100, currency: 'USD' })).status).toBe(201)
    return started
  }

  const chat = (gateway: GatewayHandle) =>
    fetch(`${gateway.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: chatBody('count my round trips', { max_tokens: 40 }),
    })

  it('a burst of calls against a wallet, a hard budget and a soft one: exactly one round trip to reserve and one to settle each', async () => {
    const [gateway] = await start(
      'burst',
      'team_rt_burst',
      [
        { id: 'bud_rt_hard', name: 'Hard cap', scope: { kind: 'team', id: 'team_rt_burst' }, period: 'monthly', amount_usd: 50, hard_limit: true },
        {
          id: 'bud_rt_soft',
          name: 'Soft watch',
          scope: { kind: 'team', id: 'team_rt_burst' },
          period: 'daily',
          amount_usd: 40,
          alert_thresholds: [50, 80, 95],
        },
      ],
      1,
    )
    const gw = gateway!
    // The first calls read the counters (this process has never seen them); their settles bring them back.
    for (let i = 0; i < 3; i++) {
      const warm = await chat(gw)
      expect(warm.status).toBe(200)
      await warm.text()
    }
    await until('the warm-up settled', async () => ((await pendingReservations(gw.baseUrl)) === 0 ? true : undefined))

    // A scrape of /metrics makes round trips of its own (it counts pending reservations): measure them.
    const scrapeCost = -(await roundTrips(gw)) + (await roundTrips(gw))
    // The policy reads the counters itself once its view of them is over a second old
    // (POLICY_SPEND_MAX_AGE_MS): the burst starts within half a second of a settle that refreshed
    // it, warming up again on a machine slow enough to miss that.
    let before = 0
    for (let attempt = 1; ; attempt++) {
      const warm = await chat(gw)
      expect(warm.status).toBe(200)
      await warm.text()
      const settledAt = performance.now()
      await until('the warm-up settled', async () => ((await pendingReservations(gw.baseUrl)) === 0 ? true : undefined))
      before = await roundTrips(gw)
      if (performance.now() - settledAt < 500) break
      if (attempt === 10) throw new Error('no burst could start within half a second of a settle')
    }
    const statuses = await mapBounded(
      Array.from({ length: BURST }, (_, i) => i),
      BURST,
      async () => {
        const response = await chat(gw)
        await response.text()
        return response.status
      },
    )
    expect(statuses.every((s) => s === 200)).toBe(true)
    // The last settles land just after their responses: scrape until the count stops moving.
    let after = await roundTrips(gw)
    let scrapes = 1
    for (let still = 0; still < 3; scrapes++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      const now = await roundTrips(gw)
      still = now - after === scrapeCost ? still + 1 : 0
      after = now
    }
    expect(after - before - scrapes * scrapeCost).toBe(2 * BURST)
    expect(await pendingReservations(gw.baseUrl)).toBe(0)
  })

  it('a degrade mark reached through another process is honoured here once its last view is over a second old', async () => {
    const [here, there] = await start(
      'degrade',
      'team_rt_degrade',
      [
        {
          id: 'bud_rt_degrade',
          name: 'Degrade early',
          scope: { kind: 'team', id: 'team_rt_degrade' },
          period: 'monthly',
          amount_usd: 1,
          threshold_actions: [{ threshold_percent: 50, action: 'degrade' }],
        },
      ],
      2,
    )
    const calibrate = await chat(here!)
    expect(calibrate.status).toBe(200)
    expect(calibrate.headers.get('x-tollgate-degraded')).toBeNull()
    const perCall = usdToMicros(calibrate.headers.get('x-tollgate-cost-usd'))
    await calibrate.text()
    expect(perCall).toBeGreaterThan(0)

    // Spend past 50% of $1 through the other process only.
    const needed = Math.ceil(500_000 / perCall) + 1
    for (let i = 0; i < needed; i++) {
      const response = await chat(there!)
      await response.text()
      if (response.headers.get('x-tollgate-degraded') !== null) break
    }
    await until('the other process degrades', async () => {
      const response = await chat(there!)
      await response.text()
      return response.headers.get('x-tollgate-degraded') !== null ? true : undefined
    })

    await new Promise((resolve) => setTimeout(resolve, 1_100))
    const late = await chat(here!)
    await late.text()
    expect(late.status).toBe(200)
    expect(late.headers.get('x-tollgate-degraded')).not.toBeNull()
  })
})
