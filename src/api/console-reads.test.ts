/**
 * What the console reads beyond the plain resources: a cost ticket says what became of its
 * request (a held request shows as waiting, then completes once approved); a budget's posture
 * carries its forecast; usage reports filter by data mode and list the spike hours.
 *
 * How: an in-process gateway on SQLite with a fake clock; calls through the proxy via inject. A
 * model priced at $200,000 per million tokens makes an hour's spend cross the $1 spike floor
 * with a handful of calls.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { FakeClock } from '../lib/clock.js'
import { createLogger } from '../observability/logger.js'
import { startMockUpstream, type MockUpstream } from '../providers/index.js'

const ADMIN = 'tg_admin_console_reads_0123456789'
const FUNDED_KEY = 'tg_key_console_reads_funded_0123'
const HOLDING_KEY = 'tg_key_console_reads_holding_012'
const REFUSED_KEY = 'tg_key_console_reads_refused_012'
const clock = new FakeClock(Date.UTC(2026, 10, 15, 12, 10))
let dir: string
let mock: MockUpstream
let app: App

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-console-reads-'))
  mock = await startMockUpstream()
  const yaml = stringify({
    storage: { sqlite: join(dir, 'db.sqlite') },
    providers: { targets: [{ id: 'mock', provider: 'mock', base_url: `${mock.url}/v1` }] },
    models: [{ name: 'pricey', pricing: { input_mtok: 200_000, output_mtok: 200_000 } }],
    consumer_groups: [
      { name: 'funded', api_key: FUNDED_KEY, team_id: 'growth' },
      { name: 'holder', api_key: HOLDING_KEY, team_id: 'research', on_insufficient_funds: 'hold', hold_timeout_ms: 20_000 },
      { name: 'refused', api_key: REFUSED_KEY, team_id: 'ops' },
    ],
    cost_tracking: { enabled: true, wallet_enforcement: true },
  })
  app = await buildApp(parseConfig(yaml, 'console-reads.yaml'), { env: { TOLLGATE_ADMIN_TOKEN: ADMIN }, clock, logger: createLogger({ level: 'silent' }) })
  await app.fastify.ready()
  expect((await admin('POST', '/v1/wallets/allocate', { team_id: 'growth', amount: 100, currency: 'USD' })).statusCode).toBe(201)
})

afterAll(async () => {
  await app.close()
  await mock.close()
  rmSync(dir, { recursive: true, force: true })
})

function admin(method: 'GET' | 'POST', url: string, body?: unknown) {
  return app.fastify.inject({
    method,
    url,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  })
}

function chat(key: string, model = 'gpt-4o-mini', maxTokens = 20) {
  return app.fastify.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    payload: { model, max_tokens: maxTokens, messages: [{ role: 'user', content: 'console reads' }] },
  })
}

async function ticketsOf(consumer: string) {
  const list = await admin('GET', '/v1/cost-tickets')
  expect(list.statusCode).toBe(200)
  return (
    list.json().data as Array<{ id: string; consumer: string; status: string; request: { state: string; http_status: number | null; cost_usd: number | null } }>
  ).filter((t) => t.consumer === consumer)
}

describe('cost tickets: what became of the request', () => {
  it('shows a held request as waiting, and as completed with its status and cost once the ticket is approved', async () => {
    const held = chat(HOLDING_KEY)
    let tickets = await ticketsOf('holder')
    for (let i = 0; i < 100 && tickets.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      tickets = await ticketsOf('holder')
    }
    expect(tickets).toMatchObject([{ status: 'pending', request: { state: 'waiting', http_status: null, cost_usd: null } }])
    expect((await admin('POST', `/v1/cost-tickets/${tickets[0]!.id}/approve`, { amount: 1 })).statusCode).toBe(200)
    const response = await held
    expect(response.statusCode).toBe(200)
    const [after] = await ticketsOf('holder')
    expect(after).toMatchObject({ status: 'approved', request: { state: 'completed', http_status: 200 } })
    expect(after!.request.cost_usd).toBe(Number(response.headers['x-tollgate-cost-usd']))
  })

  it('shows a request that does not hold as refused with 429', async () => {
    expect((await chat(REFUSED_KEY)).statusCode).toBe(429)
    expect(await ticketsOf('refused')).toMatchObject([{ status: 'pending', request: { state: 'refused', http_status: 429, cost_usd: 0 } }])
  })

  it("shows the gateway's own record of the request: an event ingested under its id by another team's key changes nothing", async () => {
    const [ticket] = await ticketsOf('refused')
    const requestId = (ticket as unknown as { request_id: string }).request_id
    // The growth team's key claims the refused ops request went through, at a cost.
    const ingested = await app.fastify.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { authorization: `Bearer ${FUNDED_KEY}`, 'content-type': 'application/json' },
      payload: { externalRequestId: requestId, provider: 'openai', model: 'gpt-4o-mini', inputTokens: 10, outputTokens: 10, status: 'success' },
    })
    expect(ingested.statusCode).toBe(201)
    expect(await ticketsOf('refused')).toMatchObject([{ status: 'pending', request: { state: 'refused', http_status: 429, cost_usd: 0 } }])
  })
})

describe('budget posture forecast', () => {
  it('projects period-end spend from the recent rate and dates the exhaustion when the rate reaches the amount in time', async () => {
    const created = await admin('POST', '/v1/billing/budgets', {
      name: 'growth daily',
      scope: { kind: 'team', id: 'growth' },
      period: 'daily',
      amount_usd: 0.001,
    })
    expect(created.statusCode).toBe(201)
    expect(created.json().posture).toMatchObject({ spend_usd: 0, forecast_spend_usd: 0, forecast_exhaustion_at: null })
    for (let i = 0; i < 3; i++) expect((await chat(FUNDED_KEY, 'gpt-4o', 200)).statusCode).toBe(200)
    clock.advance(10 * 60_000)
    const posture = (await admin('GET', `/v1/billing/budgets/${created.json().id}`)).json().posture
    expect(posture.spend_usd).toBeGreaterThan(0)
    expect(posture.forecast_spend_usd).toBeGreaterThan(posture.spend_usd)
    expect(posture.forecast_exhaustion_at).not.toBeNull()
    expect(Date.parse(posture.forecast_exhaustion_at)).toBeLessThan(Date.parse(posture.period_end))
  })

  it('gives no forecast in the first hour of a period (one early call is not a trend)', async () => {
    const created = await admin('POST', '/v1/billing/budgets', {
      name: 'hourly-ish',
      scope: { kind: 'team', id: 'growth' },
      period: 'daily',
      timezone: 'Asia/Kolkata',
      amount_usd: 5,
    })
    // 12:20 UTC is 17:50 in Kolkata: well into the day, so a forecast exists…
    expect(created.json().posture.forecast_spend_usd).not.toBeNull()
    clock.set(Date.UTC(2026, 10, 16, 0, 10))
    // …and at 00:10 UTC (a fresh UTC day) the UTC budget has none.
    const utc = (await admin('GET', '/v1/billing/budgets')).json().data.find((b: { name: string }) => b.name === 'growth daily')
    expect(utc.posture).toMatchObject({ forecast_spend_usd: null, forecast_exhaustion_at: null })
  })
})

describe('usage report filters and spikes', () => {
  it('filters by data mode: proxied calls are real, none are demo; an unknown mode is a 400 naming data_mode', async () => {
    const all = (await admin('GET', '/v1/usage?from=2026-11-15T00:00:00Z&to=2026-11-17T00:00:00Z')).json()
    const real = (await admin('GET', '/v1/usage?data_mode=real&from=2026-11-15T00:00:00Z&to=2026-11-17T00:00:00Z')).json()
    const demo = (await admin('GET', '/v1/usage?data_mode=demo&from=2026-11-15T00:00:00Z&to=2026-11-17T00:00:00Z')).json()
    expect(all.totals.requests).toBeGreaterThan(0)
    expect(real.totals.requests).toBe(all.totals.requests)
    expect(demo.totals.requests).toBe(0)
    const top = (await admin('GET', '/v1/usage/top?by=team&data_mode=demo&from=2026-11-15T00:00:00Z&to=2026-11-17T00:00:00Z')).json()
    expect(top.data).toEqual([])
    const bad = await admin('GET', '/v1/usage?data_mode=fake')
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error.issues[0].path).toBe('data_mode')
  })

  it('lists an hour as a spike when its spend jumps past 3× the trailing mean and $1', async () => {
    clock.set(Date.UTC(2026, 10, 16, 3, 5))
    const quiet = (await admin('GET', '/v1/usage?bucket=hour&from=2026-11-16T00:00:00Z&to=2026-11-16T06:00:00Z')).json()
    expect(quiet.spikes).toEqual([])
    // 3 calls of a few dozen tokens at $0.20 a token: several dollars in the 03:00 hour.
    for (let i = 0; i < 3; i++) expect((await chat(FUNDED_KEY, 'pricey', 20)).statusCode).toBe(200)
    const report = (await admin('GET', '/v1/usage?bucket=hour&from=2026-11-16T00:00:00Z&to=2026-11-16T06:00:00Z')).json()
    expect(report.spikes).toHaveLength(1)
    expect(report.spikes[0]).toMatchObject({ bucket_start: '2026-11-16T03:00:00.000Z' })
    expect(report.spikes[0].cost_usd).toBeGreaterThanOrEqual(1)
  })
})
