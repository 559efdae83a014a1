/**
 * Usage measurement for the Anthropic Messages API, from a JSON body and from its SSE stream.
 * Anthropic's `input_tokens` EXCLUDES cache reads and cache writes, so the three are added to get
 * `Usage.inputTokens` (every token counted once, see ../types.ts). `output_tokens` includes
 * thinking tokens; `output_tokens_details.thinking_tokens` is their subset.
 */
import { DeliveredText } from '../count-tokens.js'
import { DeferredEvents } from '../deferred-events.js'
import type { UsageWithModel } from '../usage-with-model.js'
import { asRecord, asString, parseJson, tokenCount, type JsonRecord } from '../json.js'
import { emptyUsage, type StreamUsageTracker, type Usage, type UsageSource } from '../types.js'

/** Undefined when the body carries no `usage` object. */
export function anthropicUsageFromBody(body: unknown): UsageWithModel | undefined {
  const record = asRecord(body)
  if (record === undefined) return undefined
  const wireUsage = asRecord(record['usage'])
  if (wireUsage === undefined) return undefined
  return { usage: usageFromAnthropicUsage(wireUsage), model: asString(record['model']) }
}

export function usageFromAnthropicUsage(wire: JsonRecord): Usage {
  const cacheReadTokens = tokenCount(wire['cache_read_input_tokens'])
  // `cache_creation` splits the writes by lifetime; 1-hour writes cost more than 5-minute ones.
  const creation = asRecord(wire['cache_creation'])
  const cacheWrite1hTokens = tokenCount(creation?.['ephemeral_1h_input_tokens'])
  const cacheWriteTokens = Math.max(tokenCount(wire['cache_creation_input_tokens']), tokenCount(creation?.['ephemeral_5m_input_tokens']) + cacheWrite1hTokens)
  const outputTokens = tokenCount(wire['output_tokens'])
  const thinkingTokens = tokenCount(asRecord(wire['output_tokens_details'])?.['thinking_tokens'])
  // Server tools billed per call on top of tokens (cumulative counts, like the token counters).
  const serverTools = asRecord(wire['server_tool_use'])
  const webSearches = tokenCount(serverTools?.['web_search_requests'])
  const webFetches = tokenCount(serverTools?.['web_fetch_requests'])
  return Object.assign(
    emptyUsage(),
    {
      inputTokens: tokenCount(wire['input_tokens']) + cacheReadTokens + cacheWriteTokens,
      cacheReadTokens,
      cacheWriteTokens,
      cacheWrite1hTokens,
      outputTokens: Math.max(outputTokens, thinkingTokens),
      reasoningTokens: thinkingTokens,
    },
    webSearches > 0 && { webSearches },
    webFetches > 0 && { webFetches },
  )
}

/**
 * Feed every SSE event of a Messages stream. `message_start` reports the input usage and
 * `message_delta` the cumulative output (and, in newer API versions, cumulative input) usage.
 * Usage counts as 'reported' once a `message_delta` with usage arrived. A stream cut before that
 * is 'counted': input from `message_start` (or the prompt estimate when even that is missing),
 * output the larger of the last reported count and the tokens counted in the delivered deltas.
 */
export class AnthropicStreamUsageTracker implements StreamUsageTracker {
  private readonly delivered: DeliveredText
  private readonly deferred = new DeferredEvents()
  private wireUsage: JsonRecord | undefined = undefined
  private isFinal = false
  private model: string | undefined = undefined
  private promptTokensEstimate: number | undefined = undefined
  private hasEvents = false

  /** Claude's tokenizer is not o200k: callers pass the scale that keeps counts an upper bound. */
  constructor(countScalePercent = 100) {
    this.delivered = new DeliveredText(countScalePercent)
  }

  setPromptTokensEstimate(inputTokens: number): void {
    this.promptTokensEstimate = tokenCount(inputTokens)
  }

