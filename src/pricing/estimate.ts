/**
 * The worst-case estimate before dispatch: input tokens by tokenizer (or a byte bound
 * for large prompts) plus margins, priced at the dearest input price, plus the output cap at the
 * dearest output price. It must never come out below what the call can actually cost.
 */
import { countTokens, countTokensInSlices } from '../lib/tokenizer.js'
import { assert } from '../lib/assert.js'
import { costOfTokens, micros, type Micros } from '../money/index.js'
import type { Endpoint, ProviderKind } from '../providers/types.js'
import type { ModelPrice } from './types.js'

/** Chat framing per message (role, separators), as OpenAI's own counting guide uses, rounded up. */
export const framingTokensPerMessage = 4
/** Reply priming added once per request. */
export const framingTokensPerRequest = 3
/**
 * Anthropic adds a tool-use system prompt when `tools` is set (346 tokens for Claude 4 with
 * tool_choice auto, more for `any`/`tool`); this allowance covers all published figures.
 */
export const anthropicToolSystemTokens = 800
/**
 * Multiplier (percent) on the o200k count for models whose tokenizer is not o200k (Claude, older
 * cl100k GPTs, open models): their counts for the same text run up to ~1.35× o200k for English and
 * higher for some scripts. The result is still capped by the UTF-8 byte bound.
 */
export const foreignTokenizerScalePercent = 200

/**
 * Token allowances for parts that are not text. These are conservative heuristics, not bounds:
 * - image: 8_192 tokens per image covers OpenAI high-detail tiling (≤ 1_445 for gpt-4o),
 *   patch-based models (≤ ~2_500) and Claude (≤ ~1_600; ~4_800 for high-resolution models).
 *   Models that bill more per image get their own figure (`mediaAllowancesOf`). It holds for an
 *   image by URL or file id as for one inline: the provider resizes either before counting it.
 * - audio: a minimum per part, or one token per 100 bytes of decoded audio data (8 kbit/s at
 *   ~10 tokens per second), whichever is larger.
 * - file/document (PDF): a minimum per part, or one token per 4 bytes of decoded file data. This
 *   bounds a file sent inline only; a file given by id or URL is held input (held-input.ts), and
 *   its call is reserved at the model's context window instead.
 */
export interface MediaAllowances {
  readonly imagePartTokens: number
  readonly audioPartTokensMin: number
  readonly audioBytesPerToken: number
  readonly filePartTokensMin: number
  readonly fileBytesPerToken: number
}

export const defaultMediaAllowances: MediaAllowances = Object.freeze({
  imagePartTokens: 8_192,
  audioPartTokensMin: 2_000,
  audioBytesPerToken: 100,
  filePartTokensMin: 10_000,
  fileBytesPerToken: 4,
})

/**
 * Models that bill an image as more tokens than the flat allowance, with the most one image can
 * be billed. gpt-4o-mini bills an image as 2_833 base tokens plus 5_667 per 512-px tile (33×
 * gpt-4o's 85 and 170, offsetting its lower token price); an image is scaled to fit 2048×768, at
 * most 8 tiles: 2_833 + 8 × 5_667 = 48_169 (OpenAI's published image costs, checked 2026-12-02).
 * `detail: "low"` bills the base alone, but the maximum is kept for every detail: one figure per
 * model, like the flat allowance, and never below the bill. Only gpt-4o-mini itself, its dated
 * snapshots and fine-tunes of them: its -audio, -search, -realtime, -transcribe and -tts variants
 * take no images.
 */
const imageTokensMaxOf: readonly (readonly [RegExp, number])[] = [[/^(ft:)?gpt-4o-mini(-\d{4}-\d{2}-\d{2})?(:|$)/, 48_169]]

/**
 * The media allowances for a call priced as `model` (the model id sent upstream). A router's
 * `vendor/` prefix is dropped, as the catalogue does when it prices `openai/gpt-4o-mini`.
 */
export function mediaAllowancesOf(model: string): MediaAllowances {
  const lower = model.slice(model.lastIndexOf('/') + 1).toLowerCase()
  const imagePartTokens = imageTokensMaxOf.find(([pattern]) => pattern.test(lower))?.[1]
  return imagePartTokens === undefined ? defaultMediaAllowances : Object.assign({}, defaultMediaAllowances, { imagePartTokens })
}

/** What to count for a request: its text, and the token allowances that are not text. */
export interface PromptText {
  /** All countable text, segments joined by '\n'. */
  readonly text: string
  /** Text segments joined; each may lose at most one token to a merge across the join. */
  readonly segments: number
  /** Messages (or input items / embedding inputs), each given `framingTokensPerMessage`. */
  readonly messages: number
  /** Tokens counted exactly or allowed for without text: token-array inputs, media parts, hidden prompts. */
  readonly fixedTokens: number
  /** Media parts seen (images, audio, files), for logs. */
  readonly mediaParts: number
}

