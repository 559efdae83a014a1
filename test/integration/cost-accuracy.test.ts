/**
 * Cost accuracy, end to end: real catalogue model names × usage shapes, against a mock upstream
 * scripted to report chosen usage (or none, or to be cut, or to hang).
 *
 * - Usage reported in full must be billed to the micro-dollar. The expected figures come from the
 *   providers' published prices, written out below: not from the catalogue the gateway reads, so a
 *   catalogue or pricing bug cannot agree with itself.
 * - Unknown or partial usage must be billed at least what the mock would bill for what it did
 *   (input + everything generated, hidden reasoning included), and say so in `usage_source`.
 * - On both stores, over the whole mixed run: header/trailer costs = event costs = what the ledger
 *   spent = the `/v1/usage` total.
 */
import { request as httpRequest } from 'node:http'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import type { MockScript } from '../../src/providers/index.js'
import { planChatReply, planResponsesReply } from '../../src/providers/mock/mock-openai.js'
import { planMessagesReply } from '../../src/providers/mock/mock-anthropic.js'
import { TOKENS_MAX, parseUsd } from '../../src/money/index.js'
import { CONSUMER_KEY, TEAM, startTestGateway, type TestGateway } from '../support/gateway.js'
import { postgresSkipReason, postgresService, redisService, redisSkipReason, type PostgresService, type RedisService } from '../support/services.js'
import { until } from './hard-caps-support.js'

type Api = 'chat' | 'responses' | 'embeddings' | 'messages'

/** Published prices, USD per million tokens (OpenAI and Anthropic pricing pages). */
interface Published {
  readonly input: number
  readonly cachedRead?: number
  readonly write5m?: number
  readonly write1h?: number
  readonly output?: number
  readonly audioInput?: number
  readonly audioOutput?: number
}
const PUBLISHED: Record<string, Published> = {
  'gpt-4o-mini': { input: 0.15, cachedRead: 0.075, output: 0.6 },
  'gpt-4.1': { input: 2, cachedRead: 0.5, output: 8 },
  'gpt-5': { input: 1.25, cachedRead: 0.125, output: 10 },
  o3: { input: 2, cachedRead: 0.5, output: 8 },
  'text-embedding-3-small': { input: 0.02 },
  'claude-haiku-4-5': { input: 1, cachedRead: 0.1, write5m: 1.25, write1h: 2, output: 5 },
  'claude-sonnet-4-5': { input: 3, cachedRead: 0.3, write5m: 3.75, write1h: 6, output: 15 },
  /** Claude Sonnet 4.5 beyond 200k input tokens. */
  'claude-sonnet-4-5 >200k': { input: 6, cachedRead: 0.6, write5m: 7.5, write1h: 12, output: 22.5 },
  'gpt-4o-audio-preview': { input: 2.5, output: 10, audioInput: 40, audioOutput: 80 },
}

interface ScriptedUsage {
  readonly inputTokens: number
  readonly cacheReadTokens?: number
  readonly cacheWriteTokens?: number
  readonly cacheWrite1hTokens?: number
  readonly audioInputTokens?: number
  readonly outputTokens?: number
  readonly reasoningTokens?: number
  readonly audioOutputTokens?: number
}

/** The exact bill in µ$: every token once, at its published price. */
function publishedMicros(prices: Published, u: ScriptedUsage): number {
  const read = u.cacheReadTokens ?? 0
  const writes = u.cacheWriteTokens ?? 0
  const writes1h = u.cacheWrite1hTokens ?? 0
  const audioIn = u.audioInputTokens ?? 0
  const output = u.outputTokens ?? 0
  const audioOut = u.audioOutputTokens ?? 0
  // tokens × USD/Mtok = µ$; every shape below is chosen to make each part a whole number of µ$.
  const parts = [
    (u.inputTokens - read - writes - audioIn) * prices.input,
    read * (prices.cachedRead ?? prices.input),
    (writes - writes1h) * (prices.write5m ?? prices.input),
    writes1h * (prices.write1h ?? prices.input),
    audioIn * (prices.audioInput ?? prices.input),
    (output - audioOut) * (prices.output ?? 0),
    audioOut * (prices.audioOutput ?? prices.output ?? 0),
  ]
  const total = parts.reduce((a, b) => a + b, 0)
  expect(Math.abs(total - Math.round(total))).toBeLessThan(1e-6)
  return Math.round(total)
}

interface ExactCase {
  readonly name: string
  readonly api: Api
  readonly model: string
  readonly prices: string
  readonly usage: ScriptedUsage
  /** Bill at these prices instead (a catalogue gap, priced at the model's dearest known rate). */
  readonly billedAt?: Published
  readonly fallback?: boolean
}

