/**
 * The mock upstream's wire format, proved with the real client libraries: the `openai` SDK and
 * `@anthropic-ai/sdk` call it (plain and streaming) and must parse what it sends. The raw streams
 * are also fed through our SseParser and trackers, which must agree with the SDKs' usage.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AnthropicStreamUsageTracker } from '../anthropic/usage.js'
import { OpenAIStreamUsageTracker, openaiUsageFromBody } from '../openai/usage.js'
import { SseParser } from '../sse.js'
import { mockCutStreamMarker, mockReplyWordsMax } from './mock-reply.js'
import { startMockUpstream, type MockUpstream } from './mock-upstream.js'

let mock: MockUpstream
let openai: OpenAI
let anthropic: Anthropic

beforeAll(async () => {
  mock = await startMockUpstream({ apiKey: 'sk-mock' })
  openai = new OpenAI({ apiKey: 'sk-mock', baseURL: `${mock.url}/v1`, maxRetries: 0 })
  anthropic = new Anthropic({ apiKey: 'sk-mock', baseURL: mock.url, maxRetries: 0 })
})

afterAll(async () => {
  await mock.close()
})

const prompt = 'Hello there, how much will this request cost?'
const promptTokens = Math.ceil(prompt.length / 4)

/** POSTs with fetch and feeds the raw SSE bytes through SseParser into `onEvent`. */
async function rawStream(
  path: string,
  body: unknown,
  headers: Record<string, string>,
  onEvent: (eventName: string | undefined, data: string) => void,
): Promise<'complete' | 'cut'> {
  const response = await fetch(`${mock.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toContain('text/event-stream')
  const parser = new SseParser(onEvent)
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) parser.push(Buffer.from(chunk))
  } catch {
    parser.end()
    return 'cut'
  }
  parser.end()
  return 'complete'
}

describe('mock upstream: OpenAI chat.completions', () => {
  it('answers a plain call with a deterministic reply and realistic usage', async () => {
    const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] })
    const content = completion.choices[0]?.message.content ?? ''
    expect(content.startsWith(`Tollgate mock reply to: ${prompt}`)).toBe(true)
    expect(content.split(' ')).toHaveLength(mockReplyWordsMax)
    expect(completion.choices[0]?.finish_reason).toBe('stop')
    expect(completion.usage).toMatchObject({
      prompt_tokens: promptTokens,
      completion_tokens: mockReplyWordsMax,
      total_tokens: promptTokens + mockReplyWordsMax,
    })
    expect(openaiUsageFromBody('chat_completions', completion)?.usage).toMatchObject({ inputTokens: promptTokens, outputTokens: mockReplyWordsMax })
  })

  it('stops at max_completion_tokens with finish_reason length', async () => {
    const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', max_completion_tokens: 5, messages: [{ role: 'user', content: prompt }] })
    expect(completion.choices[0]?.message.content).toBe('Tollgate mock reply to: Hello')
    expect(completion.choices[0]?.finish_reason).toBe('length')
    expect(completion.usage?.completion_tokens).toBe(5)
  })

  it('reports cached tokens when a message mentions "cached", and reasoning tokens for o-series models', async () => {
    const completion = await openai.chat.completions.create({
      model: 'o3-mini',
      max_completion_tokens: 30,
      messages: [
        { role: 'system', content: 'You are cached.' },
        { role: 'user', content: prompt },
      ],
    })
    const usage = completion.usage
    expect(usage?.prompt_tokens_details?.cached_tokens).toBeGreaterThan(0)
    expect(usage?.completion_tokens_details?.reasoning_tokens).toBe(15)
    expect(usage?.completion_tokens).toBe(30)
  })

  it('streams chunks the SDK assembles, with a usage chunk only when include_usage is set', async () => {
    const withUsage = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: prompt }],
    })
    let text = ''
    let usage: OpenAI.CompletionUsage | null | undefined
    for await (const chunk of withUsage) {
      text += chunk.choices[0]?.delta.content ?? ''
      if (chunk.usage) usage = chunk.usage
    }
    expect(text.startsWith('Tollgate mock reply to: Hello')).toBe(true)
    expect(usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: mockReplyWordsMax })

    const withoutUsage = await openai.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt }] })
    for await (const chunk of withoutUsage) expect(chunk.usage).toBeUndefined()
  })

  it('streams through the SDK stream helper to a final completion', async () => {
    const stream = openai.chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: prompt }], max_completion_tokens: 8 })
    const final = await stream.finalChatCompletion()
    expect(final.choices[0]?.message.content).toBe('Tollgate mock reply to: Hello there, how much')
    expect(final.choices[0]?.finish_reason).toBe('length')
  })

  it('gives our tracker the same usage the SDK saw, and flags the injected usage chunk', async () => {
    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    let injected = 0
    const outcome = await rawStream(
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: prompt }] },
      { authorization: 'Bearer sk-mock' },
      (eventName, data) => {
        tracker.onEvent(eventName, data)
        if (tracker.isInjectedUsageChunk(data)) injected += 1
      },
    )
    expect(outcome).toBe('complete')
    expect(injected).toBe(1)
    expect(tracker.usage()).toMatchObject({ source: 'reported', model: 'gpt-4o-mini', usage: { inputTokens: promptTokens, outputTokens: mockReplyWordsMax } })
  })

  it('cuts a stream half-way when the prompt carries the cut marker; the tracker counts what arrived', async () => {
    const body = { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `${mockCutStreamMarker} please` }] }
    await expect(async () => {
      const stream = await openai.chat.completions.create({ ...body, stream: true, messages: [{ role: 'user', content: `${mockCutStreamMarker} please` }] })
      for await (const _chunk of stream) {
        // drain until the connection drops
      }
    }).rejects.toThrow()

    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    tracker.setPromptTokensEstimate(9)
    let text = ''
    const outcome = await rawStream('/v1/chat/completions', body, { authorization: 'Bearer sk-mock' }, (eventName, data) => {
      tracker.onEvent(eventName, data)
      if (data.startsWith('{')) text += (JSON.parse(data) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? ''
    })
    expect(outcome).toBe('cut')
    const { usage, source } = tracker.usage()
    expect(source).toBe('counted')
    expect(usage.inputTokens).toBe(9)
    expect(usage.outputTokens).toBeGreaterThan(0)
    expect(text.split(' ').length).toBeLessThan(mockReplyWordsMax)
  })
})

describe('mock upstream: OpenAI responses', () => {
  it('answers a plain call the SDK reads output_text from', async () => {
    const response = await openai.responses.create({ model: 'gpt-4.1', input: prompt, instructions: 'Be brief.' })
    expect(response.output_text.startsWith(`Tollgate mock reply to: ${prompt}`)).toBe(true)
    expect(response.status).toBe('completed')
    expect(response.usage).toMatchObject({ input_tokens: Math.ceil((prompt.length + 'Be brief.'.length) / 4), output_tokens: mockReplyWordsMax })
  })

  it('streams events the SDK accumulates into a final response, incomplete at the cap', async () => {
    const stream = openai.responses.stream({ model: 'o4-mini', input: [{ role: 'user', content: prompt }], max_output_tokens: 20 })
    let deltas = ''
    stream.on('response.output_text.delta', (event) => {
      deltas += event.delta
    })
    const final = await stream.finalResponse()
    expect(final.status).toBe('incomplete')
    expect(final.output_text).toBe(deltas)
    expect(final.usage).toMatchObject({ output_tokens: 20, output_tokens_details: { reasoning_tokens: 10 } })
  })

  it('gives our tracker the usage of response.completed', async () => {
    const tracker = new OpenAIStreamUsageTracker('responses')
    await rawStream('/v1/responses', { model: 'gpt-4.1', stream: true, input: prompt }, { authorization: 'Bearer sk-mock' }, (eventName, data) =>
      tracker.onEvent(eventName, data),
    )
    expect(tracker.usage()).toMatchObject({ source: 'reported', model: 'gpt-4.1', usage: { inputTokens: promptTokens, outputTokens: mockReplyWordsMax } })
  })
})

describe('mock upstream: OpenAI embeddings and models', () => {
  it('answers the SDK default (base64) and float encodings with the same vectors', async () => {
    const base64 = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] })
    const floats = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'], encoding_format: 'float' })
    expect(base64.data).toHaveLength(2)
    expect(base64.data[0]?.embedding).toHaveLength(1536)
    expect(base64.data[0]?.embedding).toEqual(floats.data[0]?.embedding)
    // ceil(5 / 4) + ceil(4 / 4)
    expect(base64.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 })
  })

  it('lists models', async () => {
    const ids: string[] = []
    for await (const model of openai.models.list()) ids.push(model.id)
    expect(ids).toContain('gpt-4o-mini')
  })
})

describe('mock upstream: Anthropic messages', () => {
  it('answers a plain call with cache reads excluded from input_tokens', async () => {
    const message = await anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 1024,
      system: [{ type: 'text', text: 'Long cached context.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: prompt }],
    })
    const first = message.content[0]
    expect(first?.type === 'text' ? first.text : '').toMatch(/^Tollgate mock reply to: Hello/)
    expect(message.stop_reason).toBe('end_turn')
    const total = Math.ceil(('Long cached context.'.length + prompt.length) / 4)
    const { input_tokens, cache_read_input_tokens, cache_creation_input_tokens } = message.usage
    expect(cache_read_input_tokens).toBeGreaterThan(0)
    expect(cache_creation_input_tokens).toBeGreaterThan(0)
    expect(input_tokens + (cache_read_input_tokens ?? 0) + (cache_creation_input_tokens ?? 0)).toBe(total)
    expect(message.usage.output_tokens).toBe(mockReplyWordsMax)
  })

  it('streams events the SDK accumulates into a final message, stopped at max_tokens', async () => {
    const stream = anthropic.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 6, messages: [{ role: 'user', content: prompt }] })
    let text = ''
    stream.on('text', (delta) => {
      text += delta
    })
    const final = await stream.finalMessage()
    expect(text).toBe('Tollgate mock reply to: Hello there,')
    expect(final.stop_reason).toBe('max_tokens')
    expect(final.usage).toMatchObject({ input_tokens: promptTokens, output_tokens: 6 })
  })

  it('gives our tracker the same usage', async () => {
    const tracker = new AnthropicStreamUsageTracker()
    await rawStream(
      '/v1/messages',
      { model: 'claude-haiku-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: prompt }] },
      { 'x-api-key': 'sk-mock', 'anthropic-version': '2023-06-01' },
      (eventName, data) => tracker.onEvent(eventName, data),
    )
    expect(tracker.usage()).toMatchObject({
      source: 'reported',
      model: 'claude-haiku-4-5',
      usage: { inputTokens: promptTokens, outputTokens: mockReplyWordsMax },
    })
  })

  it('refuses a missing max_tokens with an Anthropic-shaped 400', async () => {
    const response = await fetch(`${mock.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-mock', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-haiku-4-5', messages: [] }),
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } })
  })
})

