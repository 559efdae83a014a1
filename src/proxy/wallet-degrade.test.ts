/**
 * cost_tracking.budget_alerts `degrade`: once the paying wallet has spent its threshold share of
 * the allocation, calls for a model with a `degrade_to` are served by the cheaper model (and
 * priced at its price). Method: an in-process gateway on SQLite and a mock upstream; spend past
 * 50% with gpt-4o, then check which model the upstream was asked for.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { createLogger } from '../observability/logger.js'
import { startMockUpstream, type MockUpstream } from '../providers/index.js'

const KEY = 'tg_key_wallet_degrade'
const ADMIN = 'tg_admin_wallet_degrade'
let dir: string
let mock: MockUpstream
let app: App

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-degrade-'))
  mock = await startMockUpstream()
  const yaml = `
storage: {sqlite: ${join(dir, 'db.sqlite')}}
providers:
  targets: [{id: mock, provider: mock, base_url: "${mock.url}/v1"}]
consumer_groups: [{name: app, api_key: ${KEY}, wallet_team_id: research}]
cost_tracking:
  wallet_enforcement: true
  budget_alerts: [{threshold_percent: 50, action: degrade}, {threshold_percent: 100, action: block}]
models: [{name: gpt-4o, degrade_to: gpt-4o-mini}]
`
  app = await buildApp(parseConfig(yaml, 'test.yaml'), { env: { TOLLGATE_ADMIN_TOKEN: ADMIN }, logger: createLogger({ level: 'silent' }) })
})

afterAll(async () => {
  await app.close()
  await mock.close()
  rmSync(dir, { recursive: true, force: true })
})

async function chat(model: string) {
  const response = await app.fastify.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    payload: { model, max_tokens: 40, messages: [{ role: 'user', content: 'summarise the quarter' }] },
  })
  return { status: response.statusCode, headers: response.headers, upstreamModel: (mock.requests.at(-1)?.body as { model?: string })?.model }
}

describe('wallet degrade threshold', () => {
  it('serves the cheaper model once the wallet is past the degrade threshold', async () => {
    await app.fastify.inject({
      method: 'POST',
      url: '/v1/wallets/allocate',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { team_id: 'research', amount: 0.004 },
    })
    const first = await chat('gpt-4o')
    expect(first.status).toBe(200)
    expect(first.upstreamModel).toBe('gpt-4o')
    expect(first.headers['x-tollgate-degraded']).toBeUndefined()
    const fullPrice = Number(first.headers['x-tollgate-cost-usd'])

    // Spend past 50% of $0.004 at gpt-4o prices.
    let last = first
    while (last.headers['x-tollgate-degraded'] === undefined) {
      last = await chat('gpt-4o')
      expect(last.status).toBe(200)
    }
    expect(last.upstreamModel).toBe('gpt-4o-mini')
    expect(last.headers['x-tollgate-degraded']).toBe('gpt-4o->gpt-4o-mini')
    expect(Number(last.headers['x-tollgate-cost-usd'])).toBeLessThan(fullPrice / 5)

    const wallets = (await app.fastify.inject({ url: '/v1/wallets', headers: { authorization: `Bearer ${ADMIN}` } })).json() as {
      data: Array<{ spent_micros: number; allocated_micros: number }>
    }
    expect(wallets.data[0]!.spent_micros).toBeGreaterThanOrEqual(wallets.data[0]!.allocated_micros / 2)
  })
})
