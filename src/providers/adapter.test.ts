/**
 * The request side: where a call goes, which headers reach the upstream (and which never do),
 * and how the output cap and stream-usage opt-in are read and written.
 */
import { describe, expect, it } from 'vitest'
import { buildUpstreamRequest, ensureStreamUsage, outputCapField, readOutputCap, writeOutputCap } from './adapter.js'

const clientHeaders = {
  authorization: 'Bearer tg_consumer_key',
  'x-api-key': 'tg_consumer_key',
  accept: 'text/event-stream',
  'openai-organization': 'org_1',
  'openai-project': 'proj_1',
  'anthropic-beta': ['prompt-caching-2024-07-31', 'output-128k-2025-02-19'],
  'x-tollgate-user': 'alice',
  cookie: 'secret=1',
}

describe('buildUpstreamRequest', () => {
  it.each([
    ['chat_completions', '/v1/chat/completions'],
    ['responses', '/v1/responses'],
    ['embeddings', '/v1/embeddings'],
    ['models', '/v1/models'],
  ] as const)('sends OpenAI %s to %s with the provider key, never the consumer key', (endpoint, path) => {
    const request = buildUpstreamRequest({ endpoint, provider: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-upstream', body: {}, clientHeaders })
    expect(request).toEqual({
      origin: 'https://api.openai.com',
      path,
      headers: {
        'content-type': 'application/json',
        'accept-encoding': 'identity',
        accept: 'text/event-stream',
        'openai-organization': 'org_1',
        'openai-project': 'proj_1',
        authorization: 'Bearer sk-upstream',
      },
    })
  })

  it('keeps the base path of an openai-compatible upstream and a trailing slash does not double', () => {
    const request = buildUpstreamRequest({
      endpoint: 'chat_completions',
      provider: 'openai-compatible',
      baseUrl: 'http://localhost:8000/proxy/v1/',
      apiKey: undefined,
      body: {},
      clientHeaders: {},
    })
    expect(request.origin).toBe('http://localhost:8000')
    expect(request.path).toBe('/proxy/v1/chat/completions')
    expect(request.headers['authorization']).toBeUndefined()
  })

  it('sends Anthropic messages to /v1/messages with x-api-key and the client version and betas', () => {
    const request = buildUpstreamRequest({
      endpoint: 'messages',
      provider: 'anthropic',
      baseUrl: 'https://api.anthropic.com',
      apiKey: 'sk-ant-upstream',
      body: {},
      clientHeaders: { ...clientHeaders, 'anthropic-version': '2023-01-01' },
    })
    expect(request).toEqual({
      origin: 'https://api.anthropic.com',
      path: '/v1/messages',
      headers: {
        'content-type': 'application/json',
        'accept-encoding': 'identity',
        accept: 'text/event-stream',
        'anthropic-beta': 'prompt-caching-2024-07-31, output-128k-2025-02-19',
        'anthropic-version': '2023-01-01',
        'x-api-key': 'sk-ant-upstream',
      },
    })
  })

  it('defaults anthropic-version and tolerates an Anthropic base URL configured with /v1', () => {
    const request = buildUpstreamRequest({
      endpoint: 'messages',
      provider: 'anthropic',
      baseUrl: 'https://api.anthropic.com/v1',
      apiKey: 'k',
      body: {},
      clientHeaders: {},
    })
    expect(request.path).toBe('/v1/messages')
    expect(request.headers['anthropic-version']).toBe('2023-06-01')
  })

  it('sends messages to the mock under its /v1 base URL with Anthropic-style auth', () => {
    const request = buildUpstreamRequest({
      endpoint: 'messages',
      provider: 'mock',
      baseUrl: 'http://127.0.0.1:9999/v1',
      apiKey: 'mock-key',
      body: {},
      clientHeaders: {},
    })
    expect(request.path).toBe('/v1/messages')
    expect(request.headers).toMatchObject({ 'x-api-key': 'mock-key', 'anthropic-version': '2023-06-01' })
    expect(request.headers['authorization']).toBeUndefined()
  })
})

describe('output cap', () => {
  it.each([
    ['chat_completions', { max_completion_tokens: 100, max_tokens: 50 }, 'max_completion_tokens'],
    ['chat_completions', { max_tokens: 50 }, 'max_tokens'],
    ['chat_completions', {}, 'max_completion_tokens'],
    ['responses', {}, 'max_output_tokens'],
    ['messages', { max_tokens: 1024 }, 'max_tokens'],
    ['embeddings', {}, undefined],
  ] as const)('%s with %j caps in %s', (endpoint, body, field) => {
    expect(outputCapField(endpoint, { ...body })).toBe(field)
  })

  it('writes max_tokens for openai-compatible chat upstreams when the client set no cap', () => {
    expect(outputCapField('chat_completions', {}, 'openai-compatible')).toBe('max_tokens')
  })

  it.each([
    [{}, { kind: 'absent', field: 'max_completion_tokens' }],
    [{ max_completion_tokens: null }, { kind: 'absent', field: 'max_completion_tokens' }],
    [{ max_tokens: 0 }, { kind: 'set', field: 'max_tokens', outputTokensMax: 0 }],
    [{ max_tokens: 12.5 }, { kind: 'invalid', field: 'max_tokens', value: 12.5 }],
    [{ max_tokens: '12' }, { kind: 'invalid', field: 'max_tokens', value: '12' }],
  ])('reads chat %j as %j', (body, read) => {
    expect(readOutputCap('chat_completions', body)).toEqual(read)
  })

  it('lowers both chat cap fields so neither lets more through than was reserved', () => {
    const body: Record<string, unknown> = { max_completion_tokens: 4000, max_tokens: 3000 }
    expect(writeOutputCap('chat_completions', body, 500)).toBe('max_completion_tokens')
    expect(body).toEqual({ max_completion_tokens: 500, max_tokens: 500 })
  })

  it('sets the cap on a responses body and leaves embeddings alone', () => {
    const responses: Record<string, unknown> = {}
    writeOutputCap('responses', responses, 256)
    expect(responses).toEqual({ max_output_tokens: 256 })
    const embeddings: Record<string, unknown> = { input: 'x' }
    expect(writeOutputCap('embeddings', embeddings, 256)).toBeUndefined()
    expect(embeddings).toEqual({ input: 'x' })
  })

  it('refuses a negative or fractional cap as a programmer error', () => {
    expect(() => writeOutputCap('messages', {}, -1)).toThrow()
    expect(() => writeOutputCap('messages', {}, 1.5)).toThrow()
  })
})

describe('ensureStreamUsage', () => {
  it('injects include_usage into a chat stream, keeping other stream_options, and says so', () => {
    const body: Record<string, unknown> = { stream: true, stream_options: { include_obfuscation: false } }
    expect(ensureStreamUsage(body)).toBe(false)
    expect(body['stream_options']).toEqual({ include_obfuscation: false, include_usage: true })
  })

  it('reports that the client asked for usage itself', () => {
    const body: Record<string, unknown> = { stream: true, stream_options: { include_usage: true } }
    expect(ensureStreamUsage(body)).toBe(true)
  })

  it('leaves a non-stream body untouched', () => {
    const body: Record<string, unknown> = { stream: false }
    expect(ensureStreamUsage(body)).toBe(true)
    expect(body).toEqual({ stream: false })
  })
})
