/**
 * Input the request body does not hold: a Responses call that continues a stored response, a
 * call with a server-side tool whose results the provider bills as input, or a file given by
 * reference (an id or a URL) that the provider fetches and reads. Such a call reserves its
 * input at the model's whole context window, so a wallet never pays for more than it holds; a
 * model whose window is unknown is refused, and an ordinary call's reservation does not change.
 *
 * How: a real listening gateway on SQLite (`startTestGateway`, the mock upstream in this process),
 * driven with `fetch`. Models carry round override prices; the context windows are the
 * catalogue's for the upstream ids (gpt-4.1: 1,000,000 tokens; claude-haiku-4-5: 200,000).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { CONSUMER_KEY, TEAM, aConfig, startTestGateway, type TestGateway } from '../support/gateway.js'
import { ledgerOf, ledgerSum, usdToMicros, walletOf } from './hard-caps-support.js'

/** $2 / $8 per Mtok: 2 and 8 µ$ per token. */
const GPT = 'held-gpt'
const GPT_WINDOW = 1_000_000
/** $1 / $5 per Mtok: 1 and 5 µ$ per token. */
const CLAUDE = 'held-claude'
const CLAUDE_WINDOW = 200_000
/** Priced by override only: the catalogue knows no window for it. */
const HOUSE = 'house-model'
/** What the worst case adds to its parts for per-part rounding (`worstCaseRoundingSlackMicros`). */
const SLACK = 6
/** The web search fees `searching` reserves: max_uses 5 × $10 per 1,000 searches. */
const SEARCH_FEES = 5 * 10_000

const open: TestGateway[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((gw) => gw.close()))
})

async function aGateway(): Promise<TestGateway> {
  const gw = await startTestGateway({
    yaml: aConfig({
      walletEnforcement: true,
      models: [
        { name: GPT, target: 'mock', upstream_model: 'gpt-4.1', pricing: { input_mtok: 2, output_mtok: 8 } },
        { name: CLAUDE, target: 'mock', upstream_model: 'claude-haiku-4-5', pricing: { input_mtok: 1, output_mtok: 5 } },
        { name: HOUSE, target: 'mock', upstream_model: 'house-model-7b', pricing: { input_mtok: 1, output_mtok: 1 } },
      ],
    }),
  })
  open.push(gw)
  return gw
}

function post(gw: TestGateway, path: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
}

const continued = { model: GPT, input: 'and now?', previous_response_id: 'resp_abc123', max_output_tokens: 100 }
const searching = {
  model: CLAUDE,
  max_tokens: 100,
  messages: [{ role: 'user', content: 'what happened today?' }],
  tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }],
}

async function expectBalanced(gw: TestGateway) {
  const wallet = await walletOf(gw.admin, `team:${TEAM}`)
  if (!wallet) throw new Error('no team wallet')
  expect(ledgerSum(await ledgerOf(gw.admin, wallet.id))).toBe(wallet.available_micros)
  expect(wallet.reserved_micros).toBe(0)
  return wallet
}

/** A stream the provider cuts before its usage: the call is charged its whole window of input (gpt at $2 per million), no less. */
async function expectCutChargedTheWindow(path: string, body: Record<string, unknown>) {
  const gw = await aGateway()
  await gw.allocate(TEAM, 5)
  gw.mock.setScript({ cut: 'stream', times: 1 })
  const res = await post(gw, path, body)
  expect(res.status).toBe(200)
  await res.text().catch(() => '')
  const [event] = await gw.events()
  expect(event).toMatchObject({ status: 'cut', http_status: 200 })
  expect(event!.cost_micros).toBeGreaterThanOrEqual(GPT_WINDOW * 2)
  expect(event!.cost_micros).toBeLessThanOrEqual(GPT_WINDOW * 2 + 100 * 8 + SLACK)
  expect((await expectBalanced(gw)).spent_micros).toBe(event!.cost_micros)
}