/** Which tokenizer the counts are for: o200k exactly (gpt-tokenizer), or another one (scaled, capped by bytes). */
export type TokenizerFit = 'o200k' | 'foreign'

/** o200k_base serves gpt-4o, gpt-4.1+, gpt-5+, o-series, realtime/audio and gpt-oss. */
const o200kModel = /^(gpt-4o|chatgpt-4o|gpt-4\.[1-9]|gpt-[5-9]|o[1-9]|gpt-realtime|gpt-audio|gpt-oss|codex)/

export function tokenizerFitOf(provider: ProviderKind, model: string): TokenizerFit {
  if (provider === 'anthropic') return 'foreign'
  return o200kModel.test(model.toLowerCase()) ? 'o200k' : 'foreign'
}

export interface InputTokenEstimate {
  tokens: number
  method: 'tokenizer' | 'byte_bound'
}

/**
 * Input tokens, never below the true count (within the documented media heuristics). Prompts up to
 * `tokenizerMaxBytes` of UTF-8 are tokenized; larger ones use their byte length, an upper bound for
 * byte-level BPE (each token is at least one byte). A plain string is one message.
 */
export function estimateInputTokens(prompt: string | PromptText, tokenizerMaxBytes: number, fit: TokenizerFit = 'o200k'): InputTokenEstimate {
  const parts = promptPartsOf(prompt, tokenizerMaxBytes)
  return withFraming(parts, countTextTokens(parts.text, tokenizerMaxBytes, fit))
}

/**
 * `estimateInputTokens`, tokenizing in slices with a turn of the event loop between them: a prompt
 * of megabytes (a raised `tokenizer_max_bytes`) takes seconds to count, and other calls are
 * served meanwhile.
 */
export async function estimateInputTokensInSlices(
  prompt: string | PromptText,
  tokenizerMaxBytes: number,
  fit: TokenizerFit = 'o200k',
): Promise<InputTokenEstimate> {
  const parts = promptPartsOf(prompt, tokenizerMaxBytes)
  const bytes = Buffer.byteLength(parts.text, 'utf8')
  const text = bytes > tokenizerMaxBytes ? byteBound(bytes) : fitted(bytes === 0 ? 0 : await countTokensInSlices(parts.text), bytes, fit)
  return withFraming(parts, text)
}

function promptPartsOf(prompt: string | PromptText, tokenizerMaxBytes: number): PromptText {
  assert(Number.isSafeInteger(tokenizerMaxBytes) && tokenizerMaxBytes >= 0, `tokenizerMaxBytes: ${tokenizerMaxBytes}`)
  return typeof prompt === 'string' ? { text: prompt, segments: 1, messages: 1, fixedTokens: 0, mediaParts: 0 } : prompt
}

function withFraming(parts: PromptText, text: InputTokenEstimate): InputTokenEstimate {
  const tokens = text.tokens + parts.segments + parts.messages * framingTokensPerMessage + framingTokensPerRequest + parts.fixedTokens
  assert(Number.isSafeInteger(tokens), `input token estimate: ${tokens}`)
  return { tokens, method: text.method }
}

/** Tokens of bare text, no margins: o200k count (scaled for foreign tokenizers), or the byte bound. */
export function countTextTokens(text: string, tokenizerMaxBytes: number, fit: TokenizerFit = 'o200k'): InputTokenEstimate {
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > tokenizerMaxBytes) return byteBound(bytes)
  return fitted(bytes === 0 ? 0 : countTokens(text), bytes, fit)
}

function byteBound(bytes: number): InputTokenEstimate {
  return { tokens: bytes, method: 'byte_bound' }
}

/** An o200k count as the model's tokenizer would see it: scaled up for a foreign one, never above the byte bound. */
function fitted(counted: number, bytes: number, fit: TokenizerFit): InputTokenEstimate {
  if (fit === 'o200k') return { tokens: counted, method: 'tokenizer' }
  const scaled = Math.ceil((counted * foreignTokenizerScalePercent) / 100)
  return { tokens: Math.min(bytes, scaled), method: 'tokenizer' }
}

// ---------------------------------------------------------------------------------------------
// Prompt text of a request body

/** Keys whose values are chat framing, covered by `framingTokensPerMessage`: neither key nor value counted. */
const FRAMING_KEYS: ReadonlySet<string> = new Set(['role', 'type', 'cache_control'])
/** Keys that are wire structure, not seen by the model as text: the value is counted, the key is not. */
const STRUCTURAL_KEYS: ReadonlySet<string> = new Set(['content', 'text'])

