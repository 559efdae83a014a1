/**
 * The deterministic part of the mock upstream: what a request is answered with. The reply text is
 * derived from the prompt, one word per output token, so tests can predict every figure:
 * - input tokens = ceil(prompt characters / 4), at least 1;
 * - a prompt mentioning "cached" reads half of its input from the cache; on Anthropic a request
 *   carrying `cache_control` also writes a quarter of it;
 * - reasoning models (o1, o3, o4, gpt-5…) spend min(16, cap/2) reasoning tokens first;
 * - visible output = min(cap − reasoning, 40) words; the reply counts as truncated when the cap,
 *   not the natural length, stopped it.
 * No tokenizer runs here: the mock must cost next to nothing per request (benchmarks use it).
 */

export const mockReplyWordsMax = 40
export const mockReasoningTokensMax = 16
/** A prompt containing this makes a streamed reply stop half-way with the socket destroyed. */
export const mockCutStreamMarker = '__tollgate_cut_stream__'

const fillerWords = [
  'every',
  'request',
  'reserves',
  'its',
  'worst',
  'case',
  'before',
  'dispatch',
  'and',
  'settles',
  'to',
  'the',
  'actual',
  'cost',
  'after',
  'the',
  'reply',
  'so',
  'budgets',
  'hold',
]
const promptWordsMax = 12
/** Keys whose string values are structure, not prompt text. */
const nonTextKeys: ReadonlySet<string> = new Set(['role', 'type', 'cache_control', 'id', 'tool_call_id', 'call_id', 'status', 'model'])

/**
 * The token counts a reply reports, normalised like the gateway's `Usage`: `inputTokens` includes
 * the cache reads, writes and audio input; `cacheWrite1hTokens` is the part of the writes kept for
 * an hour; `outputTokens` includes reasoning and audio output.
 */
export interface MockUsage {
  inputTokens: number
  cacheReadTokens: number
  cacheWriteTokens: number
  cacheWrite1hTokens: number
  audioInputTokens: number
  reasoningTokens: number
  audioOutputTokens: number
  outputTokens: number
}

/**
 * What a test makes the next replies do instead of the derived defaults: report chosen usage (for
 * a real model name, to check a bill to the micro-dollar), report none, be cut, or never come.
 */
export interface MockScript {
  /** Reported counts replacing the derived ones; the visible words stay as derived. */
  usage?: Partial<MockUsage>
  /** No usage anywhere: not in the body, no usage chunk or event in a stream, none in message_start. */
  omitUsage?: boolean
  /** `stream`: half the SSE events, then the socket closes. `body`: the 200, its headers and half the JSON, then it closes. */
  cut?: 'stream' | 'body'
  /** Accept the request and never answer (until the mock closes). */
  hang?: boolean
  /** Waited between the SSE events of a stream, instead of the mock's own setting. */
  chunkDelayMs?: number
  /** The `service_tier` an OpenAI answer says served it (instead of `default`). */
  serviceTier?: string
  /**
   * Server-side web searches the answer reports: Anthropic's `usage.server_tool_use.web_search_requests`
   * (in the body, and in a stream's `message_delta`), or that many `web_search_call` output items of a
   * Responses answer.
   */
  webSearchRequests?: number
  /** How many requests (any route) follow the script. */
  times: number
}

export interface MockReplyPlan extends MockUsage {
  model: string
  text: string
  /** The visible words; joined with single spaces they make `text`. */
  words: string[]
  isTruncated: boolean
  shouldCutStream: boolean
  shouldCutBody: boolean
  reportsUsage: boolean
  /** Chat `n`: answers billed (each `outputTokens` long); absent means 1. */
  choices?: number
  /** The OpenAI `service_tier` answered; absent means `default`. */
  serviceTier?: string
  /** Server-side web searches reported; absent means none. */
  webSearchRequests?: number
}