const EXACT: readonly ExactCase[] = [
  { name: 'chat, plain', api: 'chat', model: 'gpt-4o-mini', prices: 'gpt-4o-mini', usage: { inputTokens: 10_000, outputTokens: 2_000 } },
  {
    name: 'chat, cached read',
    api: 'chat',
    model: 'gpt-4o-mini',
    prices: 'gpt-4o-mini',
    usage: { inputTokens: 10_000, cacheReadTokens: 8_000, outputTokens: 2_000 },
  },
  { name: 'chat, reasoning', api: 'chat', model: 'o3', prices: 'o3', usage: { inputTokens: 10_000, outputTokens: 5_000, reasoningTokens: 4_000 } },
  {
    name: 'chat, cached read and reasoning',
    api: 'chat',
    model: 'gpt-5',
    prices: 'gpt-5',
    usage: { inputTokens: 20_000, cacheReadTokens: 16_000, outputTokens: 3_000, reasoningTokens: 2_000 },
  },
  {
    name: 'responses, cached read',
    api: 'responses',
    model: 'gpt-4.1',
    prices: 'gpt-4.1',
    usage: { inputTokens: 10_000, cacheReadTokens: 4_000, outputTokens: 1_000 },
  },
  { name: 'responses, reasoning', api: 'responses', model: 'o3', prices: 'o3', usage: { inputTokens: 5_000, outputTokens: 3_000, reasoningTokens: 2_500 } },
  { name: 'embeddings', api: 'embeddings', model: 'text-embedding-3-small', prices: 'text-embedding-3-small', usage: { inputTokens: 50_000 } },
  { name: 'messages, plain', api: 'messages', model: 'claude-haiku-4-5', prices: 'claude-haiku-4-5', usage: { inputTokens: 10_000, outputTokens: 2_000 } },
  {
    name: 'messages, 5-minute cache writes',
    api: 'messages',
    model: 'claude-sonnet-4-5',
    prices: 'claude-sonnet-4-5',
    usage: { inputTokens: 30_000, cacheWriteTokens: 20_000, outputTokens: 1_000 },
  },
  {
    // 123,300 µ$ at the 1-hour rate; the 5-minute rate would make it 78,300.
    name: 'messages, 1-hour cache writes',
    api: 'messages',
    model: 'claude-sonnet-4-5',
    prices: 'claude-sonnet-4-5',
    usage: { inputTokens: 21_100, cacheWriteTokens: 20_000, cacheWrite1hTokens: 20_000, outputTokens: 0 },
  },
  {
    name: 'messages, reads and both writes',
    api: 'messages',
    model: 'claude-sonnet-4-5',
    prices: 'claude-sonnet-4-5',
    usage: { inputTokens: 50_000, cacheReadTokens: 20_000, cacheWriteTokens: 20_000, cacheWrite1hTokens: 5_000, outputTokens: 2_000 },
  },
  {
    name: 'messages, beyond 200k input tokens',
    api: 'messages',
    model: 'claude-sonnet-4-5',
    prices: 'claude-sonnet-4-5 >200k',
    usage: { inputTokens: 250_000, cacheReadTokens: 10_000, outputTokens: 2_000 },
  },
  {
    name: 'chat, audio through a `models:` price override',
    api: 'chat',
    model: 'audio-priced',
    prices: 'gpt-4o-audio-preview',
    usage: { inputTokens: 10_000, audioInputTokens: 8_000, outputTokens: 3_000, audioOutputTokens: 2_000 },
  },
  {
    // The catalogue has no audio price for it: audio is billed at the dearest text rate it has, flagged.
    name: 'chat, audio the catalogue has no price for',
    api: 'chat',
    // A dated snapshot: the catalogue knows it, the `audio-priced` override (on the bare name) does not.
    model: 'gpt-4o-audio-preview-2025-06-03',
    prices: 'gpt-4o-audio-preview',
    billedAt: { input: 2.5, output: 10 },
    fallback: true,
    usage: { inputTokens: 10_000, audioInputTokens: 8_000, outputTokens: 3_000, audioOutputTokens: 2_000 },
  },
]

const PROMPT = 'Summarise the quarterly spend for the growth team, by model.'
const OUTPUT_CAP = 8_000

