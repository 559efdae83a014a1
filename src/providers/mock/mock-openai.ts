/**
 * OpenAI wire shapes the mock answers with: chat.completions, responses and embeddings bodies, and
 * the SSE events of their streams, shaped like the real API's (and what the `openai` SDK parses).
 */
import { lastUserMessage, planMockReply, type MockReplyPlan } from './mock-reply.js'

type Body = Record<string, unknown>

export interface MockIds {
  next(prefix: string): string
}

export function planChatReply(body: Body): MockReplyPlan {
  const plan = planMockReply({
    model: String(body['model']),
    promptValues: [body['messages'], body['tools']],
    lastUserValue: lastUserMessage(body['messages']),
    outputTokensCap: capOf(body['max_completion_tokens']) ?? capOf(body['max_tokens']),
    hasCacheControl: false,
  })
  // `n` answers, each billed: the same reply n times, n times the output.
  const n = capOf(body['n'])
  return n !== undefined && n > 1 ? { ...plan, choices: Math.min(n, 128) } : plan
}

export function planResponsesReply(body: Body): MockReplyPlan {
  const input = body['input']
  return planMockReply({
    model: String(body['model']),
    promptValues: [body['instructions'], input, body['tools']],
    lastUserValue: typeof input === 'string' ? input : lastUserMessage(input),
    outputTokensCap: capOf(body['max_output_tokens']),
    hasCacheControl: false,
  })
}

export function capOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined
}

function chatUsage(plan: MockReplyPlan): Body {
  const choices = plan.choices ?? 1
  return {
    prompt_tokens: plan.inputTokens,
    completion_tokens: plan.outputTokens * choices,
    total_tokens: plan.inputTokens + plan.outputTokens * choices,
    prompt_tokens_details: { cached_tokens: plan.cacheReadTokens, audio_tokens: plan.audioInputTokens, ...cacheWrites(plan) },
    completion_tokens_details: {
      reasoning_tokens: plan.reasoningTokens * choices,
      audio_tokens: plan.audioOutputTokens * choices,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  }
}

/** Cache writes as openai-compatible routers fronting Anthropic models report them (OpenAI itself never does). */
function cacheWrites(plan: MockReplyPlan): Body {
  if (plan.cacheWriteTokens === 0) return {}
  return {
    cache_write_tokens: plan.cacheWriteTokens,
    cache_creation: { ephemeral_5m_input_tokens: plan.cacheWriteTokens - plan.cacheWrite1hTokens, ephemeral_1h_input_tokens: plan.cacheWrite1hTokens },
  }
}

const systemFingerprint = 'fp_tollgate_mock'

export function chatCompletionBody(plan: MockReplyPlan, id: string, createdS: number): Body {
  return {
    id,
    object: 'chat.completion',
    created: createdS,
    model: plan.model,
    choices: Array.from({ length: plan.choices ?? 1 }, (_, index) => ({
      index,
      message: { role: 'assistant', content: plan.text, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: plan.isTruncated ? 'length' : 'stop',
    })),
    ...(plan.reportsUsage ? { usage: chatUsage(plan) } : {}),
    service_tier: plan.serviceTier ?? 'default',
    system_fingerprint: systemFingerprint,
  }
}

/**
 * The `data:` payloads of a chat stream, `[DONE]` excluded. With include_usage every chunk carries
 * `"usage": null` and a final chunk with empty `choices` carries the usage, as OpenAI does.
 */
export function chatCompletionChunks(plan: MockReplyPlan, id: string, createdS: number, askedForUsage: boolean): string[] {
  // An upstream that reports no usage ignores include_usage altogether.
  const includeUsage = askedForUsage && plan.reportsUsage
  const chunk = (delta: Body, finishReason: string | null): string =>
    JSON.stringify({
      id,
      object: 'chat.completion.chunk',
      created: createdS,
      model: plan.model,
      service_tier: plan.serviceTier ?? 'default',
      system_fingerprint: systemFingerprint,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {}),
    })
  const chunks = [chunk({ role: 'assistant', content: '', refusal: null }, null)]
  for (const [i, word] of plan.words.entries()) chunks.push(chunk({ content: i === 0 ? word : ` ${word}` }, null))
  chunks.push(chunk({}, plan.isTruncated ? 'length' : 'stop'))
  if (includeUsage) {
    chunks.push(
      JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created: createdS,
        model: plan.model,
        service_tier: plan.serviceTier ?? 'default',
        system_fingerprint: systemFingerprint,
        choices: [],
        usage: chatUsage(plan),
      }),
    )
  }
  return chunks
}