describe('Responses input held by the provider', () => {
  it('reserves the input at the context window, and settles what the provider reports within it', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 5)
    // The provider reads 500k tokens of stored conversation for a 2-word input.
    gw.mock.setScript({ usage: { inputTokens: 500_000, outputTokens: 50 }, times: 1 })
    const res = await post(gw, '/v1/responses', continued)
    expect(res.status).toBe(200)
    await res.json()
    expect(usdToMicros(res.headers.get('x-tollgate-cost-reserved-usd'))).toBe(GPT_WINDOW * 2 + 100 * 8 + SLACK)
    expect(usdToMicros(res.headers.get('x-tollgate-cost-usd'))).toBe(500_000 * 2 + 50 * 8)
    const wallet = await expectBalanced(gw)
    expect(wallet.spent_micros).toBe(1_000_400)
  })

  it('charges a stream cut before its usage the whole window of input, never the few words in the body', async () => {
    await expectCutChargedTheWindow('/v1/responses', { ...continued, stream: true })
  })

  it('refuses 429 on a wallet that cannot cover the window, naming the worst case; nothing reaches the upstream', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 0.05)
    const answers = await Promise.all(Array.from({ length: 40 }, () => post(gw, '/v1/responses', continued)))
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as any[]
    expect(answers.map((r) => r.status)).toEqual(Array.from({ length: 40 }, () => 429))
    expect(bodies[0].error.code).toBe('insufficient_quota')
    expect(bodies[0].error.message).toContain('$2.000806')
    expect(bodies[0].error.message).toContain('1000000-token context window')
    expect(bodies[0].error.message).toContain('"previous_response_id"')
    expect(gw.mock.requests).toHaveLength(0)
    const wallet = await expectBalanced(gw)
    expect(wallet.spent_micros).toBe(0)
  })

  it('treats conversation, a stored prompt and a server-side tool alike', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 0.05)
    for (const extra of [
      { conversation: 'conv_1' },
      { prompt: { id: 'pmpt_1' }, input: undefined },
      { tools: [{ type: 'web_search_preview' }] },
      { tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] },
    ]) {
      const res = await post(gw, '/v1/responses', { model: GPT, input: 'and now?', max_output_tokens: 100, ...extra })
      expect(res.status, JSON.stringify(extra)).toBe(429)
      await res.json()
    }
    expect(gw.mock.requests).toHaveLength(0)
  })

  it("keeps an ordinary call's reservation: the body's own input", async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 0.05)
    const res = await post(gw, '/v1/responses', { model: GPT, input: 'and now?', max_output_tokens: 100 })
    expect(res.status).toBe(200)
    await res.json()
    // 8 bytes + 1 segment + 4 framing + 3 priming = 16 input tokens at 2 µ$, 100 output at 8 µ$.
    expect(usdToMicros(res.headers.get('x-tollgate-cost-reserved-usd'))).toBe(16 * 2 + 100 * 8 + SLACK)
    await expectBalanced(gw)
  })

  it('refuses 400 input_not_bounded when the model has no known context window', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 5)
    const res = await post(gw, '/v1/responses', { ...continued, model: HOUSE })
    expect(res.status).toBe(400)
    const body = (await res.json()) as any
    expect(body.error.code).toBe('input_not_bounded')
    expect(body.error.message).toContain('"previous_response_id"')
    expect(body.error.message).toContain('context window of "house-model-7b" is unknown')
    expect(gw.mock.requests).toHaveLength(0)
    // The same model with its whole input in the body is served.
    const ordinary = await post(gw, '/v1/responses', { model: HOUSE, input: 'and now?', max_output_tokens: 100 })
    expect(ordinary.status).toBe(200)
    await ordinary.json()
  })
})

describe('Anthropic server tools', () => {
  it('reserve the input at the context window, and a small wallet is refused without reaching the upstream', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 0.05)
    const refused = await post(gw, '/v1/messages', searching)
    expect(refused.status).toBe(429)
    const body = (await refused.json()) as any
    expect(body).toMatchObject({ type: 'error', error: { code: 'insufficient_quota' } })
    expect(body.error.message).toContain('$0.250506')
    expect(body.error.message).toContain('"tools[0]" (web_search_20250305)')
    expect(gw.mock.requests).toHaveLength(0)

    await gw.allocate(TEAM, 1)
    const served = await post(gw, '/v1/messages', searching)
    expect(served.status).toBe(200)
    await served.json()
    expect(usdToMicros(served.headers.get('x-tollgate-cost-reserved-usd'))).toBe(CLAUDE_WINDOW * 1 + 100 * 5 + SLACK + SEARCH_FEES)
    await expectBalanced(gw)
  })

  it("take the 1M window under Anthropic's context-1m beta", async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 5)
    const res = await post(gw, '/v1/messages', searching, { 'anthropic-beta': 'context-1m-2025-08-07' })
    expect(res.status).toBe(200)
    await res.json()
    expect(usdToMicros(res.headers.get('x-tollgate-cost-reserved-usd'))).toBe(1_000_000 * 1 + 100 * 5 + SLACK + SEARCH_FEES)
  })

  it('leave a call with only client tools as it was', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 0.05)
    const res = await post(gw, '/v1/messages', { ...searching, tools: [{ name: 'lookup', input_schema: { type: 'object' } }] })
    expect(res.status).toBe(200)
    await res.json()
    expect(usdToMicros(res.headers.get('x-tollgate-cost-reserved-usd'))).toBeLessThan(10_000)
  })
})

/** A one-page PDF's bytes, base64: the same file sent inline rather than by reference. */
const SMALL_PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n').toString('base64')
const chatWith = (part: Record<string, unknown>, model = GPT) => ({
  model,
  max_tokens: 100,
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Summarise this report.' }, part] }],
})