describe('mock upstream: auth, failures and recording', () => {
  it('answers a wrong OpenAI key with 401 invalid_api_key', async () => {
    const wrong = new OpenAI({ apiKey: 'sk-wrong-key-123', baseURL: `${mock.url}/v1`, maxRetries: 0 })
    const error = await wrong.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError)
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key')
  })

  it('answers a missing Anthropic key with an authentication_error, and a wrong one through the SDK', async () => {
    const response = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error', message: 'x-api-key header is required' } })
    const wrong = new Anthropic({ apiKey: 'sk-wrong', baseURL: mock.url, maxRetries: 0 })
    const error = await wrong.messages
      .create({ model: 'claude-haiku-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError)
  })

  it('accepts the Anthropic key as x-api-key as well as Bearer', async () => {
    const response = await fetch(`${mock.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-mock', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] }),
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ type: 'message', usage: { output_tokens: 3 } })
  })

  it('fails the next N requests as set, then serves again', async () => {
    mock.setFailure({ status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, times: 1 })
    const error = await anthropic.messages
      .create({ model: 'claude-haiku-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.APIError)
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529)
    const message = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })
    expect(message.usage.output_tokens).toBe(5)
  })

  it('records what reached it: method, path, headers and parsed body', async () => {
    await openai.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 3, messages: [{ role: 'user', content: 'record me' }] })
    const last = mock.requests[mock.requests.length - 1]
    expect(last).toMatchObject({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { authorization: 'Bearer sk-mock' },
      body: { model: 'gpt-4o-mini', max_tokens: 3 },
    })
  })
})

describe('mock upstream: paced streams', () => {
  it('sends one event per streamChunkDelayMs, also when cutting, and keeps only the newest recorded requests', async () => {
    const paced = await startMockUpstream({ streamChunkDelayMs: 1, latencyMs: 1, requestsRecordedMax: 2 })
    try {
      const client = new OpenAI({ apiKey: 'any-key', baseURL: `${paced.url}/v1`, maxRetries: 0 })
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt }] })
      let chunks = 0
      for await (const _chunk of stream) chunks += 1
      expect(chunks).toBe(mockReplyWordsMax + 2) // role chunk, one per word, finish chunk

      const cut = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: mockCutStreamMarker }] })
      let cutChunks = 0
      await expect(async () => {
        for await (const _chunk of cut) cutChunks += 1
      }).rejects.toThrow()
      expect(cutChunks).toBe(Math.floor((mockReplyWordsMax + 3) / 2))

      await client.models.list()
      expect(paced.requests.map((request) => request.path)).toEqual(['/v1/chat/completions', '/v1/models'])
    } finally {
      await paced.close()
    }
  })
})

describe('mock upstream: scripts', () => {
  it('reports the usage a test chose, in each API’s own shape', async () => {
    mock.setScript({
      usage: { inputTokens: 30_000, cacheReadTokens: 5_000, cacheWriteTokens: 20_000, cacheWrite1hTokens: 15_000, outputTokens: 900 },
      times: 1,
    })
    const message = await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 1000, messages: [{ role: 'user', content: prompt }] })
    expect(message.usage).toMatchObject({
      input_tokens: 5_000,
      cache_read_input_tokens: 5_000,
      cache_creation_input_tokens: 20_000,
      cache_creation: { ephemeral_5m_input_tokens: 5_000, ephemeral_1h_input_tokens: 15_000 },
      output_tokens: 900,
    })
    mock.setScript({ usage: { inputTokens: 10_000, audioInputTokens: 8_000, outputTokens: 3_000, reasoningTokens: 1_000, audioOutputTokens: 2_000 }, times: 1 })
    const completion = await openai.chat.completions.create({ model: 'gpt-4o-audio-preview', messages: [{ role: 'user', content: prompt }] })
    expect(completion.usage).toMatchObject({
      prompt_tokens: 10_000,
      completion_tokens: 3_000,
      prompt_tokens_details: { audio_tokens: 8_000 },
      completion_tokens_details: { reasoning_tokens: 1_000, audio_tokens: 2_000 },
    })
    // The script was for one request: the next is derived again.
    const next = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] })
    expect(next.usage?.prompt_tokens).toBe(promptTokens)
  })

  it('omits usage everywhere, cuts a body after its 200, and hangs', async () => {
    mock.setScript({ omitUsage: true, times: 2 })
    const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] })
    expect(completion.usage).toBeUndefined()
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: prompt }],
    })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(chunks.some((c) => c.usage)).toBe(false)

    mock.setScript({ cut: 'body', times: 1 })
    const cut = await fetch(`${mock.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-mock' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] }),
    })
    expect(cut.status).toBe(200)
    await expect(cut.text()).rejects.toThrow()

    mock.setScript({ hang: true, times: 1 })
    const hung = fetch(`${mock.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-mock' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] }),
      signal: AbortSignal.timeout(300),
    })
    await expect(hung).rejects.toThrow(/abort|timeout/i)
  })
})
