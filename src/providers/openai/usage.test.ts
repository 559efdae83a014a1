/**
 * OpenAI usage extraction. Bodies and streams are realistic fixtures (fixtures/); each test checks
 * that every token is counted exactly once under the `Usage` rules (cached ⊆ input, reasoning ⊆
 * output), and that a cut stream is settled for what it delivered.
 */
import { readFileSync } from 'node:fs'
import { countTokens } from 'gpt-tokenizer'
import { describe, expect, it } from 'vitest'
import { SseParser } from '../sse.js'
import { OpenAIStreamUsageTracker, openaiUsageFromBody } from './usage.js'

const fixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/${name}`, import.meta.url))
const json = (name: string): unknown => JSON.parse(fixture(name).toString('utf8'))

function feed(tracker: OpenAIStreamUsageTracker, bytes: Buffer): Array<{ data: string; dropped: boolean }> {
  const seen: Array<{ data: string; dropped: boolean }> = []
  const parser = new SseParser((eventName, data) => {
    tracker.onEvent(eventName, data)
    seen.push({ data, dropped: tracker.isInjectedUsageChunk(data) })
  })
  parser.push(bytes)
  parser.end()
  return seen
}

/** The stream cut just before the first line containing `marker`. */
function cutBefore(bytes: Buffer, marker: string): Buffer {
  const at = bytes.indexOf(marker)
  expect(at).toBeGreaterThan(0)
  return bytes.subarray(0, bytes.lastIndexOf('\n', at) + 1)
}

describe('openaiUsageFromBody', () => {
  it('reads chat usage with cached and reasoning tokens as subsets, each counted once', () => {
    const result = openaiUsageFromBody('chat_completions', json('chat-completion-cached-reasoning.json'))
    expect(result).toEqual({
      model: 'o3-mini-2025-01-31',
      usage: {
        inputTokens: 2048,
        cacheReadTokens: 1920,
        cacheWriteTokens: 0,
        cacheWrite1hTokens: 0,
        outputTokens: 300,
        reasoningTokens: 256,
        audioInputTokens: 0,
        audioOutputTokens: 0,
        serviceTier: 'default',
      },
    })
  })

  it('reads the service tier the answer says served it, on chat and responses', () => {
    const usage = { prompt_tokens: 10, completion_tokens: 5 }
    expect(openaiUsageFromBody('chat_completions', { model: 'gpt-4.1', service_tier: 'priority', usage })?.usage.serviceTier).toBe('priority')
    const responses = { model: 'gpt-4.1', service_tier: 'flex', usage: { input_tokens: 10, output_tokens: 5 } }
    expect(openaiUsageFromBody('responses', responses)?.usage.serviceTier).toBe('flex')
    expect(openaiUsageFromBody('chat_completions', { model: 'gpt-4.1', service_tier: null, usage })?.usage).not.toHaveProperty('serviceTier')
  })

  it('reads audio tokens on both sides of a chat call', () => {
    const result = openaiUsageFromBody('chat_completions', json('chat-completion-audio.json'))
    expect(result?.usage).toMatchObject({ inputTokens: 120, audioInputTokens: 40, outputTokens: 85, audioOutputTokens: 70 })
  })

  it('reads responses usage with cached and reasoning tokens', () => {
    const result = openaiUsageFromBody('responses', json('response-cached-reasoning.json'))
    expect(result).toEqual({
      model: 'o4-mini-2025-04-16',
      usage: {
        inputTokens: 1536,
        cacheReadTokens: 1024,
        cacheWriteTokens: 0,
        cacheWrite1hTokens: 0,
        outputTokens: 612,
        reasoningTokens: 576,
        audioInputTokens: 0,
        audioOutputTokens: 0,
      },
    })
  })

  it('reads embeddings usage as input only', () => {
    const result = openaiUsageFromBody('embeddings', json('embeddings.json'))
    expect(result?.usage).toEqual({
      inputTokens: 8,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      cacheWrite1hTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
      audioInputTokens: 0,
      audioOutputTokens: 0,
    })
    expect(result?.model).toBe('text-embedding-3-small')
  })

  it.each([
    ['no body', undefined],
    ['a string', 'oops'],
    ['an error envelope', { error: { message: 'x', type: 'server_error' } }],
    ['usage: null', { model: 'gpt-4o', usage: null }],
  ])('answers undefined for %s', (_name, body) => {
    expect(openaiUsageFromBody('chat_completions', body)).toBeUndefined()
  })

  it('raises a total that an openai-compatible upstream reported smaller than its subset', () => {
    const body = {
      usage: { prompt_tokens: 10, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 30 }, completion_tokens_details: { reasoning_tokens: 20 } },
    }
    const usage = openaiUsageFromBody('chat_completions', body)?.usage
    expect(usage).toMatchObject({ inputTokens: 30, cacheReadTokens: 30, outputTokens: 20, reasoningTokens: 20 })
  })

  it('treats malformed counts as zero rather than throwing', () => {
    const body = { usage: { prompt_tokens: '12', completion_tokens: -3, prompt_tokens_details: null } }
    expect(openaiUsageFromBody('chat_completions', body)?.usage).toMatchObject({ inputTokens: 0, outputTokens: 0 })
  })
})

describe('OpenAIStreamUsageTracker: chat.completions', () => {
  it('reports the usage of the final chunk and marks only that chunk as injected', () => {
    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    tracker.setPromptTokensEstimate(999)
    const seen = feed(tracker, fixture('chat-stream-with-usage.sse'))
    expect(tracker.usage()).toEqual({
      source: 'reported',
      model: 'gpt-4o-mini-2024-07-18',
      usage: {
        inputTokens: 1200,
        cacheReadTokens: 1024,
        cacheWriteTokens: 0,
        cacheWrite1hTokens: 0,
        outputTokens: 14,
        reasoningTokens: 0,
        audioInputTokens: 0,
        audioOutputTokens: 0,
      },
    })
    expect(seen.filter((event) => event.dropped).map((event) => event.data)).toEqual([expect.stringContaining('"choices":[],"usage":{"prompt_tokens":1200')])
  })

  it('recognises the usage-only chunk without having seen it through onEvent', () => {
    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    expect(tracker.isInjectedUsageChunk('{"id":"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}')).toBe(true)
    expect(tracker.isInjectedUsageChunk('{"id":"x","choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}')).toBe(false)
    expect(tracker.isInjectedUsageChunk('[DONE]')).toBe(false)
    // vLLM-style usage-only chunks
    expect(tracker.isInjectedUsageChunk('{"id":"x","choices":null,"usage":{"prompt_tokens":1}}')).toBe(true)
    expect(tracker.isInjectedUsageChunk('{"id":"x","usage":{"prompt_tokens":1}}')).toBe(true)
  })

  it('counts delivered content with the tokenizer when the stream is cut before usage', () => {
    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    tracker.setPromptTokensEstimate(1210)
    feed(tracker, cutBefore(fixture('chat-stream-with-usage.sse'), '"finish_reason":"stop"'))
    const delivered = 'Hello, wörld — how can I help you today? 👋'
    expect(tracker.usage()).toEqual({
      source: 'counted',
      model: 'gpt-4o-mini-2024-07-18',
      usage: expect.objectContaining({ inputTokens: 1210, outputTokens: countTokens(delivered), cacheReadTokens: 0 }),
    })
  })

  it('counts a chunk truncated mid-JSON as nothing, without throwing', () => {
    const bytes = fixture('chat-stream-with-usage.sse')
    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    tracker.setPromptTokensEstimate(5)
    feed(tracker, bytes.subarray(0, bytes.indexOf('how can I help')))
    expect(tracker.usage().source).toBe('counted')
    expect(tracker.usage().usage.outputTokens).toBe(countTokens('Hello, wörld — '))
  })

  it('counts tool-call names and arguments of a stream that never reported usage', () => {
    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    tracker.setPromptTokensEstimate(50)
    feed(tracker, fixture('chat-stream-tool-call.sse'))
    const { usage, source } = tracker.usage()
    expect(source).toBe('counted')
    expect(usage.outputTokens).toBe(countTokens('get_weather{"location": "Paris, France"}'))
  })

  it("answers source 'none' when nothing arrived and no estimate was given", () => {
    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    expect(tracker.usage().source).toBe('none')
    tracker.setPromptTokensEstimate(7)
    expect(tracker.usage()).toMatchObject({ source: 'counted', usage: { inputTokens: 7, outputTokens: 0 } })
  })
})

describe('OpenAIStreamUsageTracker: service tier', () => {
  const chunk = (fields: Record<string, unknown>): string =>
    JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'gpt-4.1', service_tier: 'priority', choices: [], ...fields })

  it('keeps the tier of a chat stream beside its reported usage', () => {
    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    tracker.onEvent(undefined, chunk({ choices: [{ index: 0, delta: { content: 'hi' } }], usage: null }))
    tracker.onEvent(undefined, chunk({ usage: { prompt_tokens: 10, completion_tokens: 1 } }))
    expect(tracker.usage()).toMatchObject({ source: 'reported', usage: { inputTokens: 10, outputTokens: 1, serviceTier: 'priority' } })
  })

  it('keeps the tier of a chat stream cut before its usage', () => {
    const tracker = new OpenAIStreamUsageTracker('chat_completions')
    tracker.setPromptTokensEstimate(10)
    tracker.onEvent(undefined, chunk({ choices: [{ index: 0, delta: { content: 'hi' } }], usage: null }))
    expect(tracker.usage()).toMatchObject({ source: 'counted', usage: { inputTokens: 10, serviceTier: 'priority' } })
  })

  it('takes the tier of a responses stream from its final response', () => {
    const tracker = new OpenAIStreamUsageTracker('responses')
    const response = (serviceTier: string, usage: unknown) => ({ id: 'r', model: 'gpt-4.1', service_tier: serviceTier, usage })
    tracker.onEvent('response.created', JSON.stringify({ type: 'response.created', response: response('auto', null) }))
    tracker.onEvent('response.completed', JSON.stringify({ type: 'response.completed', response: response('priority', { input_tokens: 7, output_tokens: 3 }) }))
    expect(tracker.usage()).toMatchObject({ source: 'reported', usage: { inputTokens: 7, outputTokens: 3, serviceTier: 'priority' } })
  })
})

describe('server-side searches of a Responses answer', () => {
  const output = [
    { type: 'web_search_call', id: 'ws_1', status: 'completed' },
    { type: 'file_search_call', id: 'fs_1', status: 'completed' },
    { type: 'web_search_call', id: 'ws_2', status: 'completed' },
    { type: 'message', id: 'm', content: [] },
  ]
  const usage = { input_tokens: 10, output_tokens: 5 }

  it('counts the web_search_call and file_search_call items of a body', () => {
    expect(openaiUsageFromBody('responses', { model: 'gpt-4.1', output, usage })?.usage).toMatchObject({ webSearches: 2, fileSearches: 1 })
    expect(openaiUsageFromBody('responses', { model: 'gpt-4.1', output: [], usage })?.usage).not.toHaveProperty('webSearches')
  })

  it('counts them in the final response of a stream', () => {
    const tracker = new OpenAIStreamUsageTracker('responses')
    tracker.onEvent('response.completed', JSON.stringify({ type: 'response.completed', response: { model: 'gpt-4.1', output, usage } }))
    expect(tracker.usage()).toMatchObject({ source: 'reported', usage: { webSearches: 2, fileSearches: 1 } })
  })

  it('counts the searches a stream cut before its usage had started', () => {
    const tracker = new OpenAIStreamUsageTracker('responses')
    tracker.setPromptTokensEstimate(10)
    tracker.onEvent('response.web_search_call.in_progress', '{"type":"response.web_search_call.in_progress","item_id":"ws_1"}')
    tracker.onEvent('response.web_search_call.completed', '{"type":"response.web_search_call.completed","item_id":"ws_1"}')
    tracker.onEvent('response.file_search_call.in_progress', '{"type":"response.file_search_call.in_progress","item_id":"fs_1"}')
    expect(tracker.usage()).toMatchObject({ source: 'counted', usage: { webSearches: 1, fileSearches: 1 } })
  })
})

describe('OpenAIStreamUsageTracker: responses', () => {
  it('reports response.completed usage and injects nothing', () => {
    const tracker = new OpenAIStreamUsageTracker('responses')
    const seen = feed(tracker, fixture('responses-stream.sse'))
    expect(tracker.usage()).toMatchObject({
      source: 'reported',
      model: 'gpt-4.1-2025-04-14',
      usage: { inputTokens: 2000, cacheReadTokens: 1792, outputTokens: 10, reasoningTokens: 0 },
    })
    expect(seen.some((event) => event.dropped)).toBe(false)
  })

  it('counts output_text deltas when the stream is cut before response.completed', () => {
    const tracker = new OpenAIStreamUsageTracker('responses')
    tracker.setPromptTokensEstimate(1990)
    feed(tracker, cutBefore(fixture('responses-stream.sse'), 'event: response.completed'))
    expect(tracker.usage()).toMatchObject({
      source: 'counted',
      model: 'gpt-4.1-2025-04-14',
      usage: { inputTokens: 1990, outputTokens: countTokens('Hi there, how can I help you today?') },
    })
  })

  it('parses events that arrive without an event: line, by their data type', () => {
    const tracker = new OpenAIStreamUsageTracker('responses')
    tracker.onEvent(undefined, '{"type":"response.output_text.delta","delta":"one two"}')
    tracker.onEvent(undefined, '{"type":"response.output_text.done","text":"one two"}')
    expect(tracker.usage().usage.outputTokens).toBe(countTokens('one two'))
  })
})
