/**
 * Usage measurement for the OpenAI wire format (also spoken by openai-compatible upstreams and the
 * mock): from a JSON body, and from a chat.completions or responses SSE stream as it passes.
 * Normalisation follows `Usage` in ../types.ts: prompt_tokens / input_tokens already include
 * cached tokens, completion_tokens / output_tokens already include reasoning tokens.
 */
import { DeliveredText } from '../count-tokens.js'
import { DeferredEvents } from '../deferred-events.js'
import type { UsageWithModel } from '../usage-with-model.js'
import { asRecord, asString, parseJson, tokenCount, type JsonRecord } from '../json.js'
import { emptyUsage, type Endpoint, type StreamUsageTracker, type Usage, type UsageSource } from '../types.js'

/** Undefined when the body carries no `usage` object (or the endpoint is not an OpenAI one). */
export function openaiUsageFromBody(endpoint: Endpoint, body: unknown): UsageWithModel | undefined {
  const record = asRecord(body)
  if (record === undefined) return undefined
  const wireUsage = asRecord(record['usage'])
  if (wireUsage === undefined) return undefined
  const model = asString(record['model'])
  switch (endpoint) {
    case 'chat_completions':
      return { usage: withServiceTier(usageFromChatUsage(wireUsage), record), model }
    case 'responses':
      return { usage: withServerToolCalls(withServiceTier(usageFromResponsesUsage(wireUsage), record), record['output']), model }
    case 'embeddings':
      return { usage: usageFromEmbeddingsUsage(wireUsage), model }
    case 'messages':
      return undefined
  }
}

/** The usage with the `service_tier` the answer (a body, a chunk, a `response`) says served it, if any. */
function withServiceTier(usage: Usage, answer: JsonRecord): Usage {
  const tier = asString(answer['service_tier'])
  return tier === undefined ? usage : Object.assign({}, usage, { serviceTier: tier })
}

/**
 * The usage with the server-side searches a Responses `output` holds: one `web_search_call` or
 * `file_search_call` item per call, each billed per call on top of tokens.
 */
function withServerToolCalls(usage: Usage, output: unknown): Usage {
  if (!Array.isArray(output)) return usage
  let webSearches = 0
  let fileSearches = 0
  for (const item of output) {
    const type = asRecord(item)?.['type']
    if (type === 'web_search_call') webSearches += 1
    else if (type === 'file_search_call') fileSearches += 1
  }
  return Object.assign(
    {},
    usage,
    webSearches > 0 && { webSearches: Math.max(webSearches, usage.webSearches ?? 0) },
    fileSearches > 0 && { fileSearches: Math.max(fileSearches, usage.fileSearches ?? 0) },
  )
}

/** chat.completions `usage` (also the final chunk of a stream with include_usage). */
export function usageFromChatUsage(wire: JsonRecord): Usage {
  const promptDetails = asRecord(wire['prompt_tokens_details'])
  const completionDetails = asRecord(wire['completion_tokens_details'])
  return normalised(
    {
      inputTokens: tokenCount(wire['prompt_tokens']),
      cacheReadTokens: tokenCount(promptDetails?.['cached_tokens']),
      audioInputTokens: tokenCount(promptDetails?.['audio_tokens']),
      outputTokens: tokenCount(wire['completion_tokens']),
      reasoningTokens: tokenCount(completionDetails?.['reasoning_tokens']),
      audioOutputTokens: tokenCount(completionDetails?.['audio_tokens']),
    },
    promptDetails,
  )
}

/** responses `usage` (also `response.usage` of a response.completed event). */
export function usageFromResponsesUsage(wire: JsonRecord): Usage {
  const inputDetails = asRecord(wire['input_tokens_details'])
  const outputDetails = asRecord(wire['output_tokens_details'])
  return normalised(
    {
      inputTokens: tokenCount(wire['input_tokens']),
      cacheReadTokens: tokenCount(inputDetails?.['cached_tokens']),
      audioInputTokens: 0,
      outputTokens: tokenCount(wire['output_tokens']),
      reasoningTokens: tokenCount(outputDetails?.['reasoning_tokens']),
      audioOutputTokens: 0,
    },
    inputDetails,
  )
}

export function usageFromEmbeddingsUsage(wire: JsonRecord): Usage {
  return Object.assign(emptyUsage(), { inputTokens: tokenCount(wire['prompt_tokens']) })
}

/** The counts read off the wire before cache writes are added and totals checked. */
type WireCounts = Omit<Usage, 'cacheWriteTokens' | 'cacheWrite1hTokens' | 'serviceTier' | 'webSearches' | 'webFetches' | 'fileSearches'>

/**
 * The usage as one object literal in emptyUsage's shape (a literal with a spread in the middle
 * takes V8's slow path), its totals made to hold their parts. The subsets must fit inside their
 * totals. OpenAI itself always reports them that way; an openai-compatible upstream that reports
 * a subset larger than its total has evidently left it out of the total, so the total is raised
 * (never lowered: Tollgate must not under-charge).
 *
 * Cache writes are read as openai-compatible upstreams (routers fronting Anthropic models) report
 * them: a total (`cache_write_tokens`) and, when they split it like Anthropic, `cache_creation`
 * with the 5-minute and 1-hour parts. OpenAI's own caching writes nothing billable.
 */
