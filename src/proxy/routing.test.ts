/**
 * `models:` routes a name consumers send to a target, renames it upstream and prices it from the
 * config. Method: two mock upstreams behind two targets; a call for the routed name must reach
 * only the second, under its upstream name, and cost exactly what the override says.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { createLogger } from '../observability/logger.js'
import { startMockUpstream, type MockUpstream } from '../providers/index.js'

const KEY = 'tg_key_routing'
let dir: string
let primary: MockUpstream
let house: MockUpstream
let app: App

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-routing-'))
  primary = await startMockUpstream()
  house = await startMockUpstream()
  const yaml = `
storage: {sqlite: ${join(dir, 'db.sqlite')}}
providers:
  targets:
    - {id: primary, provider: mock, base_url: "${primary.url}/v1"}
    - {id: house, provider: openai-compatible, base_url: "${house.url}/v1", secret_key_ref: {env: HOUSE_KEY}}
consumer_groups: [{name: app, api_key: ${KEY}, team_id: research}]
models:
  - name: house-model
    target: house
    upstream_model: llama-3.3-70b-instruct
    pricing: {input_mtok: 1.5, output_mtok: 4}
`
  app = await buildApp(parseConfig(yaml, 'routing.yaml', { env: { HOUSE_KEY: 'sk-house' } }), { env: {}, logger: createLogger({ level: 'silent' }) })
})

afterAll(async () => {
  await app.close()
  await Promise.all([primary.close(), house.close()])
  rmSync(dir, { recursive: true, force: true })
})

describe('model routes', () => {
  it('sends a routed model to its target under its upstream name and prices it from the config', async () => {
    const reply = await app.fastify.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      payload: { model: 'house-model', max_tokens: 30, messages: [{ role: 'user', content: 'route me' }] },
    })
    expect(reply.statusCode).toBe(200)
    expect(primary.requests).toHaveLength(0)
    expect(house.requests).toHaveLength(1)
    expect((house.requests[0]!.body as { model: string }).model).toBe('llama-3.3-70b-instruct')

    const { usage } = reply.json() as { usage: { prompt_tokens: number; completion_tokens: number } }
    // $1.50 and $4.00 per million tokens, each part rounded up to the micro-dollar.
    const expectedMicros = Math.ceil(usage.prompt_tokens * 1.5) + Math.ceil(usage.completion_tokens * 4)
    expect(reply.headers['x-tollgate-cost-usd']).toBe((expectedMicros / 1e6).toFixed(6))

    await app.usage.flush()
    const db = new Database(join(dir, 'db.sqlite'), { readonly: true })
    const event = db.prepare('SELECT model_requested, model_served, price_source, cost_micros, target_id FROM usage_events').get()
    db.close()
    expect(event).toEqual({
      model_requested: 'house-model',
      model_served: 'llama-3.3-70b-instruct',
      price_source: 'override:house-model',
      cost_micros: expectedMicros,
      target_id: 'house',
    })
  })

  it('sends an unrouted model to the first target that speaks the API, priced from the catalogue', async () => {
    const reply = await app.fastify.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      payload: { model: 'gpt-4o-mini', max_tokens: 30, messages: [{ role: 'user', content: 'default route' }] },
    })
    expect(reply.statusCode).toBe(200)
    expect(primary.requests.at(-1)?.body).toMatchObject({ model: 'gpt-4o-mini' })
  })
})