function requestBody(api: Api, model: string, stream: boolean): Record<string, unknown> {
  const streaming = stream ? { stream: true } : {}
  switch (api) {
    case 'chat':
      return { model, messages: [{ role: 'user', content: PROMPT }], max_completion_tokens: OUTPUT_CAP, ...streaming }
    case 'responses':
      return { model, input: PROMPT, max_output_tokens: OUTPUT_CAP, ...streaming }
    case 'embeddings':
      return { model, input: PROMPT }
    case 'messages':
      return { model, max_tokens: OUTPUT_CAP, messages: [{ role: 'user', content: PROMPT }], ...streaming }
  }
}

const PATHS: Record<Api, string> = { chat: '/v1/chat/completions', responses: '/v1/responses', embeddings: '/v1/embeddings', messages: '/v1/messages' }

interface Reply {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly trailers: NodeJS.Dict<string>
  readonly text: string
  /** The words of model text the client received (stream deltas or the whole answer). */
  readonly words: number
  /** The cost the client was told: the trailer of a stream, else the header. */
  readonly costMicros: number | undefined
}

/** A POST with node:http (fetch hides trailers). `abortAfterWords`: hang up once that many words arrived. */
function send(gw: TestGateway, api: Api, body: Record<string, unknown>, abortAfterWords?: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${gw.url}${PATHS[api]}`,
      { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CONSUMER_KEY}` } },
      (res) => {
        let text = ''
        let words = 0
        res.setEncoding('utf8')
        const done = (): void => {
          const cost = res.trailers['x-tollgate-cost-usd'] ?? res.headers['x-tollgate-cost-usd']
          const costMicros = typeof cost === 'string' ? parseUsd(cost) : undefined
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            trailers: res.trailers,
            text,
            words: body['stream'] === true ? words : wordsOfBody(text),
            costMicros,
          })
        }
        res.on('data', (chunk: string) => {
          text += chunk
          if (body['stream'] !== true) return
          words = wordsOfStream(text)
          if (abortAfterWords !== undefined && words >= abortAfterWords) {
            req.destroy()
            done()
          }
        })
        res.on('end', done)
        res.on('error', () => undefined)
      },
    )
    req.on('error', (error) => (abortAfterWords === undefined ? reject(error) : undefined))
    req.end(JSON.stringify(body))
  })
}

/** Words of text deltas in an SSE stream of any of the three APIs. */
function wordsOfStream(sse: string): number {
  let text = ''
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue
    const data = JSON.parse(line.slice(6)) as any
    text += data.choices?.[0]?.delta?.content ?? (data.type === 'response.output_text.delta' ? data.delta : '') ?? ''
    if (data.type === 'content_block_delta') text += data.delta?.text ?? ''
  }
  return text.split(/\s+/).filter((w) => w.length > 0).length
}

function wordsOfBody(text: string): number {
  try {
    const body = JSON.parse(text) as any
    const answer: string =
      body.choices?.[0]?.message?.content ?? body.content?.[0]?.text ?? body.output?.find((o: any) => o.type === 'message')?.content?.[0]?.text ?? ''
    return answer.split(/\s+/).filter((w) => w.length > 0).length
  } catch {
    return 0
  }
}

/** What the mock bills for a request it answered with its derived usage: input and the given output. */
function mockInputTokens(api: Api, body: Record<string, unknown>): number {
  switch (api) {
    case 'chat':
      return planChatReply(body).inputTokens
    case 'responses':
      return planResponsesReply(body).inputTokens
    case 'messages':
      return planMessagesReply(body, JSON.stringify(body)).inputTokens
    case 'embeddings':
      return Math.ceil(PROMPT.length / 4)
  }
}

function micros(tokens: number, usdPerMtok: number): number {
  return tokens * usdPerMtok
}

interface StoredEvent {
  readonly request_id: string
  readonly cost_micros: number
  readonly usage_source: string
  readonly usage_note: string | null
  readonly price_source: string
  readonly cost_breakdown_json: string | null
  readonly input_tokens: number
  readonly output_tokens: number
  readonly cache_write_tokens: number
  readonly cache_write_1h_tokens: number
  readonly web_searches: number
  readonly file_searches: number
  readonly web_search_kind: string | null
}

interface Backend {
  readonly name: string
  readonly skip: string | undefined
  start(yaml: string): Promise<{ gw: TestGateway; events(): Promise<StoredEvent[]>; stop(): Promise<void> }>
}