class Collector {
  readonly texts: string[] = []
  messages = 0
  fixedTokens = 0
  mediaParts = 0
  constructor(readonly allowances: MediaAllowances) {}

  text(value: string): void {
    if (value.length > 0) this.texts.push(value)
  }

  json(value: unknown): void {
    if (value === undefined || value === null) return
    this.text(JSON.stringify(value))
  }

  /**
   * Every string, number and boolean in `value`, object keys included (they stand for JSON syntax
   * the model reads, e.g. tool-call arguments), with media parts replaced by their allowances.
   */
  walk(value: unknown): void {
    if (typeof value === 'string') {
      this.text(value)
      return
    }
    if (typeof value === 'number' || typeof value === 'boolean') {
      this.text(String(value))
      return
    }
    if (Array.isArray(value)) {
      for (const item of value) this.walk(item)
      return
    }
    if (typeof value !== 'object' || value === null) return
    const record = value as Record<string, unknown>
    if (this.media(record)) return
    // Keys, not entries: no [key, value] array per property of every message.
    for (const key of Object.keys(record)) {
      if (FRAMING_KEYS.has(key)) continue
      if (!STRUCTURAL_KEYS.has(key)) this.text(key)
      this.walk(record[key])
    }
  }

  /** True when `part` is a media part (and its allowance is added). */
  media(part: Record<string, unknown>): boolean {
    const type = part['type']
    const a = this.allowances
    switch (type) {
      case 'image_url': // chat completions
      case 'input_image': // responses
      case 'image': // anthropic
        this.mediaParts += 1
        this.fixedTokens += a.imagePartTokens
        return true
      case 'input_audio': // chat completions, responses
        this.mediaParts += 1
        this.fixedTokens += Math.max(a.audioPartTokensMin, Math.ceil(decodedBytes(part) / a.audioBytesPerToken))
        return true
      case 'file': // chat completions
      case 'input_file': // responses
        this.mediaParts += 1
        this.fixedTokens += Math.max(a.filePartTokensMin, Math.ceil(decodedBytes(part) / a.fileBytesPerToken))
        return true
      case 'document': {
        // anthropic: plain-text documents are text; PDFs and URLs get the file allowance.
        const source = part['source']
        if (typeof source === 'object' && source !== null) {
          const src = source as Record<string, unknown>
          if (src['type'] === 'text' || src['type'] === 'content') {
            this.walk(src['data'] ?? src['content'])
            this.walk(part['title'])
            this.walk(part['context'])
            return true
          }
        }
        this.mediaParts += 1
        this.fixedTokens += Math.max(a.filePartTokensMin, Math.ceil(decodedBytes(part) / a.fileBytesPerToken))
        return true
      }
      default:
        return false
    }
  }

  result(): PromptText {
    return {
      text: this.texts.join('\n'),
      segments: this.texts.length,
      messages: this.messages,
      fixedTokens: this.fixedTokens,
      mediaParts: this.mediaParts,
    }
  }
}

/** Decoded size of the largest (base64) string in a media part; URLs and ids are short. */
function decodedBytes(value: unknown): number {
  let longest = 0
  const visit = (item: unknown): void => {
    if (typeof item === 'string') longest = Math.max(longest, item.length)
    else if (Array.isArray(item)) item.forEach(visit)
    else if (typeof item === 'object' && item !== null) Object.values(item).forEach(visit)
  }
  visit(value)
  return Math.ceil((longest * 3) / 4)
}

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>)[name] : undefined
}

/**
 * The text to count for a request body of `endpoint`, with framing and media allowances as counts.
 * Unknown shapes are walked generically (every string, number and key), which over-counts rather
 * than under-counts. The body has not been validated yet: anything may be missing or mistyped.
 */
