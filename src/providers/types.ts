/**
 * The vocabulary shared by adapters, pricing and the proxy. Adapters translate and measure:
 * they return token counts (`Usage`), never money — `pricing/` turns usage into Micros.
 */

export type ProviderKind = 'openai' | 'anthropic' | 'openai-compatible' | 'mock'

/** The consumer-facing API that was called; decides the wire format and the error envelope. */
export type Endpoint = 'chat_completions' | 'responses' | 'embeddings' | 'messages'

/** Which error envelope a refusal uses: OpenAI `{error}` or Anthropic `{type:'error', error}`. */
export type ApiFlavor = 'openai' | 'anthropic'

export function flavorOf(endpoint: Endpoint): ApiFlavor {
  return endpoint === 'messages' ? 'anthropic' : 'openai'
}

/**
 * Token counts of one call, normalised so that every token is counted exactly once:
 * - `inputTokens` is ALL input: uncached + cache reads + cache writes. (OpenAI's prompt_tokens
 *   already includes cached_tokens; Anthropic's input_tokens excludes cache_read_input_tokens and
 *   cache_creation_input_tokens, so its adapter adds them.)
 * - `cacheReadTokens`, `cacheWriteTokens` are subsets of `inputTokens`; `cacheWrite1hTokens` is the
 *   subset of the writes kept for an hour (Anthropic's `ephemeral_1h`), priced apart from the
 *   5-minute ones.
 * - `outputTokens` is ALL output, `reasoningTokens` a subset of it (OpenAI's completion_tokens
 *   includes reasoning_tokens).
 * - audio counts are subsets of input/output respectively.
 * - `serviceTier` is the tier the answer says served the call (OpenAI's `service_tier`:
 *   `default`, `flex`, `priority`…), absent when it names none; pricing scales for it.
 * - `webSearches`, `webFetches`, `fileSearches` count the server-side tool calls the provider
 *   reports (each billed per call on top of tokens); absent means none reported.
 */
export interface Usage {
  inputTokens: number
  cacheReadTokens: number
  cacheWriteTokens: number
  cacheWrite1hTokens: number
  outputTokens: number
  reasoningTokens: number
  audioInputTokens: number
  audioOutputTokens: number
  serviceTier?: string
  webSearches?: number
  webFetches?: number
  fileSearches?: number
}

export function emptyUsage(): Usage {
  return {
    inputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    cacheWrite1hTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
    audioInputTokens: 0,
    audioOutputTokens: 0,
  }
}

/**
 * Where a usage figure came from: the provider's own report; counted by Tollgate (the tokenizer on
 * what passed through); or `none` (nothing measured — the charge is then an estimate).
 */
export type UsageSource = 'reported' | 'counted' | 'none'

/**
 * Fed the raw SSE `data:` payloads of a streamed response as they pass. Works at the end of a
 * complete stream and after a stream cut off mid-way (then it counts what was delivered).
 */
export interface StreamUsageTracker {
  /** One SSE event: its `event:` name (if any) and its `data:` payload text. */
  onEvent(eventName: string | undefined, data: string): void
  /** True when this event is the usage-only chunk the gateway itself asked for (OpenAI stream_options.include_usage). */
  isInjectedUsageChunk(data: string): boolean
  /** True once the provider reported the stream's whole usage (input included). */
  hasReportedUsage(): boolean
  /**
   * Without reported usage: parses what was kept and counts the delivered text now, letting other
   * calls run between slices of a long one, so the `usage()` after it does not hold the event loop.
   */
  countDelivered(): Promise<void>
  usage(): { usage: Usage; source: UsageSource; model: string | undefined }
}