interface ResponseParts {
  plan: MockReplyPlan
  body: Body
  responseId: string
  messageId: string
  reasoningId: string
  createdS: number
}

function responsesUsage(plan: MockReplyPlan): Body {
  return {
    input_tokens: plan.inputTokens,
    input_tokens_details: { cached_tokens: plan.cacheReadTokens, ...cacheWrites(plan) },
    output_tokens: plan.outputTokens,
    output_tokens_details: { reasoning_tokens: plan.reasoningTokens },
    total_tokens: plan.inputTokens + plan.outputTokens,
  }
}

function outputText(text: string): Body {
  return { type: 'output_text', annotations: [], logprobs: [], text }
}

function messageItem(parts: ResponseParts, status: string, content: Body[]): Body {
  return { id: parts.messageId, type: 'message', status, content, role: 'assistant' }
}

function reasoningItem(parts: ResponseParts): Body {
  return { id: parts.reasoningId, type: 'reasoning', summary: [] }
}

function responseObject(parts: ResponseParts, status: string, output: Body[], usage: Body | null): Body {
  const { plan, body } = parts
  const isIncomplete = status === 'incomplete'
  return {
    id: parts.responseId,
    object: 'response',
    created_at: parts.createdS,
    status,
    background: false,
    error: null,
    incomplete_details: isIncomplete ? { reason: 'max_output_tokens' } : null,
    instructions: body['instructions'] ?? null,
    max_output_tokens: capOf(body['max_output_tokens']) ?? null,
    model: plan.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: plan.reasoningTokens > 0 ? 'medium' : null, summary: null },
    service_tier: plan.serviceTier ?? 'default',
    store: true,
    temperature: 1,
    text: { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage,
    user: null,
    metadata: {},
  }
}

function finalOutput(parts: ResponseParts): Body[] {
  const status = parts.plan.isTruncated ? 'incomplete' : 'completed'
  const message = messageItem(parts, status, [outputText(parts.plan.text)])
  const searches = Array.from({ length: parts.plan.webSearchRequests ?? 0 }, (_, i) => ({
    id: `ws_${parts.responseId}_${i}`,
    type: 'web_search_call',
    status: 'completed',
    action: { type: 'search', query: 'tollgate' },
  }))
  return [...searches, ...(parts.plan.reasoningTokens > 0 ? [reasoningItem(parts)] : []), message]
}

export function responseBody(parts: ResponseParts): Body {
  const status = parts.plan.isTruncated ? 'incomplete' : 'completed'
  return responseObject(parts, status, finalOutput(parts), parts.plan.reportsUsage ? responsesUsage(parts.plan) : null)
}

export function newResponseParts(plan: MockReplyPlan, body: Body, ids: MockIds, createdS: number): ResponseParts {
  return {
    plan,
    body,
    responseId: ids.next('resp_'),
    messageId: ids.next('msg_'),
    reasoningId: ids.next('rs_'),
    createdS,
  }
}

