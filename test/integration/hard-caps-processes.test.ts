/**
 * Hard caps across processes: several gateway processes share one SQLite file
 * and one team wallet.
 *
 * CONCURRENCY: three `tollgate serve` processes take 300 concurrent calls (60 in flight, spread
 * round-robin) against a wallet that covers only ~40% of them at the worst-case estimate. The
 * wallet is never overspent, exactly the admitted calls reached the upstream, most of what the
 * wallet could pay for was served, nothing stays reserved and the ledger adds up.
 *
 * CRASH: a gateway is killed with SIGKILL while slow streams hold reservations; a gateway
 * restarted on the same file with a short reservation TTL settles them at the reserved amount,
 * flagged `expiry`, so nothing stays reserved and the ledger still adds up.
 *
 * How: the gateways are child processes (`spawnGateway`, the built `dist/` — run `npm run build`
 * first); the mock upstream runs in this process and counts what reached it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startMockUpstream, type MockUpstream } from '../../src/providers/index.js'
import { spawnGateway, type GatewayHandle } from '../support/processes.js'
import {
  capsConfig,
  chatBody,
  ledgerOf,
  ledgerSum,
  mapBounded,
  MOCK_KEY_ENV,
  pendingReservations,
  until,
  usdToMicros,
  walletOf,
  type AdminCall,
  type WalletView,
} from './hard-caps-support.js'

const ADMIN_TOKEN = 'tg_hard_caps_processes_admin_0123456'
const MOCK_KEY = 'sk-hard-caps-mock-upstream-key'
const KEY = 'tg_hard_caps_processes_consumer_0123'
const CALIBRATION_KEY = 'tg_hard_caps_processes_calibrate_012'
const TEAM = 'team_shared'
const CALIBRATION_TEAM = 'team_calibration'
const CALLS = 300
const IN_FLIGHT_MAX = 60
/** An explicit cap equal to the mock's 40-word reply: the actual cost is close to the estimate. */
const OUTPUT_TOKENS = 40

let dir: string
const mocks: MockUpstream[] = []

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-hard-caps-proc-'))
})

afterAll(async () => {
  await Promise.all(mocks.map((m) => m.close()))
  if (dir) rmSync(dir, { recursive: true, force: true })
})

function adminAt(baseUrl: string): AdminCall {
  return async (method, path, body) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: response.status, body: await response.json() }
  }
}

function writeConfig(name: string, yaml: string): string {
  const path = join(dir, name)
  writeFileSync(path, yaml)
  return path
}

const gatewayEnv = { ...process.env, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, [MOCK_KEY_ENV]: MOCK_KEY, TOLLGATE_LOG_LEVEL: 'warn' }

function chatAt(baseUrl: string, key: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: chatBody('how much will this cost', { max_tokens: OUTPUT_TOKENS, ...extra }),
  })
}