function gatewayYaml(): string {
  return stringify({
    version: '1',
    providers: { targets: [{ id: 'mock', provider: 'mock', timeout_ms: 1_500 }] },
    consumer_groups: [{ name: 'svc', api_key: CONSUMER_KEY, team_id: TEAM }],
    cost_tracking: { enabled: true, wallet_enforcement: true, budget_alerts: [{ threshold_percent: 100, action: 'block' }] },
    models: [
      {
        name: 'audio-priced',
        target: 'mock',
        upstream_model: 'gpt-4o-audio-preview',
        pricing: { input_mtok: 2.5, output_mtok: 10, input_audio_mtok: 40, output_audio_mtok: 80 },
      },
    ],
  })
}

const sqlite: Backend = {
  name: 'SQLite',
  skip: undefined,
  async start(yaml) {
    const gw = await startTestGateway({ yaml })
    return { gw, events: () => gw.events() as unknown as Promise<StoredEvent[]>, stop: () => gw.close() }
  },
}

const postgresRedis: Backend = {
  name: 'Redis + PostgreSQL',
  skip: redisSkipReason() ?? postgresSkipReason(),
  async start(yaml) {
    const redis = (await redisService()) as RedisService
    const postgres = (await postgresService()) as PostgresService
    const gw = await startTestGateway({
      yaml,
      env: { TOLLGATE_REDIS_PREFIX: redis.prefix },
      configOverrides: { storage: { kind: 'postgres', postgresUrl: postgres.url, redisUrl: redis.url } },
    })
    const pool = new pg.Pool({ connectionString: postgres.url, max: 1 })
    return {
      gw,
      async events() {
        await gw.app.stores.drain()
        const { rows } = await pool.query('SELECT * FROM usage_events ORDER BY at_ms')
        // BIGINT columns come back as strings.
        return rows.map((r) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, /(_micros|_tokens|_searches)$/.test(k) && v !== null ? Number(v) : v])),
        ) as unknown as StoredEvent[]
      },
      async stop() {
        await gw.close()
        await pool.end()
        await Promise.all([redis.stop(), postgres.stop()])
      },
    }
  },
}

