/**
 * The real `openai` SDK → a listening Tollgate → the mock upstream. Proves that an unmodified
 * client works through the gateway (chat, streams, responses, embeddings, models), that what it
 * spends is recorded with the right attribution and cost, and that keys and failures are handled
 * as docs/http-api.md and docs/errors.md say. Each test starts its own gateway (SQLite in a temp dir) and reads the
 * recorded usage back from the store or the admin API.
 */
import { request as httpRequest } from 'node:http'
import OpenAI from 'openai'
import { describe, expect, it, onTestFinished } from 'vitest'
import { aConfig, CONSUMER_KEY, PROVIDER_KEY, startTestGateway, TEAM, type ConfigSpec, type TestGateway } from '../support/gateway.js'

const MODEL = 'gpt-4o-mini'
const ask = (content: string) => [{ role: 'user' as const, content }]

async function gateway(spec: ConfigSpec = {}): Promise<{ gw: TestGateway; openai: OpenAI }> {
  const gw = await startTestGateway({ yaml: aConfig(spec) })
  onTestFinished(() => gw.close())
  return { gw, openai: new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.consumerKey, maxRetries: 0 }) }
}

const usd = (micros: number) => (micros / 1e6).toFixed(6)

describe('openai SDK through Tollgate', () => {
  it('answers a chat completion and records its cost, the same as the cost header says', async () => {
    const { gw, openai } = await gateway({ walletEnforcement: true })
    await gw.allocate(TEAM, 5)

    const { data, response } = await openai.chat.completions.create({ model: MODEL, messages: ask('hello there') }).withResponse()

    expect(data.choices[0]?.message.content).toMatch(/^Tollgate mock reply to: hello there/)
    const [event] = await gw.events()
    expect(event).toMatchObject({ request_id: response.headers.get('x-tollgate-request-id'), status: 'ok', output_tokens: data.usage?.completion_tokens })
    expect(event!.cost_micros).toBeGreaterThan(0)
    expect(response.headers.get('x-tollgate-cost-usd')).toBe(usd(event!.cost_micros))
    expect(response.headers.get('x-tollgate-wallet')).toBe(`team:${TEAM}`)
    expect(Number(response.headers.get('x-tollgate-cost-reserved-usd'))).toBeGreaterThanOrEqual(Number(response.headers.get('x-tollgate-cost-usd')))
    expect(response.headers.get('x-tollgate-wallet-remaining-usd')).toBe(usd(5_000_000 - event!.cost_micros))
  })

  it('streams chat without a usage chunk when the client did not ask for one, yet still records the usage', async () => {
    const { gw, openai } = await gateway()

    const chunks = []
    for await (const chunk of await openai.chat.completions.create({ model: MODEL, messages: ask('stream me'), stream: true })) chunks.push(chunk)

    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toMatch(/^Tollgate mock reply to: stream me/)
    expect(chunks.filter((c) => c.usage != null)).toEqual([])
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true)
    const [event] = await gw.events()
    expect(event).toMatchObject({ status: 'ok', output_tokens: 40 })
    expect(event!.cost_micros).toBeGreaterThan(0)
  })

  it('streams chat with the usage chunk when the client asked for stream_options.include_usage', async () => {
    const { gw, openai } = await gateway()

    const chunks = []
    const stream = await openai.chat.completions.create({ model: MODEL, messages: ask('count me'), stream: true, stream_options: { include_usage: true } })
    for await (const chunk of stream) chunks.push(chunk)

    const last = chunks.at(-1)
    expect(last?.choices).toEqual([])
    const [event] = await gw.events()
    expect(last?.usage?.completion_tokens).toBe(event!.output_tokens)
  })

  it('sends the stream cost as a trailer equal to the recorded cost', async () => {
    const { gw } = await gateway()

    const reply = await postRaw(`${gw.url}/v1/chat/completions`, { model: MODEL, messages: ask('trailer'), stream: true })

    expect(reply.status).toBe(200)
    expect(reply.text).toContain('data: [DONE]')
    const [event] = await gw.events()
    expect(reply.trailers['x-tollgate-cost-usd']).toBe(usd(event!.cost_micros))
  })

  it('serves responses, plain and streamed, and records both', async () => {
    const { gw, openai } = await gateway()

    const plain = await openai.responses.create({ model: MODEL, input: 'plain response' })
    const events = []
    for await (const e of await openai.responses.create({ model: MODEL, input: 'streamed response', stream: true })) events.push(e)

    expect(plain.output_text).toMatch(/^Tollgate mock reply to: plain response/)
    const streamedText = events.map((e) => (e.type === 'response.output_text.delta' ? e.delta : '')).join('')
    expect(streamedText).toMatch(/^Tollgate mock reply to: streamed response/)
    const done = events.at(-1)
    const streamedUsage = done?.type === 'response.completed' ? done.response.usage : undefined
    const recorded = await gw.events()
    expect(recorded.map((e) => [e.endpoint, e.status, e.output_tokens])).toEqual([
      ['responses', 'ok', plain.usage?.output_tokens],
      ['responses', 'ok', streamedUsage?.output_tokens],
    ])
    expect(recorded.every((e) => e.cost_micros > 0)).toBe(true)
  })

  it('serves embeddings (the SDK decodes the base64 vectors) and records their cost', async () => {
    const { gw, openai } = await gateway()

    const result = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] })

    expect(result.data.map((d) => d.embedding.length)).toEqual([1536, 1536])
    const [event] = await gw.events()
    expect(event).toMatchObject({ endpoint: 'embeddings', status: 'ok' })
    expect(event!.cost_micros).toBeGreaterThan(0)
  })

  it('lists models', async () => {
    const { openai } = await gateway()

    const ids = []
    for await (const model of openai.models.list()) ids.push(model.id)

    expect(ids).toContain(MODEL)
  })

  it('reports spend by user, agent, endpoint and prompt version from the attribution headers and the user field', async () => {
    const { gw, openai } = await gateway()
    const tagged = { 'x-tollgate-user': 'alice', 'x-tollgate-agent': 'planner', 'x-tollgate-endpoint': 'search', 'x-tollgate-prompt-version': 'v3' }

    await openai.chat.completions.create({ model: MODEL, messages: ask('first') }, { headers: tagged })
    await openai.chat.completions.create({ model: MODEL, messages: ask('second question') }, { headers: tagged })
    await openai.chat.completions.create({ model: MODEL, messages: ask('third'), user: 'bob' }, { headers: { 'x-tollgate-endpoint': 'summarize' } })

    const events = await gw.events()
    const { status, body } = await gw.admin('GET', '/v1/usage?group_by=user,agent,endpoint,prompt_version')
    expect(status).toBe(200)
    const groups = body.groups.map((g: { key: unknown; requests: number; cost_micros: number }) => [g.key, g.requests, g.cost_micros])
    expect(groups).toEqual(
      expect.arrayContaining([
        [{ user: 'alice', agent: 'planner', endpoint: 'search', prompt_version: 'v3' }, 2, events[0]!.cost_micros + events[1]!.cost_micros],
        [{ user: 'bob', agent: null, endpoint: 'summarize', prompt_version: null }, 1, events[2]!.cost_micros],
      ]),
    )
    expect(groups).toHaveLength(2)
  })

  it('refuses an unknown key with 401 (AuthenticationError) and sends nothing upstream', async () => {
    const { gw } = await gateway()
    const stranger = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'tg_not_a_key', maxRetries: 0 })

    const error = await stranger.chat.completions.create({ model: MODEL, messages: ask('hi') }).catch((e: unknown) => e)

    expect(error).toBeInstanceOf(OpenAI.AuthenticationError)
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key')
    expect(gw.mock.requests).toEqual([])
    expect(await gw.events()).toEqual([])
  })

  it('sends the provider key upstream, never the consumer key', async () => {
    const { gw, openai } = await gateway()

    await openai.chat.completions.create({ model: MODEL, messages: ask('whose key') })
    await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'whose key' })

    expect(gw.mock.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${PROVIDER_KEY}`, `Bearer ${PROVIDER_KEY}`])
    expect(JSON.stringify(gw.mock.requests)).not.toContain(CONSUMER_KEY)
  })

  it('settles a stream the upstream cut for what was delivered, and the client sees it cut', async () => {
    const { gw, openai } = await gateway({ walletEnforcement: true })
    await gw.allocate(TEAM, 5)

    const received: string[] = []
    const outcome = await (async () => {
      for await (const c of await openai.chat.completions.create({ model: MODEL, messages: ask('long __tollgate_cut_stream__ answer'), stream: true })) {
        received.push(c.choices[0]?.delta.content ?? '')
      }
    })().catch((e: unknown) => e)

    expect(outcome).toBeInstanceOf(Error)
    expect(received.join('')).toMatch(/^Tollgate mock reply/)
    const [event] = await gw.events()
    expect(event).toMatchObject({ status: 'cut' })
    expect(event!.output_tokens).toBeGreaterThan(0)
    expect(event!.output_tokens).toBeLessThan(40)
    expect(event!.cost_micros).toBeGreaterThan(0)
    const reservation = await gw.app.stores.ledger.getReservation('default', event!.reservation_id!)
    expect(reservation).toMatchObject({ status: 'settled', settledMicros: event!.cost_micros })
  })

  it('passes an upstream 500 through with its own status and body, records zero cost and voids the reservation', async () => {
    const { gw, openai } = await gateway({ walletEnforcement: true })
    await gw.allocate(TEAM, 5)
    const upstreamError = { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: 'boom' } }
    gw.mock.setFailure({ status: 500, body: upstreamError, times: 1 })

    const error = await openai.chat.completions.create({ model: MODEL, messages: ask('fail') }).catch((e: unknown) => e)

    expect(error).toBeInstanceOf(OpenAI.InternalServerError)
    const apiError = error as InstanceType<typeof OpenAI.InternalServerError>
    expect(apiError.status).toBe(500)
    expect(apiError.error).toEqual(upstreamError.error)
    expect(apiError.headers.get('x-tollgate-cost-usd')).toBe('0.000000')
    const [event] = await gw.events()
    expect(event).toMatchObject({ status: 'upstream_error', http_status: 500, cost_micros: 0 })
    expect(await gw.app.stores.ledger.getReservation('default', event!.reservation_id!)).toMatchObject({ status: 'voided', settledMicros: 0 })
  })
})

describe('openai SDK: chat search models bill a web search on every call', () => {
  const SEARCH_MODEL = 'gpt-4o-search-preview'
  /** OpenAI's published gpt-4o-search-preview prices: $2.50 / $10 per Mtok; a search $30 / $35 / $50 per 1,000 by context size. */
  const tokensMicros = (usage: OpenAI.CompletionUsage) => Math.ceil(usage.prompt_tokens * 2.5) + usage.completion_tokens * 10
  /**
   * The worst case of a call capped at 100 tokens: web_search_options brings input the body does not
   * hold, taken at the 128k window; plus the 6 µ$ a sum of rounded-up parts can add.
   */
  const worstTokensMicros = 128_000 * 2.5 + 100 * 10 + 6
  type Breakdown = { parts: Array<{ part: string; tokens: number; costMicros: number; fallback: boolean }> }
  const searchPart = (event: unknown) =>
    (JSON.parse((event as { cost_breakdown_json: string }).cost_breakdown_json) as Breakdown).parts.find((p) => p.part === 'web_search')

  it('charges the tokens plus one search at the size asked, as the cost header says, and reserved the fee beforehand', async () => {
    const { gw, openai } = await gateway({ walletEnforcement: true })
    await gw.allocate(TEAM, 5)

    const { data, response } = await openai.chat.completions
      .create({ model: SEARCH_MODEL, messages: ask('what is new today?'), web_search_options: { search_context_size: 'low' }, max_tokens: 100 })
      .withResponse()

    const [event] = await gw.events()
    expect(event!.cost_micros).toBe(tokensMicros(data.usage!) + 30_000)
    expect(response.headers.get('x-tollgate-cost-usd')).toBe(usd(event!.cost_micros))
    expect(searchPart(event)).toEqual({ part: 'web_search', tokens: 1, unitMicrosPerMtok: 30_000_000_000, costMicros: 30_000, fallback: false })
    expect(event!.price_source).not.toMatch(/fallback/)
    expect(response.headers.get('x-tollgate-cost-reserved-usd')).toBe(usd(worstTokensMicros + 30_000))
  })

  it('charges a streamed call its search too, medium when no size is asked', async () => {
    const { gw, openai } = await gateway()

    let usage: OpenAI.CompletionUsage | undefined
    const stream = await openai.chat.completions.create({
      model: SEARCH_MODEL,
      messages: ask('and now?'),
      web_search_options: {},
      stream: true,
      stream_options: { include_usage: true },
    })
    for await (const chunk of stream) usage = chunk.usage ?? usage

    const [event] = await gw.events()
    expect(event!.cost_micros).toBe(tokensMicros(usage!) + 35_000)
    expect(searchPart(event)).toMatchObject({ tokens: 1, costMicros: 35_000 })
  })

  it('refuses, before sending, a call whose wallet covers its tokens but not its search', async () => {
    const { gw, openai } = await gateway({ walletEnforcement: true })
    // $0.35: the worst-case tokens ($0.321006) fit, the $0.035 medium search does not.
    await gw.allocate(TEAM, 0.35)

    const error = await openai.chat.completions
      .create({ model: SEARCH_MODEL, messages: ask('too dear'), web_search_options: { search_context_size: 'medium' }, max_tokens: 100 })
      .catch((e: unknown) => e)

    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('insufficient_quota')
    expect(gw.mock.requests).toEqual([])
    const wallets = (await gw.admin('GET', '/v1/wallets')).body.data as Array<{ scope: string; spent_micros: number; reserved_micros: number }>
    expect(wallets.find((w) => w.scope === `team:${TEAM}`)).toMatchObject({ spent_micros: 0, reserved_micros: 0 })
  })

  it('charges a call asking for n answers n searches, and reserved their fees beforehand', async () => {
    const { gw, openai } = await gateway({ walletEnforcement: true })
    await gw.allocate(TEAM, 5)

    const { data, response } = await openai.chat.completions
      .create({ model: SEARCH_MODEL, messages: ask('three takes'), n: 3, web_search_options: { search_context_size: 'low' }, max_tokens: 100 })
      .withResponse()

    expect(data.choices).toHaveLength(3)
    const [event] = await gw.events()
    expect(event!.cost_micros).toBe(tokensMicros(data.usage!) + 3 * 30_000)
    expect(response.headers.get('x-tollgate-cost-usd')).toBe(usd(event!.cost_micros))
    expect(searchPart(event)).toEqual({ part: 'web_search', tokens: 3, unitMicrosPerMtok: 30_000_000_000, costMicros: 90_000, fallback: false })
    // Three answers of up to 100 tokens each, and three searches.
    expect(response.headers.get('x-tollgate-cost-reserved-usd')).toBe(usd(128_000 * 2.5 + 3 * 100 * 10 + 6 + 3 * 30_000))
  })

  it('refuses, before sending, a call of n answers whose wallet covers one search but not n', async () => {
    const { gw, openai } = await gateway({ walletEnforcement: true })
    // $0.40: the worst-case tokens of 3 × 100 output tokens ($0.323006) and one $0.035 medium
    // search fit; three searches ($0.105) do not.
    await gw.allocate(TEAM, 0.4)

    const error = await openai.chat.completions
      .create({ model: SEARCH_MODEL, messages: ask('three takes'), n: 3, web_search_options: { search_context_size: 'medium' }, max_tokens: 100 })
      .catch((e: unknown) => e)

    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('insufficient_quota')
    expect(gw.mock.requests).toEqual([])
    const wallets = (await gw.admin('GET', '/v1/wallets')).body.data as Array<{ scope: string; spent_micros: number; reserved_micros: number }>
    expect(wallets.find((w) => w.scope === `team:${TEAM}`)).toMatchObject({ spent_micros: 0, reserved_micros: 0 })
  })

  it("charges a models: override's web_search_kcall instead of OpenAI's fee", async () => {
    const { gw, openai } = await gateway({
      models: [{ name: SEARCH_MODEL, target: 'mock', pricing: { input_mtok: 2.5, output_mtok: 10, web_search_kcall: 12.5 } }],
    })

    const { data, response } = await openai.chat.completions
      .create({ model: SEARCH_MODEL, messages: ask('negotiated price'), web_search_options: { search_context_size: 'high' } })
      .withResponse()

    const [event] = await gw.events()
    expect(event!.cost_micros).toBe(tokensMicros(data.usage!) + 12_500)
    expect(response.headers.get('x-tollgate-cost-usd')).toBe(usd(event!.cost_micros))
    expect(event!.price_source).toBe(`override:${SEARCH_MODEL}`)
  })
})

/** A POST with node:http, because fetch does not expose HTTP trailers. */
function postRaw(url: string, body: unknown): Promise<{ status: number; text: string; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CONSUMER_KEY}` } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, trailers: res.trailers }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}