it('three processes on one wallet never overspend it, and serve what it can pay for', { timeout: 60_000 }, async () => {
  const mock = await startMockUpstream({ apiKey: MOCK_KEY, requestsRecordedMax: 10_000 })
  mocks.push(mock)
  const config = writeConfig(
    'concurrency.yaml',
    capsConfig({
      sqlitePath: join(dir, 'concurrency.sqlite'),
      mockBaseUrl: `${mock.url}/v1`,
      consumers: [
        { name: 'shared', apiKey: KEY, teamId: TEAM },
        { name: 'calibration', apiKey: CALIBRATION_KEY, teamId: CALIBRATION_TEAM },
      ],
    }),
  )
  // The first process creates the schema; the others join the existing file.
  const first = await spawnGateway({ config, env: gatewayEnv })
  const gateways: GatewayHandle[] = [first, ...(await Promise.all([spawnGateway({ config, env: gatewayEnv }), spawnGateway({ config, env: gatewayEnv })]))]
  const admin = adminAt(first.baseUrl)

  // Calibrate on another team's wallet: what one call reserves (worst case) and really costs.
  expect((await admin('POST', '/v1/wallets/allocate', { team_id: CALIBRATION_TEAM, amount: 1, currency: 'USD' })).status).toBe(201)
  const probe = await chatAt(first.baseUrl, CALIBRATION_KEY)
  expect(probe.status).toBe(200)
  await probe.json()
  const reservedPerCall = usdToMicros(probe.headers.get('x-tollgate-cost-reserved-usd'))
  const actualPerCall = usdToMicros(probe.headers.get('x-tollgate-cost-usd'))
  expect(actualPerCall).toBeGreaterThan(0)
  expect(actualPerCall).toBeLessThanOrEqual(reservedPerCall)
  const upstreamBefore = mock.requests.length

  const allocation = Math.floor(CALLS * 0.4) * reservedPerCall
  expect((await admin('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: allocation / 1_000_000, currency: 'USD' })).status).toBe(201)

  const outcomes = await mapBounded(
    Array.from({ length: CALLS }, (_, i) => i),
    IN_FLIGHT_MAX,
    async (i) => {
      const gateway = gateways[i % gateways.length]!
      const response = await chatAt(gateway.baseUrl, KEY)
      const body = (await response.json()) as any
      return { status: response.status, cost: response.headers.get('x-tollgate-cost-usd'), code: body?.error?.code as string | undefined }
    },
  )

  const admitted = outcomes.filter((o) => o.status === 200)
  const refused = outcomes.filter((o) => o.status !== 200)
  // Every refusal is the wallet saying no, never a store or server error.
  expect(new Set(refused.map((o) => `${o.status} ${o.code}`))).toEqual(refused.length ? new Set(['429 insufficient_quota']) : new Set())
  expect(mock.requests.length - upstreamBefore).toBe(admitted.length)

  // A call settles right after its response is sent; another process sees it a moment later.
  const w = await until('every reservation settled', async () => {
    const wallet = (await walletOf(admin, `team:${TEAM}`)) as WalletView
    return wallet.reserved_micros === 0 ? wallet : undefined
  })
  expect(w.allocated_micros).toBe(allocation)
  expect(w.spent_micros).toBeLessThanOrEqual(allocation)
  expect(w.reserved_micros).toBe(0)
  expect(w.spent_micros).toBe(admitted.reduce((sum, o) => sum + usdToMicros(o.cost), 0))
  const fundable = Math.min(CALLS, Math.floor(allocation / actualPerCall))
  expect(fundable).toBeLessThan(CALLS)
  expect(admitted.length).toBeGreaterThanOrEqual(Math.ceil(0.75 * fundable))
  const ledger = await ledgerOf(admin, w.id)
  expect(ledger.filter((e) => e.kind === 'reservation')).toHaveLength(admitted.length)
  expect(ledgerSum(ledger)).toBe(w.available_micros)
  for (const g of gateways) expect(await pendingReservations(g.baseUrl)).toBe(0)
  await Promise.all(gateways.map((g) => g.kill('SIGTERM')))
})

it('after a gateway is killed mid-stream, a restarted one expires its reservations at the reserved amount', { timeout: 60_000 }, async () => {
  // 40 words at 400 ms each: every stream is still open when the gateway dies.
  const mock = await startMockUpstream({ apiKey: MOCK_KEY, streamChunkDelayMs: 400 })
  mocks.push(mock)
  const config = writeConfig(
    'crash.yaml',
    capsConfig({
      sqlitePath: join(dir, 'crash.sqlite'),
      mockBaseUrl: `${mock.url}/v1`,
      consumers: [{ name: 'shared', apiKey: KEY, teamId: TEAM }],
      targetTimeoutMs: 2_000,
      // Long enough that the doomed gateway's own sweeper leaves them alone on a loaded machine
      // (it once read the wallet after all five had expired), short against the 16 s streams.
      reservations: { ttlMs: 5_000, sweepIntervalMs: 200 },
    }),
  )
  const doomed = await spawnGateway({ config, env: gatewayEnv })
  const admin = adminAt(doomed.baseUrl)
  expect((await admin('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 5, currency: 'USD' })).status).toBe(201)

  const STREAMS = 5
  const streams = Array.from({ length: STREAMS }, () =>
    chatAt(doomed.baseUrl, KEY, { stream: true }).then(
      async (response) => {
        const reserved = response.headers.get('x-tollgate-cost-reserved-usd')
        await response.text().catch(() => undefined)
        return reserved
      },
      () => null,
    ),
  )
  await until('every stream to hold a reservation', async () => ((await pendingReservations(doomed.baseUrl)) === STREAMS ? true : undefined))
  const during = (await walletOf(admin, `team:${TEAM}`)) as WalletView
  expect(during.reserved_micros).toBeGreaterThan(0)
  const exit = await doomed.kill('SIGKILL')
  expect(exit.signal).toBe('SIGKILL')
  await Promise.all(streams)

  const restarted = await spawnGateway({ config, env: gatewayEnv })
  const after = adminAt(restarted.baseUrl)
  await until(
    'the sweeper to expire every orphaned reservation',
    async () => ((await pendingReservations(restarted.baseUrl)) === 0 ? true : undefined),
    15_000,
    100,
  )

  const w = (await walletOf(after, `team:${TEAM}`)) as WalletView
  expect(w.reserved_micros).toBe(0)
  // Settled at the reserved amount: everything that was reserved is now spent.
  expect(w.spent_micros).toBe(during.reserved_micros)
  const ledger = await ledgerOf(after, w.id)
  const reservations = ledger.filter((e) => e.kind === 'reservation')
  const expiries = ledger.filter((e) => e.kind === 'expiry')
  expect(reservations).toHaveLength(STREAMS)
  expect(expiries).toHaveLength(STREAMS)
  expect(new Set(expiries.map((e) => e.reservation_id))).toEqual(new Set(reservations.map((e) => e.reservation_id)))
  // Nothing released: an expiry charges the full reservation.
  for (const e of expiries) expect(e.amount_micros).toBe(0)
  for (const e of reservations) {
    const { body } = await after('GET', `/v1/reservations/${e.reservation_id}`)
    expect(body).toMatchObject({ status: 'expired', amount_micros: -e.amount_micros, settled_usd: -e.amount_micros / 1_000_000 })
  }
  expect(ledgerSum(ledger)).toBe(w.available_micros)
  await restarted.kill('SIGTERM')
})