describe('Files given by reference', () => {
  it('chat: a file_id reserves the input at the context window; the same file inline is counted by its size', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 0.05)
    // A file id can name a 500-page PDF: the wallet cannot cover the window, so nothing is sent.
    const refused = await post(gw, '/v1/chat/completions', chatWith({ type: 'file', file: { file_id: 'file-abc123' } }))
    expect(refused.status).toBe(429)
    const body = (await refused.json()) as any
    expect(body.error.code).toBe('insufficient_quota')
    expect(body.error.message).toContain('$2.000806')
    expect(body.error.message).toContain('1000000-token context window because "messages[0].content[1]" (file_id)')
    expect(gw.mock.requests).toHaveLength(0)

    const inline = await post(
      gw,
      '/v1/chat/completions',
      chatWith({ type: 'file', file: { filename: 'report.pdf', file_data: `data:application/pdf;base64,${SMALL_PDF}` } }),
    )
    expect(inline.status).toBe(200)
    await inline.json()
    expect(usdToMicros(inline.headers.get('x-tollgate-cost-reserved-usd'))).toBeLessThan(50_000)

    await gw.allocate(TEAM, 5)
    gw.mock.setScript({ usage: { inputTokens: 120_000, outputTokens: 50 }, times: 1 })
    const served = await post(gw, '/v1/chat/completions', chatWith({ type: 'file', file: { file_id: 'file-abc123' } }))
    expect(served.status).toBe(200)
    await served.json()
    expect(usdToMicros(served.headers.get('x-tollgate-cost-reserved-usd'))).toBe(GPT_WINDOW * 2 + 100 * 8 + SLACK)
    // The settle charges what the provider reports reading.
    expect(usdToMicros(served.headers.get('x-tollgate-cost-usd'))).toBe(120_000 * 2 + 50 * 8)
    await expectBalanced(gw)
  })

  it('chat: a stream cut before its usage is charged the whole window of input, not the file allowance', async () => {
    await expectCutChargedTheWindow('/v1/chat/completions', { ...chatWith({ type: 'file', file: { file_id: 'file-abc123' } }), stream: true })
  })

  it('Responses: an input_file with a file_url reserves the window; with its data inline it does not', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 5)
    const call = (part: Record<string, unknown>) => ({
      model: GPT,
      max_output_tokens: 100,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Summarise this report.' }, part] }],
    })
    const byUrl = await post(gw, '/v1/responses', call({ type: 'input_file', file_url: 'https://files.example/annual-report.pdf' }))
    expect(byUrl.status).toBe(200)
    await byUrl.json()
    expect(usdToMicros(byUrl.headers.get('x-tollgate-cost-reserved-usd'))).toBe(GPT_WINDOW * 2 + 100 * 8 + SLACK)

    const inline = await post(gw, '/v1/responses', call({ type: 'input_file', filename: 'report.pdf', file_data: `data:application/pdf;base64,${SMALL_PDF}` }))
    expect(inline.status).toBe(200)
    await inline.json()
    expect(usdToMicros(inline.headers.get('x-tollgate-cost-reserved-usd'))).toBeLessThan(50_000)
    await expectBalanced(gw)
  })

  it('Anthropic: a document with a url source reserves the window, and a small wallet is refused', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 0.05)
    const call = (source: Record<string, unknown>) => ({
      model: CLAUDE,
      max_tokens: 100,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'document', source },
            { type: 'text', text: 'Summarise this report.' },
          ],
        },
      ],
    })
    const refused = await post(gw, '/v1/messages', call({ type: 'url', url: 'https://files.example/annual-report.pdf' }))
    expect(refused.status).toBe(429)
    const body = (await refused.json()) as any
    expect(body).toMatchObject({ type: 'error', error: { code: 'insufficient_quota' } })
    expect(body.error.message).toContain('"messages[0].content[0]" (url)')
    expect(gw.mock.requests).toHaveLength(0)

    const inline = await post(gw, '/v1/messages', call({ type: 'base64', media_type: 'application/pdf', data: SMALL_PDF }))
    expect(inline.status).toBe(200)
    await inline.json()

    await gw.allocate(TEAM, 1)
    const served = await post(gw, '/v1/messages', call({ type: 'file', file_id: 'file_011CNha8iCJcU1wXNR6q4V8w' }))
    expect(served.status).toBe(200)
    await served.json()
    expect(usdToMicros(served.headers.get('x-tollgate-cost-reserved-usd'))).toBe(CLAUDE_WINDOW * 1 + 100 * 5 + SLACK)
    await expectBalanced(gw)
  })

  it('refuses 400 input_not_bounded when the model has no known context window, naming the part', async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 5)
    const res = await post(gw, '/v1/chat/completions', chatWith({ type: 'file', file: { file_id: 'file-abc123' } }, HOUSE))
    expect(res.status).toBe(400)
    const body = (await res.json()) as any
    expect(body.error.code).toBe('input_not_bounded')
    expect(body.error.message).toContain('"messages[0].content[1]" (file_id) is a file the provider fetches')
    expect(body.error.message).toContain('context window of "house-model-7b" is unknown')
    expect(body.error.message).toContain('send the file inline')
    expect(gw.mock.requests).toHaveLength(0)
    // The same file sent inline is served.
    const inline = await post(
      gw,
      '/v1/chat/completions',
      chatWith({ type: 'file', file: { filename: 'report.pdf', file_data: `data:application/pdf;base64,${SMALL_PDF}` } }, HOUSE),
    )
    expect(inline.status).toBe(200)
    await inline.json()
  })
})