  onEvent(eventName: string | undefined, data: string): void {
    if (data.length === 0) return
    // `ping`, the `*_stop` events and `content_block_start` carry nothing to measure.
    if (eventName !== undefined && !measuredEvents.has(eventName)) {
      this.hasEvents = true
      return
    }
    // Text deltas matter only if the stream is cut before its final usage: kept as text for then.
    if (eventName === 'content_block_delta') {
      this.hasEvents = true
      this.deferred.push(data)
      return
    }
    const event = asRecord(parseJson(data))
    if (event === undefined) return
    this.hasEvents = true
    switch (asString(event['type']) ?? eventName) {
      case 'message_start':
        this.onMessageStart(event)
        return
      case 'content_block_delta':
        this.onContentBlockDelta(event)
        return
      case 'message_delta': {
        const wireUsage = asRecord(event['usage'])
        if (wireUsage === undefined) return
        // Later counters are cumulative totals: each present field replaces the earlier one.
        this.wireUsage = Object.assign({}, this.wireUsage, withoutNulls(wireUsage))
        this.isFinal = true
        return
      }
      default:
        return
    }
  }

  /** Anthropic streams carry usage unasked: nothing is ever injected. */
  isInjectedUsageChunk(): boolean {
    return false
  }

  /** The final `message_delta` arrived, and some event reported the input (`message_start`, or the delta in newer API versions). */
  hasReportedUsage(): boolean {
    return this.isFinal && this.wireUsage !== undefined && this.wireUsage['input_tokens'] !== undefined
  }

  async countDelivered(): Promise<void> {
    if (this.hasReportedUsage()) return
    await this.deferred.drainInSlices((event) => this.onContentBlockDelta(event))
    await this.delivered.countInSlices()
  }

  usage(): { usage: Usage; source: UsageSource; model: string | undefined } {
    const reported = this.wireUsage === undefined ? undefined : usageFromAnthropicUsage(this.wireUsage)
    if (reported !== undefined && this.hasReportedUsage()) {
      return { usage: reported, source: 'reported', model: this.model }
    }
    if (!this.hasEvents && this.promptTokensEstimate === undefined) {
      return { usage: emptyUsage(), source: 'none', model: this.model }
    }
    this.deferred.drain((event) => this.onContentBlockDelta(event))
    // Input never reported (no usage in message_start): counted from the prompt, never taken as 0.
    const inputReported = this.wireUsage?.['input_tokens'] !== undefined
    const base = reported ?? emptyUsage()
    const usage: Usage = inputReported
      ? base
      : Object.assign({}, base, { inputTokens: Math.max(base.inputTokens, base.cacheReadTokens + base.cacheWriteTokens + (this.promptTokensEstimate ?? 0)) })
    const outputTokens = Math.max(usage.outputTokens, this.delivered.countTokens() + this.deferred.overflowChars)
    return { usage: Object.assign({}, usage, { outputTokens }), source: 'counted', model: this.model }
  }

  private onMessageStart(event: JsonRecord): void {
    const message = asRecord(event['message'])
    if (message === undefined) return
    this.model = asString(message['model']) ?? this.model
    const wireUsage = asRecord(message['usage'])
    if (wireUsage !== undefined) this.wireUsage = withoutNulls(wireUsage)
  }

  private onContentBlockDelta(event: JsonRecord): void {
    const delta = asRecord(event['delta'])
    if (delta === undefined) return
    switch (delta['type']) {
      case 'text_delta':
        this.addText(delta['text'])
        return
      case 'thinking_delta':
        this.addText(delta['thinking'])
        return
      case 'input_json_delta':
        this.addText(delta['partial_json'])
        return
      default:
        return // signature_delta, citations_delta: not billed as generated text
    }
  }

  private addText(value: unknown): void {
    if (typeof value === 'string') this.delivered.add(value)
  }
}

const measuredEvents: ReadonlySet<string> = new Set(['message_start', 'content_block_delta', 'message_delta'])

function withoutNulls(record: JsonRecord): JsonRecord {
  const result: JsonRecord = {}
  for (const [key, value] of Object.entries(record)) if (value !== null && value !== undefined) result[key] = value
  return result
}