export function promptTextOf(endpoint: Endpoint, body: unknown, allowances: MediaAllowances = defaultMediaAllowances): PromptText {
  const c = new Collector(allowances)
  switch (endpoint) {
    case 'chat_completions': {
      const messages = field(body, 'messages')
      if (Array.isArray(messages)) {
        c.messages += messages.length
        c.walk(messages)
      } else {
        c.walk(messages)
      }
      c.json(field(body, 'tools'))
      c.json(field(body, 'functions'))
      c.json(field(body, 'response_format'))
      const toolChoice = field(body, 'tool_choice')
      if (typeof toolChoice === 'object') c.json(toolChoice)
      break
    }
    case 'responses': {
      const input = field(body, 'input')
      c.messages += Array.isArray(input) ? input.length : input === undefined ? 0 : 1
      c.walk(input)
      const instructions = field(body, 'instructions')
      if (instructions !== undefined) {
        c.messages += 1
        c.walk(instructions)
      }
      c.json(field(body, 'tools'))
      c.json(field(body, 'text'))
      const toolChoice = field(body, 'tool_choice')
      if (typeof toolChoice === 'object') c.json(toolChoice)
      break
    }
    case 'embeddings': {
      const input = field(body, 'input')
      const items = Array.isArray(input) && input.length > 0 && typeof input[0] !== 'number' ? input : [input]
      for (const item of items) {
        if (Array.isArray(item) && item.every((token) => typeof token === 'number')) {
          c.fixedTokens += item.length // already tokens: counted exactly
        } else {
          c.messages += 1
          c.walk(item)
        }
      }
      break
    }
    case 'messages': {
      const system = field(body, 'system')
      if (system !== undefined) {
        c.messages += 1
        c.walk(system)
      }
      const messages = field(body, 'messages')
      if (Array.isArray(messages)) c.messages += messages.length
      c.walk(messages)
      const tools = field(body, 'tools')
      if (Array.isArray(tools) && tools.length > 0) {
        c.json(tools)
        c.fixedTokens += anthropicToolSystemTokens
      }
      const toolChoice = field(body, 'tool_choice')
      if (typeof toolChoice === 'object') c.json(toolChoice)
      break
    }
  }
  return c.result()
}

// ---------------------------------------------------------------------------------------------
// Worst-case cost and the affordable cap

/**
 * Each call's cost is a sum of separately rounded-up parts: up to five input parts (uncached,
 * cache read, 5-minute and 1-hour cache writes, audio) and three output parts (text, reasoning,
 * audio). Their ceilings can exceed the ceiling of the whole by at most one µ$ per extra part:
 * 4 on input, 2 on output.
 */
export const worstCaseRoundingSlackMicros = 6

/** Largest output cap `affordableOutputTokens` returns: far above any model's output, and it keeps cap × price safe. */
export const affordableOutputTokensMax = 10_000_000

function worstInputPrice(price: ModelPrice): number {
  return Math.max(
    price.inputMicrosPerMtok,
    price.cacheWriteMicrosPerMtok,
    price.cacheWrite1hMicrosPerMtok,
    price.cacheReadMicrosPerMtok,
    price.audioInputMicrosPerMtok,
  )
}

function worstOutputPrice(price: ModelPrice): number {
  return Math.max(price.outputMicrosPerMtok, price.audioOutputMicrosPerMtok)
}

/**
 * The most a call can cost: every input token at the dearest input-side price (input, cache writes
 * of either lifetime, cache read, audio input), every output token up to the cap at the dearest output-side price,
 * rounded up, plus the rounding slack of the per-part breakdown. ≥ costOfUsage(usage).totalMicros
 * for every usage with inputTokens ≤ `inputTokens` and outputTokens ≤ `outputTokensCap`.
 * `price` should be looked up with this same (worst) input count so the tier matches.
 */
export function worstCaseCost(input: { inputTokens: number; outputTokensCap: number; price: ModelPrice }): Micros {
  const { inputTokens, outputTokensCap, price } = input
  const inputMicros = costOfTokens(inputTokens, worstInputPrice(price))
  const outputMicros = costOfTokens(outputTokensCap, worstOutputPrice(price))
  return micros(inputMicros + outputMicros + worstCaseRoundingSlackMicros)
}

/**
 * The largest output cap whose worst-case cost fits `fundsMicros` (to lower a request's cap rather
 * than refuse it); 0 when the input alone does not fit. Capped at `affordableOutputTokensMax` (also
 * the answer for a free output price); the caller takes the min with the model's own maximum.
 */
export function affordableOutputTokens(fundsMicros: Micros, inputTokens: number, price: ModelPrice): number {
  assert(Number.isSafeInteger(fundsMicros), `funds: ${fundsMicros}`)
  const base = worstCaseCost({ inputTokens, outputTokensCap: 0, price })
  if (base > fundsMicros) return 0
  const remaining = fundsMicros - base
  const outputPrice = worstOutputPrice(price)
  if (outputPrice === 0) return affordableOutputTokensMax
  // ceil(cap × price / 1e6) ≤ remaining  ⇔  cap × price ≤ remaining × 1e6  ⇔  cap ≤ ⌊remaining × 1e6 / price⌋
  // BigInt: exact floor division even where remaining × 1e6 passes 2^53 (funds above ~$9k).
  const cap = (BigInt(remaining) * 1_000_000n) / BigInt(outputPrice)
  return cap > BigInt(affordableOutputTokensMax) ? affordableOutputTokensMax : Number(cap)
}
