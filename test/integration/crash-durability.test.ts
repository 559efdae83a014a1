/**
 * A call whose answer the client received in full is never lost, whatever instant the gateway is
 * killed: during a burst of concurrent calls the gateway gets SIGKILL at a random point; a fresh
 * gateway on the same store then sweeps what was left reserved. Afterwards, on the embedded store
 * and on Redis + PostgreSQL, repeated with different kill points:
 * - every call the client saw complete has its usage event, at the cost its headers said;
 * - nothing is left reserved, and each wallet's balance is the sum of its ledger;
 * - on Redis + PostgreSQL the two stores agree on the wallet.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMockUpstream, type MockUpstream } from '../../src/providers/index.js'
import { migratePostgres } from '../../src/store/postgres-redis.js'
import { spawnGateway, type GatewayHandle } from '../support/processes.js'
import { describeWithBoth } from '../support/services.js'
import {
  capsConfig,
  chatBody,
  ledgerOf,
  ledgerSum,
  mapBounded,
  pendingReservations,
  until,
  usdToMicros,
  walletOf,
  type WalletView,
} from './hard-caps-support.js'
import { adminAt, gatewayEnv, scaleConfig, sql, writeConfig } from './scale-support.js'

const ADMIN = 'tg_crash_durability_admin_token_0123'
const MOCK_KEY = 'sk-crash-durability-mock-upstream'
const KEY = 'tg_crash_durability_consumer_012345'
const CALLS = 60
const CONCURRENCY = 12
const ROUNDS = 2
/**
 * Reservations left by the killed gateway expire this soon on the next one: short, yet well above
 * a call's time on a loaded machine (a call outliving its reservation is charged all of it).
 */
const TTL = { targetTimeoutMs: 2_000, reservations: { ttlMs: 4_000, sweepIntervalMs: 200 } }

