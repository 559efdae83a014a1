/**
 * Exactly-once thresholds through real gateways ("each threshold fires once per budget
 * per period, however many requests cross it at once and however many processes run"), and
 * webhook delivery with retries from the durable outbox.
 *
 * How: three `tollgate serve` processes (spawnGateway, built `dist/`) start at the same moment on
 * one store — one SQLite file, then one Redis + PostgreSQL — with the same declared budget (so they also race to create it) and two webhook
 * channels pointing at receivers in this test that verify the HMAC signature themselves:
 * `ops-webhook` accepts everything; `flaky-webhook` answers 503 to the first two attempts of each
 * notification id and 200 to the third. ~100 concurrent calls, spread over the three processes,
 * take the budget from 0 past 50/80/95 at once. Then: each receiver accepted exactly one delivery
 * per threshold (distinct ids, no id accepted twice, retries carried the same id), every
 * signature was valid, `GET /v1/notifications` on every process lists one notification per
 * threshold with those ids, and the period spend equals the sum of the call costs (no update lost
 * between processes). The retry back-off is shortened through `notifications.delivery` (200 ms
 * base, 1 s cap) so the flaky receiver's third attempt lands within a second or two.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { spawnGateway, type GatewayHandle } from '../support/processes.js'
import { startTestGateway } from '../support/gateway.js'
import { describeWithBoth } from '../support/services.js'
import { migratePostgres } from '../../src/store/postgres-redis.js'
import { buildApp } from '../../src/app.js'
import { parseConfig } from '../../src/config/index.js'

const PROCESSES = 3
const CALLS = 99
const SECRET = 'whsec_budgets_processes_5f5f5f'
const ADMIN_TOKEN = 'tg_admin_budgets_processes_0123456789'
const KEY = 'tg_budgets_processes_key_0123456789abcd'
const OUTSIDER_KEY = 'tg_budgets_processes_outsider_0123456789'
const TEAM = 'team_load'
const BUDGET_NAME = 'load monthly'
const PROMPT = [{ role: 'user', content: 'Write one line about budgets.' }]
const SIGNATURE_TOLERANCE_S = 300

interface Delivery {
  readonly id: string
  readonly type: string
  readonly thresholdPercent: number | undefined
  readonly budgetId: string | undefined
  readonly signatureValid: boolean
  readonly status: number
}

/** A webhook receiver that checks `x-tollgate-signature` itself: t=SECONDS,v1=HMAC-SHA256(secret, t.body). */
async function aReceiver(answer: (id: string, attemptOfId: number) => number) {
  const deliveries: Delivery[] = []
  const attempts = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      const signatureValid = isSigned(req.headers['x-tollgate-signature'], raw)
      let body: { id?: string; type?: string; data?: { threshold_percent?: number; budget_id?: string } } = {}
      try {
        body = JSON.parse(raw) as typeof body
      } catch {
        // recorded as an unsigned/invalid delivery below
      }
      const id = body.id ?? '(none)'
      const attempt = (attempts.get(id) ?? 0) + 1
      attempts.set(id, attempt)
      const status = signatureValid ? answer(id, attempt) : 401
      deliveries.push({
        id,
        type: body.type ?? '(none)',
        thresholdPercent: body.data?.threshold_percent,
        budgetId: body.data?.budget_id,
        signatureValid,
        status,
      })
      res.statusCode = status
      res.end(status < 300 ? 'ok' : 'not now')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/tollgate`,
    deliveries,
    accepted: () => deliveries.filter((d) => d.status >= 200 && d.status < 300),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

function isSigned(header: string | string[] | undefined, raw: string): boolean {
  if (typeof header !== 'string') return false
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]))
  const t = parts.get('t')
  const v1 = parts.get('v1')
  if (t === undefined || v1 === undefined || !/^\d+$/.test(t)) return false
  if (Math.abs(Date.now() / 1000 - Number(t)) > SIGNATURE_TOLERANCE_S) return false
  const expected = createHmac('sha256', SECRET).update(`${t}.${raw}`).digest()
  const given = Buffer.from(v1, 'hex')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** What one call costs, measured on an in-process gateway with the same mock and price book. */
async function unitCostMicros(): Promise<number> {
  const gw = await startTestGateway()
  try {
    const response = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.consumerKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', max_tokens: 40, messages: PROMPT }),
    })
    expect(response.status).toBe(200)
    return Math.round(Number(response.headers.get('x-tollgate-cost-usd')) * 1e6)
  } finally {
    await gw.close()
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

async function adminGet(gw: GatewayHandle, path: string): Promise<any> {
  const response = await fetch(`${gw.baseUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(response.status).toBe(200)
  return response.json()
}

const cleanups: (() => Promise<void> | void)[] = []
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** The burst and its checks, on the embedded store (`'sqlite'`) or on the given storage section. */
async function thresholdsFireOnce(storage: 'sqlite' | { postgres: string; redis: string }, extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  {
    const unit = await unitCostMicros()
    expect(unit).toBeGreaterThan(0)
    const ok = await aReceiver(() => 200)
    const flaky = await aReceiver((_id, attempt) => (attempt <= 2 ? 503 : 200))
    cleanups.push(ok.close, flaky.close)

    const dir = mkdtempSync(join(tmpdir(), 'tollgate-budgets-processes-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const configPath = join(dir, 'tollgate.yaml')
    // 80 calls make 100%: a burst of 99 crosses 50, 80 and 95 (and passes 100%; nothing blocks).
    const amountMicros = 80 * unit
    writeFileSync(
      configPath,
      stringify({
        version: '1',
        storage: storage === 'sqlite' ? { sqlite: join(dir, 'tollgate.sqlite') } : storage,
        providers: { targets: [{ id: 'mock', provider: 'mock' }] },
        consumer_groups: [
          { name: 'load', api_key: KEY, team_id: TEAM },
          { name: 'outsider', api_key: OUTSIDER_KEY, team_id: 'team_other' },
        ],
        cost_tracking: { enabled: true, wallet_enforcement: false },
        budgets: [
          {
            name: BUDGET_NAME,
            scope: { kind: 'team', id: TEAM },
            period: 'monthly',
            amount_usd: (amountMicros / 1e6).toFixed(6),
            alert_thresholds: [50, 80, 95],
          },
        ],
        notifications: {
          channels: [
            { id: 'ops-webhook', type: 'webhook', url: ok.url, secret_ref: { env: 'TOLLGATE_WEBHOOK_SECRET' } },
            { id: 'flaky-webhook', type: 'webhook', url: flaky.url, secret_ref: { env: 'TOLLGATE_WEBHOOK_SECRET' } },
          ],
          // Short back-off so the retries land within the test; the rule (capped exponential,
          // same id on every attempt) is the one production uses.
          delivery: { backoff_base_ms: 200, backoff_cap_ms: 1_000, poll_interval_ms: 100 },
        },
      }),
    )
    const env = { ...process.env, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, TOLLGATE_WEBHOOK_SECRET: SECRET, TOLLGATE_LOG_LEVEL: 'warn', ...extraEnv }
    // Started together: they also race to create the declared budget in the shared store.
    const gateways = await Promise.all(Array.from({ length: PROCESSES }, () => spawnGateway({ config: configPath, env })))
    cleanups.push(async () => {
      await Promise.all(gateways.map((g) => g.kill('SIGTERM')))
    })

    const budgets = (await adminGet(gateways[0]!, '/v1/billing/budgets')).data as { id: string; name: string }[]
    expect(budgets.map((b) => b.name)).toEqual([BUDGET_NAME])
    const budgetId = budgets[0]!.id

    const replies = await Promise.all(
      Array.from({ length: CALLS }, async (_, i) => {
        const gw = gateways[i % PROCESSES]!
        const response = await fetch(`${gw.baseUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o', max_tokens: 40, messages: PROMPT }),
        })
        await response.arrayBuffer()
        return { status: response.status, cost: Math.round(Number(response.headers.get('x-tollgate-cost-usd')) * 1e6) }
      }),
    )
    expect(replies.filter((r) => r.status !== 200)).toEqual([])
    expect(replies.every((r) => r.cost === unit)).toBe(true)

    // The period spend is every call's cost, counted by three processes into one counter.
    // Each call settles right after its response: poll briefly for the last ones.
    const deadline = Date.now() + 5_000
    let posture = (await adminGet(gateways[1]!, `/v1/billing/budgets/${budgetId}`)).posture
    while (Math.round(posture.spend_usd * 1e6) !== CALLS * unit && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      posture = (await adminGet(gateways[1]!, `/v1/billing/budgets/${budgetId}`)).posture
    }
    expect(Math.round(posture.spend_usd * 1e6)).toBe(CALLS * unit)

    const thresholdsOf = (ds: readonly Delivery[]) => ds.filter((d) => d.type === 'budget.threshold' && d.budgetId === budgetId)
    await until('one accepted delivery per threshold at ops-webhook', () => thresholdsOf(ok.accepted()).length >= 3, 10_000)
    await until('one accepted delivery per threshold at flaky-webhook', () => thresholdsOf(flaky.accepted()).length >= 3, 25_000)
    await sleep(2_500) // two more dispatcher rounds in every process: a duplicate would arrive now

    for (const receiver of [ok, flaky]) {
      expect(receiver.deliveries.every((d) => d.signatureValid)).toBe(true)
      const accepted = receiver.accepted()
      // No notification id is accepted twice, whatever its type.
      expect(new Set(accepted.map((d) => d.id)).size).toBe(accepted.length)
      const thresholds = thresholdsOf(accepted)
      expect(thresholds.map((d) => d.thresholdPercent).sort((a, b) => a! - b!)).toEqual([50, 80, 95])
    }
    const idsOk = thresholdsOf(ok.accepted())
      .map((d) => d.id)
      .sort()
    expect(
      thresholdsOf(flaky.accepted())
        .map((d) => d.id)
        .sort(),
    ).toEqual(idsOk)
    // The flaky receiver saw each id three times: two refusals, then the accepted retry.
    for (const id of idsOk) {
      expect(flaky.deliveries.filter((d) => d.id === id).map((d) => d.status)).toEqual([503, 503, 200])
      expect(ok.deliveries.filter((d) => d.id === id).map((d) => d.status)).toEqual([200])
    }

    // The inbox agrees on every process: one notification per threshold, the ids that were sent.
    for (const gw of gateways) {
      const inbox = (await adminGet(gw, '/v1/notifications?limit=200')).data as {
        id: string
        type: string
        data: { budget_id?: string; threshold_percent?: number }
      }[]
      const thresholds = inbox.filter((n) => n.type === 'budget.threshold' && n.data.budget_id === budgetId)
      expect(thresholds.map((n) => n.data.threshold_percent).sort((a, b) => a! - b!)).toEqual([50, 80, 95])
      expect(thresholds.map((n) => n.id).sort()).toEqual(idsOk)
    }
    for (const gw of gateways) expect(gw.exitStatus(), gw.output()).toBeUndefined()
  }
}

const TITLE = 'three gateways under ~100 concurrent calls send each threshold exactly once, signed, retried with the same id until accepted'

describe('thresholds across gateway processes, embedded store', () => {
  it(TITLE, () => thresholdsFireOnce('sqlite'), 120_000)
})

describeWithBoth('thresholds across gateway processes, Redis + PostgreSQL', (ctx) => {
  it(TITLE, async () => {
    await migratePostgres(ctx.postgres.url)
    await thresholdsFireOnce({ postgres: ctx.postgres.url, redis: ctx.redis.url }, { TOLLGATE_REDIS_PREFIX: `${ctx.redis.prefix}thresholds:` })
  }, 120_000)
})

describe('declared budgets and concurrent starts', () => {
  it('two gateways starting at the same moment on one store both come up with the one declared budget', async () => {
    // Both read "no such budget", both insert; the loser used to fail its start with
    // `conflict: a budget named … already exists`. In-process (two buildApp on one file) so the
    // interleaving is the same on every run.
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-budgets-start-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const env = { TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, OPENAI_API_KEY: 'sk-unused' }
    const config = parseConfig(
      stringify({
        version: '1',
        storage: { sqlite: join(dir, 'tollgate.sqlite') },
        providers: { targets: [{ id: 'openai', provider: 'openai', base_url: 'http://127.0.0.1:9/v1', secret_key_ref: { env: 'OPENAI_API_KEY' } }] },
        consumer_groups: [{ name: 'load', api_key: KEY, team_id: TEAM }],
        budgets: [
          { name: BUDGET_NAME, scope: { kind: 'team', id: TEAM }, period: 'monthly', amount_usd: 10 },
          { id: 'bud_declared_with_id', name: 'with id', scope: { kind: 'team', id: TEAM }, period: 'daily', amount_usd: 1 },
        ],
      }),
      '<concurrent start>',
      { env, requireSecrets: true },
    )
    const started = await Promise.allSettled([buildApp(config, { env }), buildApp(config, { env })])
    for (const s of started) if (s.status === 'fulfilled') cleanups.push(() => s.value.close())
    expect(started.map((s) => (s.status === 'rejected' ? String(s.reason) : 'started'))).toEqual(['started', 'started'])
    const apps = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
    for (const app of apps) {
      const budgets = await app.budgets.list('default')
      expect(budgets.map((b) => b.name).sort()).toEqual([BUDGET_NAME, 'with id'])
      expect(budgets.find((b) => b.name === 'with id')?.id).toBe('bud_declared_with_id')
    }
  })
})
