/**
 * Anthropic Messages wire shapes the mock answers with: the message body and the SSE events of a
 * stream (message_start … message_stop), as the real API sends them and `@anthropic-ai/sdk` parses.
 */
import { lastUserMessage, planMockReply, type MockReplyPlan } from './mock-reply.js'
import { capOf } from './mock-openai.js'

type Body = Record<string, unknown>

export function planMessagesReply(body: Body, rawBody: string): MockReplyPlan {
  return planMockReply({
    model: String(body['model']),
    promptValues: [body['system'], body['messages'], body['tools']],
    lastUserValue: lastUserMessage(body['messages']),
    outputTokensCap: capOf(body['max_tokens']),
    hasCacheControl: rawBody.includes('"cache_control"'),
  })
}

/** Anthropic's `input_tokens` excludes the cache reads and writes reported beside it. */
function inputUsage(plan: MockReplyPlan): Body {
  return {
    input_tokens: plan.inputTokens - plan.cacheReadTokens - plan.cacheWriteTokens,
    cache_creation_input_tokens: plan.cacheWriteTokens,
    cache_read_input_tokens: plan.cacheReadTokens,
  }
}

/** `server_tool_use` as the API reports it: in the body, and cumulative in a stream's `message_delta`. */
function serverToolUse(plan: MockReplyPlan): Body {
  return plan.webSearchRequests === undefined ? {} : { server_tool_use: { web_search_requests: plan.webSearchRequests, web_fetch_requests: 0 } }
}

function messageUsage(plan: MockReplyPlan, outputTokens: number): Body {
  return {
    ...inputUsage(plan),
    cache_creation: { ephemeral_5m_input_tokens: plan.cacheWriteTokens - plan.cacheWrite1hTokens, ephemeral_1h_input_tokens: plan.cacheWrite1hTokens },
    output_tokens: outputTokens,
    ...serverToolUse(plan),
    service_tier: 'standard',
  }
}

function stopReason(plan: MockReplyPlan): string {
  return plan.isTruncated ? 'max_tokens' : 'end_turn'
}

export function messageBody(plan: MockReplyPlan, id: string): Body {
  return {
    id,
    type: 'message',
    role: 'assistant',
    model: plan.model,
    content: [{ type: 'text', text: plan.text }],
    stop_reason: stopReason(plan),
    stop_sequence: null,
    ...(plan.reportsUsage ? { usage: messageUsage(plan, plan.outputTokens) } : {}),
  }
}

/** The `[event, data]` pairs of a Messages stream. */
export function messageStreamEvents(plan: MockReplyPlan, id: string): Array<[string, Body]> {
  const events: Array<[string, Body]> = []
  const add = (type: string, fields: Body): void => {
    events.push([type, { type, ...fields }])
  }
  add('message_start', {
    message: {
      id,
      type: 'message',
      role: 'assistant',
      model: plan.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // Without usage: what some Anthropic-compatible upstreams send, no input count at all.
      ...(plan.reportsUsage
        ? { usage: { ...messageUsage(plan, 1), ...(plan.webSearchRequests !== undefined && { server_tool_use: { web_search_requests: 0 } }) } }
        : {}),
    },
  })
  add('content_block_start', { index: 0, content_block: { type: 'text', text: '' } })
  add('ping', {})
  plan.words.forEach((word, i) => {
    add('content_block_delta', { index: 0, delta: { type: 'text_delta', text: i === 0 ? word : ` ${word}` } })
  })
  add('content_block_stop', { index: 0 })
  add('message_delta', {
    delta: { stop_reason: stopReason(plan), stop_sequence: null },
    // Current API versions repeat the cumulative input counters here, beside the output total.
    usage: plan.reportsUsage ? { ...inputUsage(plan), output_tokens: plan.outputTokens, ...serverToolUse(plan) } : { output_tokens: plan.outputTokens },
  })
  add('message_stop', {})
  return events
}

export const mockAnthropicModels = ['claude-opus-4-1', 'claude-sonnet-4-5', 'claude-haiku-4-5']

export function anthropicModelsBody(): Body {
  const data = mockAnthropicModels.map((id) => ({
    type: 'model',
    id,
    display_name: id,
    created_at: '2025-01-01T00:00:00Z',
  }))
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null }
}

export function anthropicErrorBody(type: string, message: string, requestId: string): Body {
  return { type: 'error', error: { type, message }, request_id: requestId }
}