let dir: string
const mocks: MockUpstream[] = []
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-crash-'))
})
afterAll(async () => {
  await Promise.all(mocks.map((m) => m.close()))
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function aMock(): Promise<MockUpstream> {
  const mock = await startMockUpstream({ apiKey: MOCK_KEY, requestsRecordedMax: 10_000 })
  mocks.push(mock)
  return mock
}

interface Completed {
  readonly requestId: string
  readonly costMicros: number
}

/**
 * CALLS calls, CONCURRENCY at a time; once `killAfter` of them have been read to the end, the
 * gateway is killed with SIGKILL. Returns the calls whose answer arrived whole.
 */
async function burstUntilKilled(gateway: GatewayHandle, killAfter: number): Promise<Completed[]> {
  const completed: Completed[] = []
  let killing: Promise<unknown> | undefined
  await mapBounded(
    Array.from({ length: CALLS }, (_, i) => i),
    CONCURRENCY,
    async (i) => {
      try {
        const response = await fetch(`${gateway.baseUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: chatBody(`crash test call ${i}`, { max_tokens: 20 }),
        })
        const body = await response.text()
        if (response.status !== 200) return
        JSON.parse(body) // whole
        completed.push({ requestId: response.headers.get('x-tollgate-request-id')!, costMicros: usdToMicros(response.headers.get('x-tollgate-cost-usd')) })
        if (completed.length === killAfter) killing = gateway.kill('SIGKILL')
      } catch {
        // the gateway died under this call: not completed
      }
    },
  )
  await killing
  expect(gateway.exitStatus()?.signal).toBe('SIGKILL')
  return completed
}

async function expectDurable(
  survivor: GatewayHandle,
  team: string,
  completed: readonly Completed[],
  storedEvents: () => Promise<Map<string, number>>,
): Promise<WalletView> {
  const admin = adminAt(survivor.baseUrl, ADMIN)
  await until('the orphaned reservations to expire', async () => ((await pendingReservations(survivor.baseUrl)) === 0 ? true : undefined), 20_000, 100)
  const events = await storedEvents()
  for (const call of completed) expect(events.get(call.requestId), `usage event of ${call.requestId}`).toBe(call.costMicros)
  const w = (await walletOf(admin, `team:${team}`))!
  expect(w.reserved_micros).toBe(0)
  expect(ledgerSum(await ledgerOf(admin, w.id))).toBe(w.available_micros)
  expect(w.spent_micros).toBeGreaterThanOrEqual(completed.reduce((sum, c) => sum + c.costMicros, 0))
  return w
}

const killPoint = (round: number): number => 5 + Math.floor(Math.random() * 30) + round

describe('SIGKILL during a burst, embedded store', () => {
  it(`loses no completed call and leaves nothing reserved (${ROUNDS} kill points)`, { timeout: 240_000 }, async () => {
    const mock = await aMock()
    const path = join(dir, 'crash.sqlite')
    const config = writeConfig(
      dir,
      'sqlite.yaml',
      capsConfig({ consumers: [{ name: 'svc', apiKey: KEY, teamId: 'team_crash' }], sqlitePath: path, mockBaseUrl: `${mock.url}/v1`, ...TTL }),
    )
    const env = gatewayEnv(ADMIN, MOCK_KEY, 'unused:')
    for (let round = 0; round < ROUNDS; round++) {
      const doomed = await spawnGateway({ config, env })
      const admin = adminAt(doomed.baseUrl, ADMIN)
      expect((await admin('POST', '/v1/wallets/allocate', { team_id: 'team_crash', amount: 5, currency: 'USD' })).status).toBe(201)
      const completed = await burstUntilKilled(doomed, killPoint(round))
      const survivor = await spawnGateway({ config, env })
      await expectDurable(survivor, 'team_crash', completed, async () => {
        const db = new Database(path, { readonly: true })
        try {
          const rows = db.prepare('SELECT request_id, cost_micros FROM usage_events').all() as Array<{ request_id: string; cost_micros: number }>
          return new Map(rows.map((r) => [r.request_id, r.cost_micros]))
        } finally {
          db.close()
        }
      })
      await survivor.kill('SIGTERM')
    }
  })
})

describeWithBoth('SIGKILL during a burst, Redis + PostgreSQL', (ctx) => {
  it(`loses no completed call, leaves nothing reserved, and the stores agree (${ROUNDS} kill points)`, { timeout: 240_000 }, async () => {
    const mock = await aMock()
    await migratePostgres(ctx.postgres.url)
    const team = 'team_crash_pg'
    const config = writeConfig(
      dir,
      'pg.yaml',
      scaleConfig({
        postgresUrl: ctx.postgres.url,
        redisUrl: ctx.redis.url,
        mockBaseUrl: `${mock.url}/v1`,
        consumers: [{ name: 'svc', apiKey: KEY, teamId: team }],
        ...TTL,
      }),
    )
    const env = gatewayEnv(ADMIN, MOCK_KEY, `${ctx.redis.prefix}crash:`)
    for (let round = 0; round < ROUNDS; round++) {
      const doomed = await spawnGateway({ config, env })
      const admin = adminAt(doomed.baseUrl, ADMIN)
      expect((await admin('POST', '/v1/wallets/allocate', { team_id: team, amount: 5, currency: 'USD' })).status).toBe(201)
      const completed = await burstUntilKilled(doomed, killPoint(round))
      const survivor = await spawnGateway({ config, env })
      const events = async () => {
        const rows = await sql<{ request_id: string; cost_micros: string }>(ctx.postgres.url, 'SELECT request_id, cost_micros FROM usage_events')
        return new Map(rows.map((r) => [r.request_id, Number(r.cost_micros)]))
      }
      // The journal drains to PostgreSQL off the request path: wait for the completed calls to land.
      await until(
        'the completed calls’ events in PostgreSQL',
        async () => {
          const stored = await events()
          return completed.every((c) => stored.has(c.requestId)) ? true : undefined
        },
        20_000,
        100,
      )
      const w = await expectDurable(survivor, team, completed, events)
      await until(
        'PostgreSQL to agree with Redis on the wallet',
        async () => {
          const [row] = await sql<{ spent: number; reserved: number }>(
            ctx.postgres.url,
            'SELECT spent_micros::float8 AS spent, reserved_micros::float8 AS reserved FROM wallets WHERE id = $1',
            [w.id],
          )
          return row && row.spent === w.spent_micros && row.reserved === 0 ? true : undefined
        },
        20_000,
        100,
      )
      await survivor.kill('SIGTERM')
    }
  })
})