/** The plan as a script changes it. */
export function scriptedPlan(plan: MockReplyPlan, script: MockScript | undefined): MockReplyPlan {
  if (script === undefined) return plan
  return {
    ...plan,
    ...script.usage,
    reportsUsage: script.omitUsage !== true,
    shouldCutStream: plan.shouldCutStream || script.cut === 'stream',
    shouldCutBody: script.cut === 'body',
    ...(script.serviceTier !== undefined && { serviceTier: script.serviceTier }),
    ...(script.webSearchRequests !== undefined && { webSearchRequests: script.webSearchRequests }),
  }
}

export interface MockPromptParts {
  model: string
  /** Everything billed as input (messages, system, instructions, tools). */
  promptValues: unknown[]
  /** The text the reply echoes: the last user turn. */
  lastUserValue: unknown
  outputTokensCap: number | undefined
  /** Anthropic only: the request marked content for caching. */
  hasCacheControl: boolean
}

export function planMockReply(parts: MockPromptParts): MockReplyPlan {
  const promptTexts: string[] = []
  for (const value of parts.promptValues) collectText(value, promptTexts)
  let promptChars = 0
  let mentionsCached = false
  let shouldCutStream = false
  for (const text of promptTexts) {
    promptChars += text.length
    if (text.includes('cached')) mentionsCached = true
    if (text.includes(mockCutStreamMarker)) shouldCutStream = true
  }
  const inputTokens = Math.max(1, Math.ceil(promptChars / 4))
  const cacheReadTokens = mentionsCached ? Math.floor(inputTokens / 2) : 0
  const cacheWriteTokens = parts.hasCacheControl ? Math.floor(inputTokens / 4) : 0

  const cap = parts.outputTokensCap
  const reasoningTokens = isReasoningModel(parts.model) ? Math.min(mockReasoningTokensMax, cap === undefined ? mockReasoningTokensMax : Math.floor(cap / 2)) : 0
  const wordsMax = cap === undefined ? mockReplyWordsMax : Math.min(mockReplyWordsMax, cap - reasoningTokens)
  const lastUserTexts: string[] = []
  collectText(parts.lastUserValue, lastUserTexts)
  const words = replyWords(lastUserTexts.join(' '), Math.max(0, wordsMax))
  return {
    model: parts.model,
    text: words.join(' '),
    words,
    inputTokens,
    cacheReadTokens,
    cacheWriteTokens,
    cacheWrite1hTokens: 0,
    audioInputTokens: 0,
    reasoningTokens,
    audioOutputTokens: 0,
    outputTokens: words.length + reasoningTokens,
    isTruncated: cap !== undefined && cap < mockReplyWordsMax + reasoningTokens,
    shouldCutStream,
    shouldCutBody: false,
    reportsUsage: true,
  }
}

export function isReasoningModel(model: string): boolean {
  return /^(o1|o3|o4|gpt-5)/.test(model)
}

function replyWords(lastUserText: string, count: number): string[] {
  const words = ['Tollgate', 'mock', 'reply', 'to:']
  for (const word of lastUserText.split(/\s+/)) {
    if (words.length >= 4 + promptWordsMax) break
    if (word.length > 0) words.push(word)
  }
  for (let i = 0; words.length < count; i++) words.push(fillerWords[i % fillerWords.length]!)
  return words.slice(0, count)
}

/** Every string under `value` that is prompt text, in document order. */
export function collectText(value: unknown, out: string[]): void {
  if (typeof value === 'string') {
    out.push(value)
  } else if (Array.isArray(value)) {
    for (const item of value) collectText(item, out)
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) if (!nonTextKeys.has(key)) collectText(item, out)
  }
}

/** The last element of `messages` with role 'user' (chat, Anthropic, responses input items). */
export function lastUserMessage(messages: unknown): unknown {
  if (!Array.isArray(messages)) return messages
  for (let i = messages.length - 1; i >= 0; i--) {
    const message: unknown = messages[i]
    if (typeof message === 'object' && message !== null && (message as { role?: unknown }).role === 'user') {
      return (message as { content?: unknown }).content
    }
  }
  return undefined
}