describe.each([sqlite, postgresRedis])('cost accuracy on $name', (backend) => {
  let gw: TestGateway
  let events: () => Promise<StoredEvent[]>
  let stop: () => Promise<void>
  /** Every cost a client was told, by request id. */
  const told = new Map<string, number>()

  beforeAll(async () => {
    if (backend.skip !== undefined) return
    ;({ gw, events, stop } = await backend.start(gatewayYaml()))
    await gw.allocate(TEAM, 100)
  })
  afterAll(async () => {
    await stop?.()
  })

  async function call(
    api: Api,
    model: string,
    stream: boolean,
    script: Omit<MockScript, 'times'>,
    abortAfterWords?: number,
    extra: Record<string, unknown> = {},
  ) {
    gw.mock.setScript({ ...script, times: 1 })
    const body = { ...requestBody(api, model, stream), ...extra }
    const reply = await send(gw, api, body, abortAfterWords)
    const requestId = String(reply.headers['x-tollgate-request-id'])
    const event = await until(`the event of ${requestId}`, async () => (await events()).find((e) => e.request_id === requestId))
    if (reply.costMicros !== undefined) told.set(requestId, reply.costMicros)
    return { reply, event, body }
  }

  describe.skipIf(backend.skip !== undefined)(`reported usage is billed to the micro-dollar${backend.skip ? ` (skipped: ${backend.skip})` : ''}`, () => {
    const rows = EXACT.flatMap((c) =>
      c.api === 'embeddings'
        ? [{ ...c, stream: false }]
        : [
            { ...c, stream: false },
            { ...c, stream: true },
          ],
    )
    it.each(rows)('$name ($model, stream: $stream)', async (c) => {
      const expected = publishedMicros(c.billedAt ?? PUBLISHED[c.prices]!, c.usage)
      if (c.billedAt === undefined) expect(expected).toBe(publishedMicros(PUBLISHED[c.prices]!, c.usage))
      const { reply, event } = await call(c.api, c.model, c.stream, { usage: c.usage })

      expect(reply.status).toBe(200)
      expect(reply.costMicros).toBe(expected)
      expect(event).toMatchObject({ cost_micros: expected, usage_source: 'reported', usage_note: null })
      expect(reply.headers['x-tollgate-usage-source'] ?? reply.trailers['x-tollgate-usage-source']).toBe('reported')
      const breakdown = JSON.parse(event.cost_breakdown_json!) as { parts: Array<{ part: string; tokens: number; costMicros: number; fallback: boolean }> }
      expect(breakdown.parts.reduce((sum, p) => sum + p.costMicros, 0)).toBe(expected)
      expect(breakdown.parts.some((p) => p.fallback)).toBe(c.fallback === true)
      if (c.fallback === true) expect(event.price_source).toMatch(/fallback/)
      if (c.usage.cacheWrite1hTokens) expect(breakdown.parts.find((p) => p.part === 'cache_write_1h')?.tokens).toBe(c.usage.cacheWrite1hTokens)
    })
  })

  describe.skipIf(backend.skip !== undefined)('unknown or partial usage is never billed below what the mock bills', () => {
    const sonnet = PUBLISHED['claude-sonnet-4-5']!
    const mini = PUBLISHED['gpt-4o-mini']!

    it('a 200 that reports no usage: the worst case, estimated', async () => {
      const { reply, event, body } = await call('chat', 'gpt-4o-mini', false, { omitUsage: true })
      const bill = micros(mockInputTokens('chat', body), mini.input) + micros(reply.words, mini.output!)
      expect(reply.status).toBe(200)
      expect(event).toMatchObject({ usage_source: 'estimated', usage_note: 'no_usage_reported' })
      expect(reply.costMicros).toBe(event.cost_micros)
      expect(event.cost_micros).toBeGreaterThanOrEqual(bill)
      // The worst case includes the whole output cap.
      expect(event.cost_micros).toBeGreaterThanOrEqual(micros(OUTPUT_CAP, mini.output!))
    })

    it('a whole stream without a usage chunk: input and delivered output counted', async () => {
      const { reply, event, body } = await call('chat', 'gpt-4o-mini', true, { omitUsage: true })
      const bill = micros(mockInputTokens('chat', body), mini.input) + micros(reply.words, mini.output!)
      expect(reply.trailers['x-tollgate-stream-outcome']).toBe('complete')
      expect(event).toMatchObject({ usage_source: 'counted', usage_note: 'no_usage_reported' })
      expect(event.input_tokens).toBeGreaterThanOrEqual(mockInputTokens('chat', body))
      expect(event.output_tokens).toBeGreaterThanOrEqual(reply.words)
      expect(event.cost_micros).toBeGreaterThanOrEqual(Math.ceil(bill))
      expect(reply.costMicros).toBe(event.cost_micros)
    })

    it('an Anthropic stream without usage in message_start: the input counted, never 0', async () => {
      const { reply, event, body } = await call('messages', 'claude-sonnet-4-5', true, { omitUsage: true })
      const bill = micros(mockInputTokens('messages', body), sonnet.input) + micros(reply.words, sonnet.output!)
      expect(event.usage_source).toBe('counted')
      expect(event.input_tokens).toBeGreaterThanOrEqual(mockInputTokens('messages', body))
      expect(event.cost_micros).toBeGreaterThanOrEqual(Math.ceil(bill))
      expect(reply.costMicros).toBe(event.cost_micros)
    })

    it('a stream the upstream cuts on a model with hidden reasoning: input and the output cap', async () => {
      // The model thought 3,000 tokens before its first word; the cut comes before any usage.
      const reasoning = 3_000
      const { reply, event, body } = await call('chat', 'o3', true, { cut: 'stream', usage: { reasoningTokens: reasoning, outputTokens: reasoning + 40 } })
      const o3 = PUBLISHED['o3']!
      const bill = micros(mockInputTokens('chat', body), o3.input) + micros(reasoning + reply.words, o3.output!)
      expect(reply.trailers['x-tollgate-stream-outcome']).toBe('cut')
      expect(event).toMatchObject({ usage_source: 'estimated', usage_note: 'hidden_reasoning' })
      expect(event.cost_micros).toBeGreaterThanOrEqual(Math.ceil(bill))
      expect(event.output_tokens).toBeGreaterThanOrEqual(OUTPUT_CAP)
      expect(reply.costMicros).toBe(event.cost_micros)
    })

    it('a Responses stream the upstream cuts on gpt-5: the same upper bound', async () => {
      const { reply, event } = await call('responses', 'gpt-5', true, { cut: 'stream', usage: { reasoningTokens: 2_000, outputTokens: 2_040 } })
      expect(reply.trailers['x-tollgate-stream-outcome']).toBe('cut')
      expect(event).toMatchObject({ usage_source: 'estimated', usage_note: 'hidden_reasoning' })
      expect(event.cost_micros).toBeGreaterThanOrEqual(micros(OUTPUT_CAP, PUBLISHED['gpt-5']!.output!))
    })

    it('a stream the upstream cuts on a model without hidden output: input and delivered output counted', async () => {
      const { reply, event, body } = await call('chat', 'gpt-4o-mini', true, { cut: 'stream' })
      const bill = micros(mockInputTokens('chat', body), mini.input) + micros(reply.words, mini.output!)
      expect(reply.trailers['x-tollgate-stream-outcome']).toBe('cut')
      expect(reply.words).toBeGreaterThan(0)
      expect(event).toMatchObject({ usage_source: 'counted', usage_note: 'cut_before_usage' })
      expect(event.cost_micros).toBeGreaterThanOrEqual(Math.ceil(bill))
      expect(reply.costMicros).toBe(event.cost_micros)
    })

    it('a stream the client cuts: at least what reached it, and the upper bound when reasoning is hidden', async () => {
      const plain = await call('chat', 'gpt-4o-mini', true, { chunkDelayMs: 20 }, 3)
      expect(plain.event.usage_source).toBe('counted')
      expect(plain.event.cost_micros).toBeGreaterThanOrEqual(
        Math.ceil(micros(mockInputTokens('chat', plain.body), mini.input) + micros(plain.reply.words, mini.output!)),
      )
      const hidden = await call('chat', 'o3', true, { chunkDelayMs: 20, usage: { reasoningTokens: 3_000, outputTokens: 3_040 } }, 3)
      expect(hidden.event).toMatchObject({ usage_source: 'estimated', usage_note: 'hidden_reasoning' })
      expect(hidden.event.cost_micros).toBeGreaterThanOrEqual(micros(OUTPUT_CAP, PUBLISHED['o3']!.output!))
    })

    it('a body cut after the 200: 502 to the client, the worst case to the wallet', async () => {
      const { reply, event, body } = await call('messages', 'claude-sonnet-4-5', false, { cut: 'body' })
      const bill = micros(mockInputTokens('messages', body), sonnet.input) + micros(40, sonnet.output!)
      expect(reply.status).toBe(502)
      expect(event).toMatchObject({ usage_source: 'estimated', usage_note: 'cut_after_response_started' })
      expect(event.cost_micros).toBeGreaterThanOrEqual(Math.ceil(bill))
      expect(event.cost_micros).toBeGreaterThanOrEqual(micros(OUTPUT_CAP, sonnet.output!))
      expect(reply.costMicros).toBe(event.cost_micros)
    })

    it('a count past any real call (1e20 tokens): the answer delivered, billed at the token bound, the reservation settled', async () => {
      const { reply, event } = await call('embeddings', 'text-embedding-3-small', false, { usage: { inputTokens: 1e20 } })
      expect(reply.status).toBe(200)
      const bill = micros(TOKENS_MAX, PUBLISHED['text-embedding-3-small']!.input)
      expect(event).toMatchObject({ usage_source: 'reported', input_tokens: TOKENS_MAX, cost_micros: bill })
      expect(reply.costMicros).toBe(bill)
    })

    it('a call that timed out after it was sent: 504, the worst case', async () => {
      const { reply, event } = await call('chat', 'gpt-4o-mini', false, { hang: true })
      expect(reply.status).toBe(504)
      expect(JSON.parse(reply.text)).toMatchObject({ error: { code: 'upstream_timeout' } })
      expect(event).toMatchObject({ usage_source: 'estimated', usage_note: 'timed_out' })
      expect(event.cost_micros).toBeGreaterThanOrEqual(micros(OUTPUT_CAP, mini.output!))
      expect(reply.costMicros).toBe(event.cost_micros)
    })
  })

  describe.skipIf(backend.skip !== undefined)('service tiers: never below the tier that served the call', () => {
    // gpt-4.1 at standard prices: 6,000 × $2 + 4,000 × $0.50 + 1,000 × $8 per Mtok = 22,000 µ$.
    const usage: ScriptedUsage = { inputTokens: 10_000, cacheReadTokens: 4_000, outputTokens: 1_000 }
    const standard = publishedMicros(PUBLISHED['gpt-4.1']!, usage)
    const reservedMicros = (reply: Reply): number => parseUsd(String(reply.headers['x-tollgate-cost-reserved-usd']))!

    it.each([
      ['responses', false],
      ['responses', true],
      ['chat', false],
      ['chat', true],
    ] as const)('a %s answer served at priority is charged 2× the standard price, flagged (stream: %s)', async (api, stream) => {
      expect(standard).toBe(22_000)
      const plain = await call(api, 'gpt-4.1', stream, { usage })
      const { reply, event } = await call(api, 'gpt-4.1', stream, { usage, serviceTier: 'priority' }, undefined, { service_tier: 'priority' })
      expect(plain.event.cost_micros).toBe(standard)
      expect(event).toMatchObject({ cost_micros: 2 * standard, usage_source: 'reported' })
      expect(reply.costMicros).toBe(event.cost_micros)
      expect(event.price_source).toMatch(/;service_tier:priority@200%~upper_bound$/)
      const breakdown = JSON.parse(event.cost_breakdown_json!) as { serviceTier?: unknown; parts: Array<{ costMicros: number }> }
      expect(breakdown.serviceTier).toEqual({ name: 'priority', pricePercent: 200, upperBound: true })
      expect(breakdown.parts.reduce((sum, p) => sum + p.costMicros, 0)).toBe(event.cost_micros)
      // Asked for priority: the worst case is reserved at 2× too (the rounding slack aside).
      expect(reservedMicros(reply)).toBeGreaterThanOrEqual(2 * reservedMicros(plain.reply) - 12)
    })

    it('an answer served at priority although the request did not ask for it is still charged 2×', async () => {
      const { reply, event } = await call('responses', 'gpt-4.1', false, { usage, serviceTier: 'priority' })
      expect(event.cost_micros).toBe(2 * standard)
      expect(reply.costMicros).toBe(event.cost_micros)
    })

    it('priority asked for but served at default: the standard price, exact and unflagged', async () => {
      const { reply, event } = await call('chat', 'gpt-4.1', false, { usage }, undefined, { service_tier: 'priority' })
      expect(event.cost_micros).toBe(standard)
      expect(reply.costMicros).toBe(standard)
      expect(event.price_source).not.toMatch(/service_tier/)
      expect(JSON.parse(event.cost_breakdown_json!)).not.toHaveProperty('serviceTier')
    })

    it('flex: the standard price (above the bill), flagged as an upper bound', async () => {
      const { reply, event } = await call('responses', 'gpt-4.1', true, { usage, serviceTier: 'flex' }, undefined, { service_tier: 'flex' })
      expect(event.cost_micros).toBe(standard)
      expect(reply.costMicros).toBe(standard)
      expect(event.price_source).toMatch(/;service_tier:flex@100%~upper_bound$/)
    })

    it('an estimate for a call that asked for priority is priced at 2× too', async () => {
      const plain = await call('chat', 'gpt-4.1', false, { omitUsage: true })
      const { reply, event } = await call('chat', 'gpt-4.1', false, { omitUsage: true }, undefined, { service_tier: 'priority' })
      expect(event).toMatchObject({ usage_source: 'estimated', usage_note: 'no_usage_reported' })
      expect(event.cost_micros).toBeGreaterThanOrEqual(2 * plain.event.cost_micros - 2)
      expect(reply.costMicros).toBe(event.cost_micros)
      expect(event.price_source).toMatch(/service_tier:priority/)
    })
  })

  describe.skipIf(backend.skip !== undefined)('server-side searches: tokens + each search at its fee', () => {
    const reservedMicros = (reply: Reply): number => parseUsd(String(reply.headers['x-tollgate-cost-reserved-usd']))!
    const webSearch = { type: 'web_search_20250305', name: 'web_search', max_uses: 30 }
    type Breakdown = { parts: Array<{ part: string; tokens: number; costMicros: number; fallback: boolean }> }
    const partOf = (event: StoredEvent, part: string) => (JSON.parse(event.cost_breakdown_json!) as Breakdown).parts.find((p) => p.part === part)

    it.each([false, true])('an Anthropic answer with 25 web searches: tokens + 25 × $0.01, exactly (stream: %s)', async (stream) => {
      const usage: ScriptedUsage = { inputTokens: 10_000, outputTokens: 2_000 }
      const tokens = publishedMicros(PUBLISHED['claude-haiku-4-5']!, usage)
      const { reply, event } = await call('messages', 'claude-haiku-4-5', stream, { usage, webSearchRequests: 25 }, undefined, { tools: [webSearch] })
      // Anthropic: $10 per 1,000 searches.
      expect(tokens).toBe(20_000)
      expect(event).toMatchObject({ cost_micros: tokens + 25 * 10_000, usage_source: 'reported' })
      expect(reply.costMicros).toBe(event.cost_micros)
      expect(partOf(event, 'web_search')).toEqual({ part: 'web_search', tokens: 25, unitMicrosPerMtok: 10_000_000_000, costMicros: 250_000, fallback: false })
      expect(event.price_source).not.toMatch(/fallback/)
      // Stored as counts, for replay to price again: the model's own fee.
      expect(event).toMatchObject({ web_searches: 25, file_searches: 0, web_search_kind: null })
      // The worst case holds the fees of max_uses searches on top of the tokens (input at the
      // 200k context window, at the dearest input-side price: $2 per Mtok for 1-hour writes).
      expect(reservedMicros(reply)).toBeGreaterThanOrEqual(200_000 * 2 + OUTPUT_CAP * 5 + 30 * 10_000)
    })

    it.each([false, true])('a Responses answer with 3 web_search_call items: tokens + 3 × $0.01 (stream: %s)', async (stream) => {
      const usage: ScriptedUsage = { inputTokens: 10_000, cacheReadTokens: 4_000, outputTokens: 1_000 }
      const { reply, event } = await call('responses', 'gpt-4.1', stream, { usage, webSearchRequests: 3 }, undefined, {
        tools: [{ type: 'web_search' }],
        max_tool_calls: 4,
      })
      expect(event.cost_micros).toBe(22_000 + 3 * 10_000)
      expect(reply.costMicros).toBe(event.cost_micros)
      expect(partOf(event, 'web_search')).toMatchObject({ tokens: 3, costMicros: 30_000, fallback: false })
      expect(event).toMatchObject({ web_searches: 3, web_search_kind: null })
    })

    it('web_search_preview searches: at $25 per 1,000, flagged as a price the catalogue lacks', async () => {
      const usage: ScriptedUsage = { inputTokens: 10_000, cacheReadTokens: 4_000, outputTokens: 1_000 }
      const { reply, event } = await call('responses', 'gpt-4.1', false, { usage, webSearchRequests: 2 }, undefined, {
        tools: [{ type: 'web_search_preview' }],
      })
      expect(event.cost_micros).toBe(22_000 + 2 * 25_000)
      expect(reply.costMicros).toBe(event.cost_micros)
      expect(event.price_source).toMatch(/;fallback:web_search$/)
      expect(event).toMatchObject({ web_searches: 2, file_searches: 0, web_search_kind: 'web_search_preview' })
    })

    it.each([false, true])('a chat search with n: 3 is charged, and stored with, three searches at the size asked (stream: %s)', async (stream) => {
      const usage: ScriptedUsage = { inputTokens: 10_000, outputTokens: 1_000 }
      const { reply, event } = await call('chat', 'gpt-4o-search-preview', stream, { usage }, undefined, {
        n: 3,
        web_search_options: { search_context_size: 'low' },
        ...(stream && { stream_options: { include_usage: true } }),
      })
      expect(reply.status).toBe(200)
      // gpt-4o-search-preview: $2.50 / $10 per Mtok, three searches at $30 per 1,000.
      expect(event).toMatchObject({ usage_source: 'reported', web_searches: 3, file_searches: 0, web_search_kind: 'chat:low' })
      expect(partOf(event, 'web_search')).toMatchObject({ tokens: 3, costMicros: 90_000, fallback: false })
      expect(reply.costMicros).toBe(event.cost_micros)
    })

    it('a body cut after the 200: the estimate holds the fees of max_uses searches', async () => {
      const { reply, event } = await call('messages', 'claude-haiku-4-5', false, { cut: 'body', webSearchRequests: 5 }, undefined, { tools: [webSearch] })
      expect(reply.status).toBe(502)
      expect(event).toMatchObject({ usage_source: 'estimated', usage_note: 'cut_after_response_started' })
      expect(partOf(event, 'web_search')).toMatchObject({ tokens: 30, costMicros: 300_000 })
      expect(reply.costMicros).toBe(event.cost_micros)
      expect(event).toMatchObject({ web_searches: 30, web_search_kind: null })
    })
  })

  it.skipIf(backend.skip !== undefined)('over the whole run: told = events = ledger spent = /v1/usage total', async () => {
    const stored = await events()
    expect(stored.length).toBeGreaterThan(20)
    // Every request whose client heard a cost was told exactly what was stored.
    for (const [requestId, cost] of told) expect(stored.find((e) => e.request_id === requestId)?.cost_micros).toBe(cost)
    const eventsTotal = stored.reduce((sum, e) => sum + e.cost_micros, 0)
    const wallets = (await gw.admin('GET', '/v1/wallets')).body.data as Array<{ scope: string; spent_micros: number; reserved_micros: number }>
    const team = wallets.find((w) => w.scope === `team:${TEAM}`)!
    expect(team.reserved_micros).toBe(0)
    expect(team.spent_micros).toBe(eventsTotal)
    const report = await gw.admin('GET', `/v1/usage?from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`)
    expect(report.status).toBe(200)
    expect(report.body.totals.cost_micros).toBe(eventsTotal)
  })
})