function normalised(counts: WireCounts, inputDetails: JsonRecord | undefined): Usage {
  const creation = asRecord(inputDetails?.['cache_creation'])
  const fiveMinutes = tokenCount(creation?.['ephemeral_5m_input_tokens'])
  const cacheWrite1hTokens = tokenCount(creation?.['ephemeral_1h_input_tokens'] ?? inputDetails?.['cache_write_1h_tokens'])
  const cacheWriteTokens = Math.max(tokenCount(inputDetails?.['cache_write_tokens']), fiveMinutes + cacheWrite1hTokens)
  const { cacheReadTokens, audioInputTokens, reasoningTokens, audioOutputTokens } = counts
  return {
    inputTokens: Math.max(counts.inputTokens, cacheReadTokens + cacheWriteTokens + audioInputTokens),
    cacheReadTokens,
    cacheWriteTokens,
    cacheWrite1hTokens,
    outputTokens: Math.max(counts.outputTokens, reasoningTokens + audioOutputTokens),
    reasoningTokens,
    audioInputTokens,
    audioOutputTokens,
  }
}

type StreamEndpoint = 'chat_completions' | 'responses'

/** Responses events whose `delta` is model output worth counting when the stream is cut. */
const responsesDeltaEvents: ReadonlySet<string> = new Set([
  'response.output_text.delta',
  'response.refusal.delta',
  'response.function_call_arguments.delta',
  'response.custom_tool_call_input.delta',
  'response.reasoning_text.delta',
  'response.reasoning_summary_text.delta',
  'response.audio.transcript.delta',
])

/** Responses events carrying the whole `response`, with `usage` once it is final. */
const responsesSnapshotEvents: ReadonlySet<string> = new Set([
  'response.created',
  'response.in_progress',
  'response.completed',
  'response.incomplete',
  'response.failed',
])

/**
 * Feed every SSE event of a chat.completions or responses stream. Call `setPromptTokensEstimate`
 * before streaming: a stream cut before its usage arrives is settled at that input estimate plus
 * the output counted from the text delivered (source 'counted'). Reasoning tokens the model spent
 * but did not stream cannot be counted then.
 */
export class OpenAIStreamUsageTracker implements StreamUsageTracker {
  private readonly endpoint: StreamEndpoint
  private readonly delivered: DeliveredText
  private reported: Usage | undefined = undefined
  private model: string | undefined = undefined
  /** Searches started in a Responses stream (their `.in_progress` events): what a stream cut before its usage is charged for. */
  private webSearchesStarted = 0
  private fileSearchesStarted = 0
  /** The `service_tier` the stream says serves it (every chat chunk and every `response` snapshot carry it). */
  private serviceTier: string | undefined = undefined
  private promptTokensEstimate: number | undefined = undefined
  private hasEvents = false
  private lastData: string | undefined = undefined
  private lastDataIsUsageOnly = false
  /** Chat chunks not parsed yet (see onChatEvent). */
  private readonly deferred = new DeferredEvents()

  constructor(endpoint: StreamEndpoint, countScalePercent = 100) {
    this.endpoint = endpoint
    this.delivered = new DeliveredText(countScalePercent)
  }

  setPromptTokensEstimate(inputTokens: number): void {
    this.promptTokensEstimate = tokenCount(inputTokens)
  }

  onEvent(eventName: string | undefined, data: string): void {
    if (data.length === 0) return // comment or keep-alive
    if (this.endpoint === 'chat_completions') this.onChatEvent(data)
    else this.onResponsesEvent(eventName, data)
  }

  hasReportedUsage(): boolean {
    return this.reported !== undefined
  }

  isInjectedUsageChunk(data: string): boolean {
    if (this.endpoint !== 'chat_completions') return false
    if (data === this.lastData) return this.lastDataIsUsageOnly
    if (!data.includes('"usage"')) return false
    const chunk = asRecord(parseJson(data))
    return chunk !== undefined && isUsageOnlyChunk(chunk)
  }

  async countDelivered(): Promise<void> {
    if (this.reported !== undefined) return
    await this.deferred.drainInSlices((event) => this.onDeferred(event))
    await this.delivered.countInSlices()
  }

  /** A kept payload, parsed only now that the stream needs counting. */
  private onDeferred(event: JsonRecord): void {
    if (this.endpoint === 'chat_completions') this.addChatChoices(event)
    else this.addResponsesEvent(event, undefined)
  }

