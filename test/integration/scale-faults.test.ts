/**
 * Scale out under faults. Gateways are child processes on PostgreSQL + Redis; outages
 * are made with a TCP proxy between a gateway and the server (connections reset, new ones
 * refused — what a stopped server looks like to the client) or, for "Redis came back empty", by
 * deleting every key of the run.
 *
 * - Redis emptied mid-traffic: the org is rebuilt from PostgreSQL before more traffic is admitted;
 *   nothing is overspent and Redis and PostgreSQL end equal.
 * - Redis unreachable: a `closed` consumer is refused with 503; an `open` one is served within its
 *   emergency allowance, and that spend is charged to its wallet once Redis is back.
 * - PostgreSQL unreachable and back: the gateway keeps enforcing from Redis, /readyz says not
 *   ready, and once PostgreSQL returns every journaled money move is there.
 * - A gateway killed with SIGKILL mid-stream: another gateway's sweeper expires its reservations
 *   at the reserved amount.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startMockUpstream, type MockUpstream } from '../../src/providers/index.js'
import { migratePostgres } from '../../src/store/postgres-redis.js'
import { spawnGateway, type GatewayHandle } from '../support/processes.js'
import { describeWithBoth } from '../support/services.js'
import {
  chatBody,
  ledgerOf,
  ledgerSum,
  mapBounded,
  pendingReservations,
  until,
  usdToMicros,
  walletOf,
  type AdminCall,
  type WalletView,
} from './hard-caps-support.js'
import { adminAt, gatewayEnv, hostPort, scaleConfig, sql, startTcpProxy, viaPort, writeConfig, type ScaleConfigSpec, type TcpProxy } from './scale-support.js'

const ADMIN = 'tg_scale_faults_admin_token_0123456'
const MOCK_KEY = 'sk-scale-faults-mock-upstream-key'
const KEY = 'tg_scale_faults_consumer_key_012345'
const KEY_OPEN = 'tg_scale_faults_open_consumer_01234'
// Every test has its own teams: the schema (and so the wallets of the default org) is shared by the file.
const teamOf = (test: string): string => `team_${test.replace(/-/g, '_')}`
const OUTPUT_TOKENS = 40

let dir: string
const mocks: MockUpstream[] = []
const proxies: TcpProxy[] = []
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-scale-faults-'))
})
afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()))
  await Promise.all(mocks.map((m) => m.close()))
  if (dir) rmSync(dir, { recursive: true, force: true })
})

function chat(gateway: GatewayHandle, key: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${gateway.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: chatBody('how much will this cost', { max_tokens: OUTPUT_TOKENS, ...extra }),
  })
}

async function call(gateway: GatewayHandle, key: string): Promise<{ status: number; code: string | undefined; cost: number }> {
  const response = await chat(gateway, key)
  const body = (await response.json()) as { error?: { code?: string } }
  const cost = response.headers.get('x-tollgate-cost-usd')
  return { status: response.status, code: body.error?.code, cost: cost === null ? 0 : usdToMicros(cost) }
}

async function readyz(gateway: GatewayHandle): Promise<number> {
  return (await fetch(`${gateway.baseUrl}/readyz`)).status
}

async function pgWallet(url: string, walletId: string): Promise<{ spent: number; reserved: number; allocated: number } | undefined> {
  const [row] = await sql<{ spent: number; reserved: number; allocated: number }>(
    url,
    'SELECT spent_micros::float8 AS spent, reserved_micros::float8 AS reserved, allocated_micros::float8 AS allocated FROM wallets WHERE id = $1',
    [walletId],
  )
  return row
}

describeWithBoth('scale out under faults', (ctx) => {
  async function stack(name: string, spec: Omit<ScaleConfigSpec, 'mockBaseUrl'>, mockOptions: Parameters<typeof startMockUpstream>[0] = {}) {
    const mock = await startMockUpstream({ apiKey: MOCK_KEY, requestsRecordedMax: 10_000, ...mockOptions })
    mocks.push(mock)
    await migratePostgres(ctx.postgres.url)
    const config = writeConfig(dir, `${name}.yaml`, scaleConfig({ ...spec, mockBaseUrl: `${mock.url}/v1` }))
    // Each test has its own orgs' keys: the run's prefix plus the test's name.
    const env = gatewayEnv(ADMIN, MOCK_KEY, `${ctx.redis.prefix}${name}:`)
    return { mock, config, env, spawn: () => spawnGateway({ config, env }) }
  }

  /** Settles once Redis (the API) and PostgreSQL agree on the wallet, and returns it. */
  async function agreed(admin: AdminCall, scope: string): Promise<WalletView> {
    return until(
      `Redis and PostgreSQL to agree on ${scope}`,
      async () => {
        const w = await walletOf(admin, scope)
        if (!w) return undefined
        const row = await pgWallet(ctx.postgres.url, w.id)
        return row && row.spent === w.spent_micros && row.reserved === w.reserved_micros && w.reserved_micros === 0 ? w : undefined
      },
      15_000,
      100,
    )
  }

  it('Redis emptied mid-traffic: the org is rebuilt from PostgreSQL and nothing is overspent', { timeout: 60_000 }, async () => {
    const TEAM = teamOf('flush')
    const { mock, spawn } = await stack('flush', {
      postgresUrl: ctx.postgres.url,
      redisUrl: ctx.redis.url,
      consumers: [{ name: 'svc', apiKey: KEY, teamId: TEAM }],
      // Nothing here should time out or expire: on a loaded machine a 2 s target timeout once
      // answered one call 504, and a call slowed past its reservation is charged all of it.
      targetTimeoutMs: 10_000,
      reservations: { ttlMs: 15_000, sweepIntervalMs: 200 },
    })
    const gateways = await Promise.all([spawn(), spawn()])
    const admin = adminAt(gateways[0]!.baseUrl, ADMIN)
    const probe = await call(gateways[0]!, KEY)
    expect(probe).toMatchObject({ status: 429, code: 'insufficient_quota' })
    // Wallet for ~40% of the calls at $0.04 actual each.
    const CALLS = 400
    const allocation = 6_000_000
    expect((await admin('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: allocation / 1e6, currency: 'USD' })).status).toBe(201)

    const redis = new Redis(ctx.redis.url, { maxRetriesPerRequest: 1 })
    let flushed = 0
    const upstreamBefore = mock.requests.length
    const outcomes = await mapBounded(
      Array.from({ length: CALLS }, (_, i) => i),
      32,
      async (i) => {
        if (i === 80) {
          // Redis "restarts empty": every key of this test is gone, mid-traffic.
          const keys = await redis.keys(`${ctx.redis.prefix}flush:*`)
          flushed = keys.length
          if (keys.length > 0) await redis.del(...keys)
        }
        return call(gateways[i % 2]!, KEY)
      },
    )
    redis.disconnect()
    expect(flushed).toBeGreaterThan(0)

    const admitted = outcomes.filter((o) => o.status === 200)
    const refused = outcomes.filter((o) => o.status !== 200)
    expect(new Set(refused.map((o) => `${o.status} ${o.code}`))).toEqual(new Set(['429 insufficient_quota']))
    expect(mock.requests.length - upstreamBefore).toBe(admitted.length)
    const charged = admitted.reduce((sum, o) => sum + o.cost, 0)
    expect(charged).toBeLessThanOrEqual(allocation)

    const w = await agreed(admin, `team:${TEAM}`)
    expect(w.allocated_micros).toBe(allocation)
    expect(w.spent_micros).toBe(charged)
    expect(ledgerSum(await ledgerOf(admin, w.id))).toBe(w.available_micros)
    expect(await pendingReservations(gateways[1]!.baseUrl)).toBe(0)
    // Every call's usage event (refusals are recorded too, at no cost) reached PostgreSQL across
    // the flush. (ledger-postgres-redis.test.ts loses undrained entries on purpose.)
    const usage = await until('the usage of every admitted call', async () => {
      const report = await admin('GET', '/v1/usage?group_by=team')
      const group = report.body.groups.find((g: { key: { team: string } }) => g.key.team === TEAM)
      return group && group.cost_micros === charged ? group : undefined
    })
    expect(usage.requests).toBe(CALLS + 1)
    await Promise.all(gateways.map((g) => g.kill('SIGTERM')))
  })

  it('Redis unreachable: closed refuses with 503, open serves within its allowance and is charged once Redis is back', { timeout: 60_000 }, async () => {
    const TEAM = teamOf('redis_down')
    const TEAM_OPEN = `${TEAM}_open`
    const target = hostPort(ctx.redis.url)
    const proxy = await startTcpProxy(target.host, target.port)
    proxies.push(proxy)
    const ALLOWANCE_USD = 0.5
    const { spawn } = await stack('redis-down', {
      postgresUrl: ctx.postgres.url,
      redisUrl: viaPort(ctx.redis.url, proxy.port),
      consumers: [
        { name: 'strict', apiKey: KEY, teamId: TEAM, failMode: 'closed' },
        { name: 'lenient', apiKey: KEY_OPEN, teamId: TEAM_OPEN, failMode: 'open', emergencyAllowanceUsd: ALLOWANCE_USD },
      ],
    })
    const gateway = await spawn()
    const admin = adminAt(gateway.baseUrl, ADMIN)
    for (const team of [TEAM, TEAM_OPEN]) {
      expect((await admin('POST', '/v1/wallets/allocate', { team_id: team, amount: 10, currency: 'USD' })).status).toBe(201)
    }
    expect((await call(gateway, KEY)).status).toBe(200)
    const before = (await walletOf(admin, `team:${TEAM_OPEN}`)) as WalletView

    await proxy.cut()
    const strict = await call(gateway, KEY)
    expect(strict).toMatchObject({ status: 503, code: 'store_unavailable' })
    const lenient: Awaited<ReturnType<typeof call>>[] = []
    for (let i = 0; i < 25; i++) lenient.push(await call(gateway, KEY_OPEN))
    const served = lenient.filter((o) => o.status === 200)
    // Served while the allowance lasts, then refused like a closed consumer.
    expect(served.length).toBeGreaterThanOrEqual(3)
    expect(served.reduce((sum, o) => sum + o.cost, 0)).toBeLessThanOrEqual(ALLOWANCE_USD * 1e6)
    expect(lenient.at(-1)).toMatchObject({ status: 503, code: 'store_unavailable' })
    expect(await readyz(gateway)).toBe(503)

    await proxy.restore()
    await until('Redis to be reachable again', async () => ((await readyz(gateway)) === 200 ? true : undefined), 10_000, 100)
    expect((await call(gateway, KEY)).status).toBe(200)
    // The emergency spend is charged to the open consumer's wallet, in Redis and PostgreSQL alike.
    const emergencySpend = served.reduce((sum, o) => sum + o.cost, 0)
    const after = await until(
      'emergency spend to be charged',
      async () => {
        const w = await agreed(admin, `team:${TEAM_OPEN}`)
        return w.spent_micros === before.spent_micros + emergencySpend ? w : undefined
      },
      15_000,
      200,
    )
    expect(ledgerSum(await ledgerOf(admin, after.id))).toBe(after.available_micros)
    await gateway.kill('SIGTERM')
  })

  it('PostgreSQL unreachable and back: enforcement continues from Redis, and no money move is lost', { timeout: 60_000 }, async () => {
    const TEAM = teamOf('pg_down')
    const target = hostPort(ctx.postgres.url)
    const proxy = await startTcpProxy(target.host, target.port)
    proxies.push(proxy)
    const { mock, spawn } = await stack('pg-down', {
      postgresUrl: viaPort(ctx.postgres.url, proxy.port),
      redisUrl: ctx.redis.url,
      consumers: [{ name: 'svc', apiKey: KEY, teamId: TEAM }],
    })
    const gateways = await Promise.all([spawn(), spawn()])
    const admin = adminAt(gateways[0]!.baseUrl, ADMIN)
    const allocation = 3_000_000
    expect((await admin('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: allocation / 1e6, currency: 'USD' })).status).toBe(201)
    const first = await call(gateways[1]!, KEY)
    expect(first.status).toBe(200)

    await proxy.cut()
    const upstreamBefore = mock.requests.length
    // More calls than the wallet can fund: Redis alone still enforces it.
    const outcomes = await mapBounded(
      Array.from({ length: 120 }, (_, i) => i),
      16,
      async (i) => call(gateways[i % 2]!, KEY),
    )
    const admitted = outcomes.filter((o) => o.status === 200)
    expect(admitted.length).toBeGreaterThan(20)
    expect(mock.requests.length - upstreamBefore).toBe(admitted.length)
    // Every other call is refused as a client sees a spent wallet (tickets cannot be opened while
    // PostgreSQL is down, so they come without one) — not a 5xx.
    for (const o of outcomes.filter((o) => o.status !== 200)) expect(o).toMatchObject({ status: 429, code: 'insufficient_quota' })
    for (const g of gateways) expect(await readyz(g)).toBe(503)

    await proxy.restore()
    for (const g of gateways) await until('the journal to drain', async () => ((await readyz(g)) === 200 ? true : undefined), 20_000, 100)
    const w = await agreed(admin, `team:${TEAM}`)
    // Spent is exactly what the clients were told they were charged, within the allocation.
    expect(w.spent_micros).toBe(first.cost + admitted.reduce((sum, o) => sum + o.cost, 0))
    expect(w.spent_micros).toBeLessThanOrEqual(allocation)
    const ledger = await ledgerOf(admin, w.id)
    // Every reservation made while PostgreSQL was down reached it: one before, the rest during.
    expect(ledger.filter((e) => e.kind === 'reservation')).toHaveLength(admitted.length + 1)
    expect(ledgerSum(ledger)).toBe(w.available_micros)
    await Promise.all(gateways.map((g) => g.kill('SIGTERM')))
  })

  it('a gateway killed with SIGKILL mid-stream: another gateway expires its reservations at the reserved amount', { timeout: 60_000 }, async () => {
    const TEAM = teamOf('crash')
    const { spawn } = await stack(
      'crash',
      {
        postgresUrl: ctx.postgres.url,
        redisUrl: ctx.redis.url,
        consumers: [{ name: 'svc', apiKey: KEY, teamId: TEAM }],
        targetTimeoutMs: 2_000,
        // Outlived only after the kill (the streams take 16 s): on a loaded machine 2 s once let
        // them expire before the wallet was read mid-stream.
        reservations: { ttlMs: 5_000, sweepIntervalMs: 200 },
      },
      { streamChunkDelayMs: 400 },
    )
    const [doomed, survivor] = await Promise.all([spawn(), spawn()])
    const admin = adminAt(survivor!.baseUrl, ADMIN)
    expect((await admin('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 5, currency: 'USD' })).status).toBe(201)

    const STREAMS = 5
    const streams = Array.from({ length: STREAMS }, () =>
      chat(doomed!, KEY, { stream: true }).then(
        async (response) => response.text().catch(() => undefined),
        () => null,
      ),
    )
    await until('every stream to hold a reservation', async () => ((await pendingReservations(survivor!.baseUrl)) === STREAMS ? true : undefined))
    const during = (await walletOf(admin, `team:${TEAM}`)) as WalletView
    expect(during.reserved_micros).toBeGreaterThan(0)
    expect((await doomed!.kill('SIGKILL')).signal).toBe('SIGKILL')
    await Promise.all(streams)

    await until(
      'the survivor to expire the orphaned reservations',
      async () => ((await pendingReservations(survivor!.baseUrl)) === 0 ? true : undefined),
      15_000,
      100,
    )
    const w = await agreed(admin, `team:${TEAM}`)
    expect(w.spent_micros).toBe(during.reserved_micros)
    const ledger = await ledgerOf(admin, w.id)
    const reservations = ledger.filter((e) => e.kind === 'reservation')
    const expiries = ledger.filter((e) => e.kind === 'expiry')
    expect(reservations).toHaveLength(STREAMS)
    expect(new Set(expiries.map((e) => e.reservation_id))).toEqual(new Set(reservations.map((e) => e.reservation_id)))
    for (const e of expiries) expect(e.amount_micros).toBe(0)
    expect(ledgerSum(ledger)).toBe(w.available_micros)
    await survivor!.kill('SIGTERM')
  })
})
