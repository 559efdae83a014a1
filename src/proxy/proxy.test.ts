/**
 * The proxy's HTTP edge: what a client sees for bad bodies, bad models
 * and both key headers, Idempotency-Key replays, and the seed configs serving as written.
 *
 * How: `buildApp()` on SQLite in a temp dir + `app.fastify.inject()`, with every target pointed at
 * a mock upstream that records what reached it (test/support/gateway.ts).
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parseUsd } from '../money/index.js'
import { aConfig, buildTestApp, CONSUMER_KEY, type ConfigSpec, type TestApp, type TestGatewayOptions } from '../../test/support/gateway.js'

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }
const message = { model: 'claude-haiku-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'hello' }] }

async function anApp(spec: ConfigSpec = {}, options: TestGatewayOptions = {}): Promise<TestApp> {
  const t = await buildTestApp({ yaml: aConfig(spec), ...options })
  onTestFinished(() => t.close())
  return t
}

async function post(t: TestApp, url: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${CONSUMER_KEY}` }) {
  const response = await t.app.fastify.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: response.statusCode, headers: response.headers, text: response.body, json: () => response.json() }
}

describe('bad requests are refused in the envelope of the API called, before anything goes upstream', () => {
  it('answers invalid JSON on /v1/chat/completions with 400 invalid_json in the OpenAI envelope', async () => {
    const t = await anApp()

    const reply = await post(t, '/v1/chat/completions', '{"model": "gpt-4o-mini", ')

    expect(reply.status).toBe(400)
    expect(reply.json()).toMatchObject({ error: { code: 'invalid_json', type: 'invalid_request_error', message: expect.any(String) } })
    expect(t.mock.requests).toEqual([])
  })

  it('answers invalid JSON on /v1/messages with 400 invalid_json in the Anthropic envelope', async () => {
    const t = await anApp()

    const reply = await post(t, '/v1/messages', '{not json', { 'x-api-key': CONSUMER_KEY })

    expect(reply.status).toBe(400)
    expect(reply.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', code: 'invalid_json' } })
    expect(t.mock.requests).toEqual([])
  })

  it('accepts a body of exactly server.body_limit_bytes and refuses one byte more with 413', async () => {
    const limit = 2048
    const t = await anApp({ bodyLimitBytes: limit })
    const sized = (bytes: number) => {
      const skeleton = JSON.stringify({ ...chat, messages: [{ role: 'user', content: '' }] })
      return JSON.stringify({ ...chat, messages: [{ role: 'user', content: 'x'.repeat(bytes - skeleton.length) }] })
    }

    const atLimit = await post(t, '/v1/chat/completions', sized(limit))
    const overLimit = await post(t, '/v1/messages', sized(limit + 1), { 'x-api-key': CONSUMER_KEY })

    expect(atLimit.status).toBe(200)
    expect(overLimit.status).toBe(413)
    expect(overLimit.json()).toMatchObject({ type: 'error', error: { code: 'body_too_large' } })
    expect(t.mock.requests).toHaveLength(1)
  })

  it('refuses a model it cannot price with 400 model_not_priced, and sends nothing upstream', async () => {
    const t = await anApp()

    const reply = await post(t, '/v1/chat/completions', { ...chat, model: 'no-such-model-9000' })

    expect(reply.status).toBe(400)
    expect(reply.json()).toMatchObject({ error: { code: 'model_not_priced', message: expect.stringContaining('no-such-model-9000') } })
    expect(t.mock.requests).toEqual([])
    expect(await t.events()).toEqual([])
  })

  it.each([
    ['/v1/chat/completions', { messages: chat.messages }],
    ['/v1/chat/completions', { ...chat, model: '' }],
    ['/v1/embeddings', { input: 'hello' }],
    ['/v1/messages', { max_tokens: 10, messages: message.messages }],
  ])('refuses %s without a model (%j) with 400 invalid_request', async (url, body) => {
    const t = await anApp()

    const reply = await post(t, url, body, { 'x-api-key': CONSUMER_KEY })

    expect(reply.status).toBe(400)
    const error = (reply.json() as { error: { code: string; message: string } }).error
    expect(error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('model') })
    expect(t.mock.requests).toEqual([])
  })
})

describe('a body that names a key twice', () => {
  it('goes upstream with each key once, as the gateway read and priced it', async () => {
    const t = await anApp({ walletEnforcement: true })
    await allocate(t, 'team_test', 1)
    // JSON.parse keeps the last of a repeated key; a provider whose parser kept the first would
    // serve gpt-4o-mini uncapped while the gateway reserved for gpt-4o capped at 5 tokens.
    const raw = '{"model":"gpt-4o-mini","max_tokens":100000,"messages":[{"role":"user","content":"hello"}],"model":"gpt-4o","max_tokens":5}'

    const reply = await post(t, '/v1/chat/completions', raw)

    expect(reply.status).toBe(200)
    const sent = t.mock.requests.at(-1)!.rawBody
    expect(sent.match(/"model"/g)).toHaveLength(1)
    expect(sent.match(/"max_tokens"/g)).toHaveLength(1)
    expect(JSON.parse(sent)).toMatchObject({ model: 'gpt-4o', max_tokens: 5 })
    const [event] = await t.events()
    expect(event).toMatchObject({ model_requested: 'gpt-4o' })
  })
})

describe('consumer keys', () => {
  it.each([
    ['Authorization: Bearer', { authorization: `Bearer ${CONSUMER_KEY}` }],
    ['x-api-key', { 'x-api-key': CONSUMER_KEY }],
  ])('accepts the key as %s', async (_name, headers) => {
    const t = await anApp()

    const reply = await post(t, '/v1/chat/completions', chat, headers)

    expect(reply.status).toBe(200)
    expect(await t.events()).toMatchObject([{ status: 'ok', key_name: 'svc' }])
  })

  it.each([
    ['no key', {}],
    ['a wrong key', { authorization: 'Bearer tg_wrong' }],
    ['a key that only starts like the real one', { 'x-api-key': CONSUMER_KEY.slice(0, -1) }],
  ])('refuses %s with 401 invalid_api_key', async (_name, headers) => {
    const t = await anApp()

    const reply = await post(t, '/v1/chat/completions', chat, headers)

    expect(reply.status).toBe(401)
    expect(reply.json()).toMatchObject({ error: { code: 'invalid_api_key' } })
    expect(t.mock.requests).toEqual([])
  })
})

describe('Idempotency-Key', () => {
  it('answers a retry with the first response, reaching the upstream and the usage record once', async () => {
    const t = await anApp()
    const headers = { authorization: `Bearer ${CONSUMER_KEY}`, 'idempotency-key': 'order-42' }

    const first = await post(t, '/v1/chat/completions', chat, headers)
    const retry = await post(t, '/v1/chat/completions', chat, headers)

    expect(first.status).toBe(200)
    expect(retry.status).toBe(200)
    expect(retry.text).toBe(first.text)
    expect(first.headers['x-tollgate-idempotent-replay']).toBeUndefined()
    expect(retry.headers['x-tollgate-idempotent-replay']).toBe('true')
    expect(t.mock.requests).toHaveLength(1)
    expect(await t.events()).toHaveLength(1)
  })

  it('replays a whole stream with its cost, which first arrived as a trailer, as a header', async () => {
    const t = await anApp()
    const headers = { authorization: `Bearer ${CONSUMER_KEY}`, 'idempotency-key': 'order-47' }
    const streamed = { ...chat, stream: true }

    const first = await post(t, '/v1/chat/completions', streamed, headers)
    const retry = await post(t, '/v1/chat/completions', streamed, headers)

    expect(retry.text).toBe(first.text)
    expect(retry.headers['x-tollgate-idempotent-replay']).toBe('true')
    const [event] = await t.events()
    expect(retry.headers['x-tollgate-cost-usd']).toBe((event!.cost_micros / 1e6).toFixed(6))
    expect(t.mock.requests).toHaveLength(1)
  })

  it('refuses the same key with a different body with 422, sending nothing upstream', async () => {
    const t = await anApp()
    const headers = { authorization: `Bearer ${CONSUMER_KEY}`, 'idempotency-key': 'order-43' }

    await post(t, '/v1/chat/completions', chat, headers)
    const reused = await post(t, '/v1/chat/completions', { ...chat, messages: [{ role: 'user', content: 'something else' }] }, headers)

    expect(reused.status).toBe(422)
    expect(reused.json()).toMatchObject({ error: { code: 'idempotency_key_reused' } })
    expect(t.mock.requests).toHaveLength(1)
  })

  it('does not store an upstream error that charged nothing: a retry after Retry-After reaches the upstream', async () => {
    const t = await anApp()
    const headers = { authorization: `Bearer ${CONSUMER_KEY}`, 'idempotency-key': 'order-45' }
    t.mock.setFailure({ status: 429, body: { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } }, times: 1 })

    const limited = await post(t, '/v1/chat/completions', chat, headers)
    const retried = await post(t, '/v1/chat/completions', chat, headers)

    expect(limited.status).toBe(429)
    expect(retried.status).toBe(200)
    expect(retried.headers['x-tollgate-idempotent-replay']).toBeUndefined()
    expect(t.mock.requests).toHaveLength(2)
  })

  it('does not replay a stream the upstream cut as if it were whole: the retry is a new call', async () => {
    const t = await anApp()
    const headers = { authorization: `Bearer ${CONSUMER_KEY}`, 'idempotency-key': 'order-46' }
    const cutStream = { ...chat, stream: true, messages: [{ role: 'user', content: 'long __tollgate_cut_stream__ answer' }] }

    await post(t, '/v1/chat/completions', cutStream, headers).catch(() => undefined)
    const retry = await post(t, '/v1/chat/completions', cutStream, headers).catch(() => undefined)

    expect(retry?.headers['x-tollgate-idempotent-replay']).toBeUndefined()
    expect(t.mock.requests).toHaveLength(2)
    expect((await t.events()).map((e) => e.status)).toEqual(['cut', 'cut'])
  })

  it('does not store a refusal: after a wallet top-up the same key goes through', async () => {
    const t = await anApp({ walletEnforcement: true })
    const headers = { authorization: `Bearer ${CONSUMER_KEY}`, 'idempotency-key': 'order-44' }

    const refused = await post(t, '/v1/chat/completions', chat, headers)
    await allocate(t, 'team_test', 1)
    const retried = await post(t, '/v1/chat/completions', chat, headers)

    expect(refused.status).toBe(429)
    expect(retried.status).toBe(200)
    expect(t.mock.requests).toHaveLength(1)
  })
})

describe('a success that reports no usage', () => {
  it('is charged its worst case, never zero, and says the usage was estimated', async () => {
    const t = await anApp({ walletEnforcement: true })
    await allocate(t, 'team_test', 1)
    const body = {
      id: 'chatcmpl-x',
      object: 'chat.completion',
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
    }
    t.mock.setFailure({ status: 200, body, times: 1 })

    const reply = await post(t, '/v1/chat/completions', { ...chat, max_tokens: 100 })

    expect(reply.status).toBe(200)
    const reserved = reply.headers['x-tollgate-cost-reserved-usd']
    expect(Number(reserved)).toBeGreaterThan(0)
    const charged = microsOf(reply.headers['x-tollgate-cost-usd'])
    // The estimate is the reservation's worst case, less the rounding slack the reservation adds.
    expect(charged).toBeLessThanOrEqual(microsOf(reserved))
    expect(charged).toBeGreaterThan(microsOf(reserved) - 10)
    expect(reply.headers['x-tollgate-usage-source']).toBe('estimated')
    const [event] = await t.events()
    expect(event).toMatchObject({ cost_micros: charged, usage_source: 'estimated', usage_note: 'no_usage_reported' })
  })
})

describe('the seed configs load as written and serve a request', () => {
  it.each([
    ['layered-caps.yaml', 'kt_cg_engineering_abc123', 'team_engineering'],
    ['token-budget.yaml', 'kt_cg_marketing_prod', 'team_marketing'],
  ])('%s', async (file, key, team) => {
    const yaml = readFileSync(new URL(`../config/fixtures/${file}`, import.meta.url), 'utf8')
    const t = await buildTestApp({ yaml })
    onTestFinished(() => t.close())

    const unfunded = await post(t, '/v1/chat/completions', chat, { authorization: `Bearer ${key}` })
    await allocate(t, team, 10)
    const funded = await post(t, '/v1/chat/completions', chat, { authorization: `Bearer ${key}` })

    // wallet_enforcement: true in both seeds — no wallet, no call; a funded wallet pays.
    expect(unfunded.status).toBe(429)
    expect(unfunded.json()).toMatchObject({ error: { code: 'insufficient_quota', ticket_id: expect.any(String) } })
    expect(funded.status).toBe(200)
    expect(funded.headers['x-tollgate-wallet']).toBe(`team:${team}`)
    expect(t.mock.requests).toHaveLength(1)
  })
})

async function allocate(t: TestApp, teamId: string, amount: number): Promise<void> {
  const response = await t.app.fastify.inject({
    method: 'POST',
    url: '/v1/wallets/allocate',
    headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ team_id: teamId, amount, currency: 'USD' }),
  })
  expect(response.statusCode).toBeLessThan(300)
}

function microsOf(header: unknown): number {
  const amount = parseUsd(String(header))
  if (amount === undefined) throw new Error(`not a USD amount: ${String(header)}`)
  return amount
}