/** The `[event, data]` pairs of a responses stream, in the order the real API sends them. */
export function responseStreamEvents(parts: ResponseParts): Array<[string, Body]> {
  const { plan } = parts
  const events: Array<[string, Body]> = []
  const add = (type: string, fields: Body): void => {
    events.push([type, { type, sequence_number: events.length, ...fields }])
  }
  const inProgress = responseObject(parts, 'in_progress', [], null)
  add('response.created', { response: inProgress })
  add('response.in_progress', { response: inProgress })
  let outputIndex = 0
  if (plan.reasoningTokens > 0) {
    add('response.output_item.added', { output_index: 0, item: reasoningItem(parts) })
    add('response.output_item.done', { output_index: 0, item: reasoningItem(parts) })
    outputIndex = 1
  }
  const at = { item_id: parts.messageId, output_index: outputIndex, content_index: 0 }
  add('response.output_item.added', { output_index: outputIndex, item: messageItem(parts, 'in_progress', []) })
  add('response.content_part.added', { ...at, part: outputText('') })
  plan.words.forEach((word, i) => {
    add('response.output_text.delta', { ...at, delta: i === 0 ? word : ` ${word}`, logprobs: [] })
  })
  add('response.output_text.done', { ...at, text: plan.text, logprobs: [] })
  add('response.content_part.done', { ...at, part: outputText(plan.text) })
  const status = plan.isTruncated ? 'incomplete' : 'completed'
  add('response.output_item.done', {
    output_index: outputIndex,
    item: messageItem(parts, status, [outputText(plan.text)]),
  })
  add(plan.isTruncated ? 'response.incomplete' : 'response.completed', { response: responseBody(parts) })
  return events
}

const embeddingDimensionsDefault = 1536
const embeddingDimensionsMax = 3072

export interface EmbeddingsReply {
  body: Body
  inputTokens: number
}

/**
 * One deterministic vector per input, seeded from its text. Honours `encoding_format: base64`
 * (little-endian float32), which the `openai` SDK requests by default and decodes itself.
 */
export function embeddingsBody(body: Body): EmbeddingsReply {
  const rawInput = body['input']
  const inputs: unknown[] = Array.isArray(rawInput) && !rawInput.every((item) => typeof item === 'number') ? rawInput : [rawInput]
  const model = String(body['model'])
  const requested = capOf(body['dimensions'])
  const dimensions = Math.min(
    embeddingDimensionsMax,
    requested !== undefined && requested > 0 ? requested : model.endsWith('-large') ? 3072 : embeddingDimensionsDefault,
  )
  const isBase64 = body['encoding_format'] === 'base64'
  let inputTokens = 0
  const data = inputs.map((input, index) => {
    const text = typeof input === 'string' ? input : JSON.stringify(input ?? '')
    inputTokens += Array.isArray(input) ? input.length : Math.max(1, Math.ceil(text.length / 4))
    const vector = embeddingVector(text, dimensions)
    return {
      object: 'embedding',
      index,
      embedding: isBase64 ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64') : Array.from(vector),
    }
  })
  return {
    body: { object: 'list', data, model, usage: { prompt_tokens: inputTokens, total_tokens: inputTokens } },
    inputTokens,
  }
}

function embeddingVector(text: string, dimensions: number): Float32Array {
  // FNV-1a seeds a xorshift generator: same text, same vector, no real maths needed.
  let seed = 0x811c9dc5
  for (let i = 0; i < text.length; i++) seed = Math.imul(seed ^ text.charCodeAt(i), 0x01000193)
  const vector = new Float32Array(dimensions)
  let state = seed >>> 0 || 1
  for (let i = 0; i < dimensions; i++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    vector[i] = ((state >>> 0) / 0xffffffff) * 2 - 1
  }
  return vector
}

export const mockOpenAIModels = [
  'gpt-4o',
  'gpt-4o-mini',
  'gpt-4.1',
  'gpt-4.1-mini',
  'gpt-5',
  'gpt-5-mini',
  'o3',
  'o4-mini',
  'text-embedding-3-small',
  'text-embedding-3-large',
]

export function modelsBody(): Body {
  return {
    object: 'list',
    data: mockOpenAIModels.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'tollgate-mock' })),
  }
}

export function openaiErrorBody(message: string, type: string, code: string | null, param: string | null = null): Body {
  return { error: { message, type, param, code } }
}