  usage(): { usage: Usage; source: UsageSource; model: string | undefined } {
    if (this.reported !== undefined) {
      const usage = this.serviceTier === undefined ? this.reported : Object.assign({}, this.reported, { serviceTier: this.serviceTier })
      return { usage, source: 'reported', model: this.model }
    }
    if (!this.hasEvents && this.promptTokensEstimate === undefined) {
      return { usage: emptyUsage(), source: 'none', model: this.model }
    }
    this.deferred.drain((event) => this.onDeferred(event))
    const usage: Usage = Object.assign(
      emptyUsage(),
      { inputTokens: this.promptTokensEstimate ?? 0, outputTokens: this.delivered.countTokens() + this.deferred.overflowChars },
      this.serviceTier !== undefined && { serviceTier: this.serviceTier },
      this.webSearchesStarted > 0 && { webSearches: this.webSearchesStarted },
      this.fileSearchesStarted > 0 && { fileSearches: this.fileSearchesStarted },
    )
    return { usage, source: 'counted', model: this.model }
  }

  /**
   * Hot path: most chunks carry only text, needed only if the stream is cut before its usage
   * arrives. So a chunk is parsed now only when it is the first (the model name) or carries a
   * usage object; the others are kept as text (bounded) and parsed in `usage()` only if needed.
   */
  private onChatEvent(data: string): void {
    if (data.startsWith('[DONE]')) return
    this.lastData = data
    this.lastDataIsUsageOnly = false
    if (this.hasEvents && !USAGE_OBJECT.test(data)) {
      this.deferred.push(data)
      return
    }
    const chunk = asRecord(parseJson(data))
    if (chunk === undefined) return
    this.hasEvents = true
    this.model ??= asString(chunk['model'])
    this.serviceTier = asString(chunk['service_tier']) ?? this.serviceTier
    const wireUsage = asRecord(chunk['usage'])
    if (wireUsage !== undefined) {
      this.reported = usageFromChatUsage(wireUsage)
      this.lastDataIsUsageOnly = isUsageOnlyChunk(chunk)
    }
    this.addChatChoices(chunk)
  }

  private addChatChoices(chunk: JsonRecord): void {
    const choices = chunk['choices']
    if (!Array.isArray(choices)) return
    for (const choice of choices) {
      const delta = asRecord(asRecord(choice)?.['delta'])
      if (delta !== undefined) this.addChatDelta(delta)
    }
  }

  private addChatDelta(delta: JsonRecord): void {
    this.addText(delta['content'])
    this.addText(delta['refusal'])
    this.addText(delta['reasoning_content']) // openai-compatible reasoning models (DeepSeek, vLLM)
    const functionCall = asRecord(delta['function_call'])
    if (functionCall !== undefined) {
      this.addText(functionCall['name'])
      this.addText(functionCall['arguments'])
    }
    const toolCalls = delta['tool_calls']
    if (!Array.isArray(toolCalls)) return
    for (const toolCall of toolCalls) {
      const fn = asRecord(asRecord(toolCall)?.['function'])
      if (fn === undefined) continue
      this.addText(fn['name'])
      this.addText(fn['arguments'])
    }
  }

  private onResponsesEvent(eventName: string | undefined, data: string): void {
    // Skip parsing events that can matter neither for usage nor for counting (e.g. the `.done`
    // events, which repeat the whole text).
    if (eventName !== undefined && !responsesDeltaEvents.has(eventName) && !responsesSnapshotEvents.has(eventName)) {
      this.hasEvents = true
      if (eventName === 'response.web_search_call.in_progress') this.webSearchesStarted += 1
      else if (eventName === 'response.file_search_call.in_progress') this.fileSearchesStarted += 1
      return
    }
    // Deltas matter only if the stream is cut before `response.completed`: kept as text for then.
    if (eventName !== undefined && responsesDeltaEvents.has(eventName)) {
      this.hasEvents = true
      this.deferred.push(data)
      return
    }
    const event = asRecord(parseJson(data))
    if (event === undefined) return
    this.hasEvents = true
    this.addResponsesEvent(event, eventName)
  }

  private addResponsesEvent(event: JsonRecord, eventName: string | undefined): void {
    const type = asString(event['type']) ?? eventName
    if (type === undefined) return
    if (responsesDeltaEvents.has(type)) {
      this.addText(event['delta'])
      return
    }
    if (!responsesSnapshotEvents.has(type)) return
    const response = asRecord(event['response'])
    if (response === undefined) return
    this.model = asString(response['model']) ?? this.model
    this.serviceTier = asString(response['service_tier']) ?? this.serviceTier
    const wireUsage = asRecord(response['usage'])
    if (wireUsage !== undefined) this.reported = withServerToolCalls(usageFromResponsesUsage(wireUsage), response['output'])
  }

  private addText(value: unknown): void {
    if (typeof value === 'string') this.delivered.add(value)
  }
}

/** A chunk with a usage object (not `"usage": null`, which OpenAI sends on every other chunk). */
const USAGE_OBJECT = /"usage"\s*:\s*\{/

/** OpenAI sends `"choices": []`; some openai-compatible servers (vLLM) send null or omit it. */
function isUsageOnlyChunk(chunk: JsonRecord): boolean {
  const choices = chunk['choices']
  const hasNoChoices = choices === undefined || choices === null || (Array.isArray(choices) && choices.length === 0)
  return hasNoChoices && asRecord(chunk['usage']) !== undefined
}
