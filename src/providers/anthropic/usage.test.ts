/**
 * Anthropic usage extraction: `input_tokens` excludes cache reads and writes, so the adapter adds
 * them; each token must be counted exactly once. Streams are fed through the real SSE parser,
 * whole and cut at chosen points.
 */
import { readFileSync } from 'node:fs'
import { countTokens } from 'gpt-tokenizer'
import { describe, expect, it } from 'vitest'
import { SseParser } from '../sse.js'
import { AnthropicStreamUsageTracker, anthropicUsageFromBody } from './usage.js'

const fixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/${name}`, import.meta.url))

function feed(tracker: AnthropicStreamUsageTracker, bytes: Buffer): void {
  const parser = new SseParser((eventName, data) => tracker.onEvent(eventName, data))
  parser.push(bytes)
  parser.end()
}

function cutBefore(bytes: Buffer, marker: string): Buffer {
  const at = bytes.indexOf(marker)
  expect(at).toBeGreaterThan(0)
  return bytes.subarray(0, bytes.lastIndexOf('\n', at) + 1)
}

describe('anthropicUsageFromBody', () => {
  it('adds cache reads and cache writes to input_tokens, and keeps them as subsets', () => {
    const body: unknown = JSON.parse(fixture('message-cache.json').toString('utf8'))
    expect(anthropicUsageFromBody(body)).toEqual({
      model: 'claude-sonnet-4-5-20250929',
      usage: {
        inputTokens: 21 + 188086 + 1500,
        cacheReadTokens: 1500,
        cacheWriteTokens: 188086,
        cacheWrite1hTokens: 0,
        outputTokens: 393,
        reasoningTokens: 0,
        audioInputTokens: 0,
        audioOutputTokens: 0,
      },
    })
  })

  it('reads thinking tokens from output_tokens_details as a subset of output', () => {
    const body = {
      model: 'claude-opus-4-1',
      usage: {
        input_tokens: 10,
        cache_read_input_tokens: null,
        cache_creation_input_tokens: null,
        output_tokens: 500,
        output_tokens_details: { thinking_tokens: 420 },
      },
    }
    expect(anthropicUsageFromBody(body)?.usage).toMatchObject({ inputTokens: 10, cacheReadTokens: 0, outputTokens: 500, reasoningTokens: 420 })
  })

  it('answers undefined for an error envelope', () => {
    expect(anthropicUsageFromBody({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })).toBeUndefined()
  })
})

describe('AnthropicStreamUsageTracker', () => {
  it('combines message_start input usage with the final message_delta output count', () => {
    const tracker = new AnthropicStreamUsageTracker()
    feed(tracker, fixture('messages-stream.sse'))
    expect(tracker.usage()).toEqual({
      source: 'reported',
      model: 'claude-sonnet-4-5-20250929',
      usage: {
        inputTokens: 25 + 1000 + 3000,
        cacheReadTokens: 3000,
        cacheWriteTokens: 1000,
        cacheWrite1hTokens: 0,
        outputTokens: 215,
        reasoningTokens: 0,
        audioInputTokens: 0,
        audioOutputTokens: 0,
      },
    })
    expect(tracker.isInjectedUsageChunk()).toBe(false)
  })

  it('lets cumulative input counters in message_delta replace those of message_start', () => {
    const tracker = new AnthropicStreamUsageTracker()
    tracker.onEvent(
      'message_start',
      '{"type":"message_start","message":{"model":"claude-haiku-4-5","usage":{"input_tokens":100,"cache_read_input_tokens":0,"output_tokens":1}}}',
    )
    tracker.onEvent(
      'message_delta',
      '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":120,"cache_read_input_tokens":null,"output_tokens":9}}',
    )
    expect(tracker.usage()).toMatchObject({ source: 'reported', usage: { inputTokens: 120, outputTokens: 9 } })
  })

  it('counts thinking and text deltas when the stream is cut before message_delta', () => {
    const tracker = new AnthropicStreamUsageTracker()
    feed(tracker, cutBefore(fixture('messages-stream.sse'), 'event: message_delta'))
    const counted = countTokens('Let me work out 27 * 453 step by step.27 * 453 = 12,231')
    expect(tracker.usage()).toEqual({
      source: 'counted',
      model: 'claude-sonnet-4-5-20250929',
      usage: expect.objectContaining({ inputTokens: 4025, cacheReadTokens: 3000, cacheWriteTokens: 1000, cacheWrite1hTokens: 0, outputTokens: counted }),
    })
  })

  it('keeps the last reported output count when it exceeds the counted one', () => {
    const tracker = new AnthropicStreamUsageTracker()
    tracker.onEvent('message_start', '{"type":"message_start","message":{"model":"claude-haiku-4-5","usage":{"input_tokens":100,"output_tokens":80}}}')
    tracker.onEvent('content_block_delta', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}')
    expect(tracker.usage()).toMatchObject({ source: 'counted', usage: { inputTokens: 100, outputTokens: 80 } })
  })

  it('counts tool-use input_json_delta and falls back to the prompt estimate without message_start', () => {
    const tracker = new AnthropicStreamUsageTracker()
    tracker.setPromptTokensEstimate(300)
    tracker.onEvent(
      'content_block_delta',
      '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Oslo\\"}"}}',
    )
    expect(tracker.usage()).toMatchObject({ source: 'counted', usage: { inputTokens: 300, outputTokens: countTokens('{"city": "Oslo"}') } })
  })

  it("answers source 'none' for a stream that delivered nothing", () => {
    expect(new AnthropicStreamUsageTracker().usage().source).toBe('none')
  })
})

describe('server tool use', () => {
  it('reads the web searches and fetches of a body beside its tokens', () => {
    const body = {
      model: 'claude-haiku-4-5',
      usage: { input_tokens: 100, output_tokens: 20, server_tool_use: { web_search_requests: 25, web_fetch_requests: 2 } },
    }
    expect(anthropicUsageFromBody(body)?.usage).toMatchObject({ inputTokens: 100, outputTokens: 20, webSearches: 25, webFetches: 2 })
    expect(anthropicUsageFromBody({ usage: { input_tokens: 1, output_tokens: 1 } })?.usage).not.toHaveProperty('webSearches')
  })

  it('keeps the count a stream reports in message_delta (message_start says 0)', () => {
    const tracker = new AnthropicStreamUsageTracker()
    const start = {
      type: 'message_start',
      message: { model: 'claude-haiku-4-5', usage: { input_tokens: 100, output_tokens: 1, server_tool_use: { web_search_requests: 0 } } },
    }
    tracker.onEvent('message_start', JSON.stringify(start))
    tracker.onEvent('content_block_delta', JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'hi' } }))
    tracker.onEvent(
      'message_delta',
      JSON.stringify({ type: 'message_delta', delta: {}, usage: { output_tokens: 20, server_tool_use: { web_search_requests: 25 } } }),
    )
    expect(tracker.usage()).toMatchObject({ source: 'reported', usage: { inputTokens: 100, outputTokens: 20, webSearches: 25 } })
  })

  it('keeps an earlier count when the last message_delta leaves server_tool_use out', () => {
    const tracker = new AnthropicStreamUsageTracker()
    tracker.onEvent('message_start', JSON.stringify({ type: 'message_start', message: { usage: { input_tokens: 5, output_tokens: 1 } } }))
    tracker.onEvent('message_delta', JSON.stringify({ type: 'message_delta', usage: { output_tokens: 3, server_tool_use: { web_search_requests: 4 } } }))
    tracker.onEvent('message_delta', JSON.stringify({ type: 'message_delta', usage: { output_tokens: 9 } }))
    expect(tracker.usage().usage).toMatchObject({ outputTokens: 9, webSearches: 4 })
  })
})
