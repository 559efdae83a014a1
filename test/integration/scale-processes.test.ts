/**
 * Scale out: four `tollgate serve` processes on one Redis and one PostgreSQL behave as
 * one gateway. 1,200 concurrent calls, spread round-robin: half on a team whose wallet covers
 * ~40% of them, half on a team held by a hard monthly budget that covers about half of them.
 * Neither limit is ever exceeded, exactly the admitted calls reached the upstream, most of what
 * each limit could fund was served, and the durable record in PostgreSQL agrees with Redis.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startMockUpstream, type MockUpstream } from '../../src/providers/index.js'
import { migratePostgres } from '../../src/store/postgres-redis.js'
import { spawnGateway, type GatewayHandle } from '../support/processes.js'
import { describeWithBoth } from '../support/services.js'
import { chatBody, ledgerOf, ledgerSum, mapBounded, pendingReservations, until, usdToMicros, walletOf, type WalletView } from './hard-caps-support.js'
import { adminAt, gatewayEnv, scaleConfig, sql, writeConfig } from './scale-support.js'

const ADMIN = 'tg_scale_processes_admin_token_01234'
const MOCK_KEY = 'sk-scale-processes-mock-upstream'
const KEY_WALLET = 'tg_scale_wallet_bound_consumer_0123'
const KEY_BUDGET = 'tg_scale_budget_bound_consumer_0123'
const KEY_CALIBRATE = 'tg_scale_calibration_consumer_01234'
const TEAM_WALLET = 'team_scale_wallet'
const TEAM_BUDGET = 'team_scale_budget'
const TEAM_CALIBRATE = 'team_scale_calibrate'
const BUDGET_ID = 'bud_scale_team_budget'
const BUDGET_USD = 12
const GATEWAYS = 4
const CALLS_PER_TEAM = 600
const IN_FLIGHT_MAX = 64
const OUTPUT_TOKENS = 40

let dir: string
const mocks: MockUpstream[] = []
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-scale-'))
})
afterAll(async () => {
  await Promise.all(mocks.map((m) => m.close()))
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describeWithBoth('scale out: many gateway processes on one Redis and one PostgreSQL', (ctx) => {
  it('four processes, 1,200 concurrent calls: no wallet or hard budget is exceeded, and admitted = reached upstream', { timeout: 120_000 }, async () => {
    const mock = await startMockUpstream({ apiKey: MOCK_KEY, requestsRecordedMax: 10_000 })
    mocks.push(mock)
    await migratePostgres(ctx.postgres.url)
    const config = writeConfig(
      dir,
      'scale.yaml',
      scaleConfig({
        postgresUrl: ctx.postgres.url,
        redisUrl: ctx.redis.url,
        mockBaseUrl: `${mock.url}/v1`,
        consumers: [
          { name: 'wallet-bound', apiKey: KEY_WALLET, teamId: TEAM_WALLET },
          { name: 'budget-bound', apiKey: KEY_BUDGET, teamId: TEAM_BUDGET },
          { name: 'calibration', apiKey: KEY_CALIBRATE, teamId: TEAM_CALIBRATE },
        ],
        extraModels: [{ name: 'metered-b', upstreamModel: 'gpt-4o' }],
        budgets: [
          { id: BUDGET_ID, name: 'Scale team monthly', scope: { kind: 'team', id: TEAM_BUDGET }, period: 'monthly', amount_usd: BUDGET_USD, hard_limit: true },
        ],
      }),
    )
    const env = gatewayEnv(ADMIN, MOCK_KEY, ctx.redis.prefix)
    const gateways: GatewayHandle[] = await Promise.all(Array.from({ length: GATEWAYS }, () => spawnGateway({ config, env })))
    const admin = adminAt(gateways[0]!.baseUrl, ADMIN)
    const chat = (gateway: GatewayHandle, key: string, model: string) =>
      fetch(`${gateway.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: chatBody('how much will this cost', { model, max_tokens: OUTPUT_TOKENS }),
      })

    // Calibrate: what one call reserves (worst case) and really costs.
    expect((await admin('POST', '/v1/wallets/allocate', { team_id: TEAM_CALIBRATE, amount: 1, currency: 'USD' })).status).toBe(201)
    const probe = await chat(gateways[1]!, KEY_CALIBRATE, 'metered')
    expect(probe.status).toBe(200)
    await probe.json()
    const reservedPerCall = usdToMicros(probe.headers.get('x-tollgate-cost-reserved-usd'))
    const actualPerCall = usdToMicros(probe.headers.get('x-tollgate-cost-usd'))
    expect(actualPerCall).toBeGreaterThan(0)

    const allocation = Math.floor(CALLS_PER_TEAM * 0.4) * reservedPerCall
    expect((await admin('POST', '/v1/wallets/allocate', { team_id: TEAM_WALLET, amount: allocation / 1e6, currency: 'USD' })).status).toBe(201)
    // The budget-bound team's wallet is ample: only its hard budget limits it.
    expect((await admin('POST', '/v1/wallets/allocate', { team_id: TEAM_BUDGET, amount: 1_000, currency: 'USD' })).status).toBe(201)
    const upstreamBefore = mock.requests.length

    const calls = Array.from({ length: CALLS_PER_TEAM * 2 }, (_, i) => (i % 2 === 0 ? 'wallet' : 'budget') as 'wallet' | 'budget')
    const startedAt = Date.now()
    const outcomes = await mapBounded(calls, IN_FLIGHT_MAX, async (team, i) => {
      const response = await chat(gateways[i % GATEWAYS]!, team === 'wallet' ? KEY_WALLET : KEY_BUDGET, team === 'wallet' ? 'metered' : 'metered-b')
      const body = (await response.json()) as { error?: { code?: string } }
      return { team, status: response.status, cost: response.headers.get('x-tollgate-cost-usd'), code: body.error?.code }
    })
    const elapsedMs = Date.now() - startedAt

    const upstream = mock.requests.slice(upstreamBefore)
    for (const [team, upstreamModel, refusal] of [
      ['wallet', 'gpt-4o-mini', '429 insufficient_quota'],
      ['budget', 'gpt-4o', '429 budget_cap_exceeded'],
    ] as const) {
      const mine = outcomes.filter((o) => o.team === team)
      const admitted = mine.filter((o) => o.status === 200)
      const refused = mine.filter((o) => o.status !== 200)
      // Every refusal is the limit saying no, never a store or server error.
      expect(new Set(refused.map((o) => `${o.status} ${o.code}`))).toEqual(new Set([refusal]))
      expect(upstream.filter((r) => (r.body as { model?: string }).model === upstreamModel)).toHaveLength(admitted.length)
      const spent = admitted.reduce((sum, o) => sum + usdToMicros(o.cost), 0)
      const limit = team === 'wallet' ? allocation : BUDGET_USD * 1e6
      expect(spent).toBeLessThanOrEqual(limit)
      const fundable = Math.floor(limit / actualPerCall)
      expect(fundable).toBeLessThan(CALLS_PER_TEAM)
      expect(admitted.length).toBeGreaterThanOrEqual(Math.ceil(0.75 * fundable))
    }

    // Redis (what the API shows) and the journal in PostgreSQL settle on the same numbers.
    const walletAdmitted = outcomes.filter((o) => o.team === 'wallet' && o.status === 200)
    const walletSpent = walletAdmitted.reduce((sum, o) => sum + usdToMicros(o.cost), 0)
    // Each call settles right after its response; the last ones land a moment later.
    const w = await until('every reservation settled', async () => {
      const wallet = (await walletOf(admin, `team:${TEAM_WALLET}`)) as WalletView
      return wallet.reserved_micros === 0 ? wallet : undefined
    })
    expect(w).toMatchObject({ allocated_micros: allocation, reserved_micros: 0, spent_micros: walletSpent })
    await until('the journal to reach PostgreSQL', async () => {
      const [row] = await sql<{ spent_micros: number; reserved_micros: number }>(
        ctx.postgres.url,
        'SELECT spent_micros::float8 AS spent_micros, reserved_micros::float8 AS reserved_micros FROM wallets WHERE id = $1',
        [w.id],
      )
      return row && row.spent_micros === walletSpent && row.reserved_micros === 0 ? true : undefined
    })
    const ledger = await ledgerOf(admin, w.id)
    expect(ledger.filter((e) => e.kind === 'reservation')).toHaveLength(walletAdmitted.length)
    expect(ledgerSum(ledger)).toBe(w.available_micros)

    const budgetSpent = outcomes.filter((o) => o.team === 'budget' && o.status === 200).reduce((sum, o) => sum + usdToMicros(o.cost), 0)
    await until('the budget counter to reach PostgreSQL', async () => {
      const [row] = await sql<{ spent: number; reserved: number }>(
        ctx.postgres.url,
        'SELECT spent_micros::float8 AS spent, reserved_micros::float8 AS reserved FROM budget_counters WHERE budget_id = $1',
        [BUDGET_ID],
      )
      return row && row.spent === budgetSpent && row.reserved === 0 ? true : undefined
    })
    for (const g of gateways) expect(await pendingReservations(g.baseUrl)).toBe(0)
    console.info(`[scale] ${calls.length} calls through ${GATEWAYS} gateways in ${elapsedMs} ms`)
    await Promise.all(gateways.map((g) => g.kill('SIGTERM')))
  })
})
