/**
 * What an operator scrapes: /healthz, /readyz and the Prometheus metrics the issue names — requests
 * by endpoint, status and decision, a latency histogram, settled cost, upstream errors. Method: an
 * in-process gateway and a mock upstream told to fail once.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { createLogger } from './logger.js'
import { startMockUpstream, type MockUpstream } from '../providers/index.js'

const KEY = 'tg_key_metrics'
let dir: string
let mock: MockUpstream
let app: App

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-metrics-'))
  mock = await startMockUpstream()
  const yaml = `
storage: {sqlite: ${join(dir, 'db.sqlite')}}
providers: {targets: [{id: mock, provider: mock, base_url: "${mock.url}/v1"}]}
consumer_groups: [{name: app, api_key: ${KEY}, team_id: ops}]
`
  app = await buildApp(parseConfig(yaml, 'metrics.yaml'), { env: {}, logger: createLogger({ level: 'silent' }) })
})

afterAll(async () => {
  await app.close()
  await mock.close()
  rmSync(dir, { recursive: true, force: true })
})

const chat = () =>
  app.fastify.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    payload: { model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'measure me' }] },
  })

describe('health and metrics', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await app.fastify.inject('/healthz')).json()).toEqual({ status: 'ok' })
    expect((await app.fastify.inject('/readyz')).json()).toMatchObject({ status: 'ready' })
  })

  it('counts requests, latency, cost and upstream errors', async () => {
    const ok = await chat()
    expect(ok.statusCode).toBe(200)
    mock.setFailure({ status: 503, body: { error: { message: 'overloaded', type: 'server_error' } }, times: 1 })
    expect((await chat()).statusCode).toBe(503)

    const text = (await app.fastify.inject('/metrics')).body
    const costMicros = Math.round(Number(ok.headers['x-tollgate-cost-usd']) * 1e6)
    expect(text).toMatch(/tollgate_requests_total\{endpoint="chat_completions",status="200",decision="allow"\} 1/)
    expect(text).toMatch(/tollgate_requests_total\{endpoint="chat_completions",status="503",decision="allow"\} 1/)
    expect(text).toMatch(/tollgate_request_duration_seconds_count\{endpoint="chat_completions",stream="false"\} 2/)
    expect(text).toContain(`tollgate_cost_micros_total{provider="mock",model="gpt-4o-mini"} ${costMicros}`)
    expect(text).toMatch(/tollgate_upstream_errors_total\{provider="mock",status="503"\} 1/)
    expect(text).toMatch(/tollgate_reservations_pending 0/)
  })

  it('also reports the process: CPU, memory, heap, garbage collection and event-loop lag', async () => {
    await app.fastify.inject('/metrics')
    // Garbage made after the collectors started, so a collection is counted by the next scrape.
    for (let round = 0; round < 30; round++) Array.from({ length: 10_000 }, (_, i) => ({ i }))
    await new Promise((resolve) => setTimeout(resolve, 50))
    const text = (await app.fastify.inject('/metrics')).body
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m)
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m)
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d+/m)
    expect(text).toMatch(/^nodejs_gc_duration_seconds_count\{kind="minor"\} [1-9]/m)
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m)
    // The gateway's own metrics are still there, each declared once.
    expect(text.match(/^# TYPE tollgate_requests_total counter$/gm)).toHaveLength(1)
    expect(text.match(/^# TYPE process_cpu_user_seconds_total counter$/gm)).toHaveLength(1)
  })
})

describe('a metrics token (server.metrics_token_ref)', () => {
  const TOKEN = 'scrape-0123456789abcdef'
  let guarded: App
  let guardedDir: string

  beforeAll(async () => {
    guardedDir = mkdtempSync(join(tmpdir(), 'tollgate-metrics-token-'))
    const yaml = `
server: {metrics_token_ref: {env: TG_METRICS_TOKEN}}
storage: {sqlite: ${join(guardedDir, 'db.sqlite')}}
`
    const env = { TG_METRICS_TOKEN: TOKEN }
    guarded = await buildApp(parseConfig(yaml, 'metrics-token.yaml', { env }), { env, logger: createLogger({ level: 'silent' }) })
  })

  afterAll(async () => {
    await guarded.close()
    rmSync(guardedDir, { recursive: true, force: true })
  })

  const scrape = (authorization?: string) => guarded.fastify.inject({ url: '/metrics', headers: authorization === undefined ? {} : { authorization } })

  it('is required to scrape: none, another or a prefix of it is refused with 401, and the answer never shows it', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, TOKEN]) {
      const refused = await scrape(authorization)
      expect(refused.statusCode).toBe(401)
      expect(refused.json()).toMatchObject({ error: { code: 'unauthorized', message: expect.stringContaining('metrics token') } })
      expect(refused.body).not.toContain(TOKEN)
      expect(refused.body).not.toContain('tollgate_requests_total')
    }
  })

  it('lets a scrape with it read the metrics, and leaves the health checks open', async () => {
    const scraped = await scrape(`Bearer ${TOKEN}`)
    expect(scraped.statusCode).toBe(200)
    expect(scraped.body).toMatch(/^# TYPE tollgate_requests_total counter$/m)
    // The scheme in any case, as the admin API reads its tokens.
    expect((await scrape(`bearer ${TOKEN}`)).statusCode).toBe(200)
    expect((await guarded.fastify.inject('/healthz')).statusCode).toBe(200)
    expect((await guarded.fastify.inject('/readyz')).statusCode).toBe(200)
  })
})
