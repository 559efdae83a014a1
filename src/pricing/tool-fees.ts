/**
 * Per-call fees of server-side tools, billed on top of tokens: web searches (Anthropic's
 * `web_search_*` tool, OpenAI's Responses `web_search*` tools, OpenAI's Chat Completions search
 * models called with `web_search_options`) and OpenAI's file searches. A `models:` override's fee
 * wins; else the catalogue gives some models a price (`web_searches_kcount`,
 * `storage_searches_kcount`, USD per 1,000 calls); without one, the documented constants below
 * apply (docs/costs.md gives their sources) and the part is flagged as a fallback. Never zero.
 *
 * Prices are integer µ$ per 1,000 calls, as the catalogue states them.
 */
import { costOfTokens, micros, type Micros } from '../money/index.js'
import type { Endpoint } from '../providers/types.js'
import type { ModelPrice } from './types.js'

/** Web search: $10 per 1,000 searches (Anthropic; OpenAI's `web_search` tool). */
export const WEB_SEARCH_MICROS_PER_KCALL_DEFAULT = 10_000_000
/** OpenAI's `web_search_preview` tool on non-reasoning models: $25 per 1,000 calls (on reasoning models $10). */
export const WEB_SEARCH_PREVIEW_MICROS_PER_KCALL = 25_000_000
/** OpenAI's `file_search` tool: $2.50 per 1,000 calls. */
export const FILE_SEARCH_MICROS_PER_KCALL_DEFAULT = 2_500_000

/** A Chat Completions search model's fee by `web_search_options.search_context_size`, µ$ per 1,000 calls. */
export interface ChatSearchPrices {
  readonly low: number
  readonly medium: number
  readonly high: number
}

/**
 * OpenAI's Chat Completions search models bill their searches (one per answer:
 * `CHAT_SEARCHES_PER_CHOICE`) by the context size asked for, whatever the catalogue says of the
 * model's Responses `web_search` fee (it knows `gpt-4o-mini-search-preview` only as
 * `gpt-4o-mini`, $10 per 1,000). USD per 1,000 calls, from OpenAI's pricing page ("Web search",
 * Chat Completions search models) as published since the models launched in March 2025; last
 * checked 2026-12-02 (against listings repeating them: the medium size, $35 and $27.50, is what a
 * call with no size pays). Keys match dated snapshots too.
 */
export const CHAT_SEARCH_MICROS_PER_KCALL: Readonly<Record<string, ChatSearchPrices>> = Object.freeze({
  'gpt-4o-search-preview': Object.freeze({ low: 30_000_000, medium: 35_000_000, high: 50_000_000 }),
  'gpt-4o-mini-search-preview': Object.freeze({ low: 25_000_000, medium: 27_500_000, high: 30_000_000 }),
})
/** The dearest known chat search fee ($50 per 1,000): what a search model or size we do not know is charged, flagged. */
export const CHAT_SEARCH_MICROS_PER_KCALL_MAX = Math.max(...Object.values(CHAT_SEARCH_MICROS_PER_KCALL).flatMap((p) => [p.low, p.medium, p.high]))
/**
 * Searches billed per answer of a chat call with `web_search_options`. OpenAI's search models
 * search before every answer they write, and publish no rule that the `n` answers of one request
 * share a search; the answer counts no searches, neither in `usage` nor per choice (a choice's
 * `annotations` are citations, which an answer that searched may lack). So a call is taken to
 * bill one search per answer it asks for: `n` of them, the most it can be billed.
 */
export const CHAT_SEARCHES_PER_CHOICE = 1

/**
 * Searches reserved for a tool that sets no limit (Anthropic `max_uses`, Responses
 * `max_tool_calls`). Not a bound: nothing in such a request bounds its searches.
 */
export const SERVER_SEARCHES_RESERVED_DEFAULT = 20

/** The searches a request allows (what its worst case reserves), and whether it uses OpenAI's dearer preview search. */
export interface ServerSearches {
  readonly webSearches: number
  readonly fileSearches: number
  readonly webSearchPreview: boolean
  /**
   * A chat call with `web_search_options`: the fee of its searches, which the answer does not
   * report — the call is charged `webSearches` whatever its usage says.
   */
  readonly chatSearch?: ChatSearchFee
}

export interface ChatSearchFee {
  readonly microsPerKcall: number
  /** Not the model's price for the size asked (an unknown search model or size): the dearest known, flagged. */
  readonly upperBound: boolean
  /** The `search_context_size` asked (medium when absent); undefined when it names none of the three. */
  readonly contextSize: ChatSearchSize | undefined
}

export type ChatSearchSize = keyof ChatSearchPrices

/**
 * Which fee a call's web searches were charged when it was not the model's own: OpenAI's
 * `web_search_preview` tool, or a chat search model's fee for the `search_context_size` asked
 * (`chat:unknown`: none of the three, or not known). A usage event stores it beside its search
 * counts (undefined: the model's own fee), so replay can price the searches again, at another
 * model too, as the live path did: the fee depends on the request, which an event does not keep.
 */
export type WebSearchKind = 'web_search_preview' | 'chat:low' | 'chat:medium' | 'chat:high' | 'chat:unknown'
export const WEB_SEARCH_KINDS: readonly WebSearchKind[] = ['web_search_preview', 'chat:low', 'chat:medium', 'chat:high', 'chat:unknown']

/** The kind of web search fee `searches` are priced at (what a usage event records); undefined: the model's own. */
export function webSearchKindOf(searches: ServerSearches | undefined): WebSearchKind | undefined {
  if (searches?.chatSearch !== undefined) return `chat:${searches.chatSearch.contextSize ?? 'unknown'}`
  return searches?.webSearchPreview === true ? 'web_search_preview' : undefined
}

/** A stored kind read back; undefined for anything else (NULL, or a value this version does not know). */
export function webSearchKindFrom(value: unknown): WebSearchKind | undefined {
  return WEB_SEARCH_KINDS.find((kind) => kind === value)
}

/**
 * `price` with the web search fee that searches of `kind` pay on `model`, as
 * `priceForServerSearches` gives it to the live call: replay prices a recorded call's searches at
 * the model it reprices it at with this. A chat search repriced at a model that does not search
 * (no live call is priced so: such a call never searches) keeps the dearest known chat fee,
 * flagged, rather than the model's Responses tool fee.
 */
export function priceForWebSearchKind(price: ModelPrice, kind: WebSearchKind | undefined, model: string): ModelPrice {
  if (kind === undefined) return price
  if (kind === 'web_search_preview') return priceForServerSearches(price, { webSearches: 0, fileSearches: 0, webSearchPreview: true })
  const size = kind.slice('chat:'.length)
  const contextSize = size === 'low' || size === 'medium' || size === 'high' ? size : undefined
  const chatSearch = chatSearchFeeAt(model, contextSize) ?? { microsPerKcall: CHAT_SEARCH_MICROS_PER_KCALL_MAX, upperBound: true, contextSize }
  return priceForServerSearches(price, { webSearches: 0, fileSearches: 0, webSearchPreview: false, chatSearch })
}

export function webSearchMicrosPerKcall(price: ModelPrice): number {
  return price.webSearchMicrosPerKcall ?? WEB_SEARCH_MICROS_PER_KCALL_DEFAULT
}

export function fileSearchMicrosPerKcall(price: ModelPrice): number {
  return price.fileSearchMicrosPerKcall ?? FILE_SEARCH_MICROS_PER_KCALL_DEFAULT
}

/** The cost of `calls` at `microsPerKcall`, rounded up (exact for whole-µ$ per-call prices). */
export function callsCost(calls: number, microsPerKcall: number): Micros {
  // µ$ per million calls, so the token arithmetic (per million) applies unchanged.
  return costOfTokens(calls, microsPerKcall * 1_000)
}

/** The most the searches `searches` allows can cost at `price`. */
export function serverSearchFeesMicros(searches: ServerSearches | undefined, price: ModelPrice): Micros {
  if (searches === undefined) return micros(0)
  return micros(callsCost(searches.webSearches, webSearchMicrosPerKcall(price)) + callsCost(searches.fileSearches, fileSearchMicrosPerKcall(price)))
}

/**
 * `price` with the web search fee of the searches `searches` makes, where the model's own fee is
 * not theirs: a chat call's `web_search_options` at its search model's fee for the size asked, and
 * OpenAI's `web_search_preview` tool at no less than its $25 per 1,000 (which the catalogue does
 * not state), flagged. A `models:` override that sets the fee is the real price and wins.
 */
export function priceForServerSearches(price: ModelPrice, searches: ServerSearches | undefined): ModelPrice {
  if (searches === undefined || overridesWebSearchFee(price)) return price
  if (searches.chatSearch !== undefined) return withWebSearchFee(price, searches.chatSearch.microsPerKcall, searches.chatSearch.upperBound)
  if (searches.webSearchPreview) return withWebSearchFee(price, Math.max(webSearchMicrosPerKcall(price), WEB_SEARCH_PREVIEW_MICROS_PER_KCALL), true)
  return price
}

/** Override prices are sourced `override:<name>` (types.ts); their fee is only set when the config sets it. */
function overridesWebSearchFee(price: ModelPrice): boolean {
  return price.webSearchMicrosPerKcall !== undefined && price.source.startsWith('override:')
}

function withWebSearchFee(price: ModelPrice, microsPerKcall: number, flagged: boolean): ModelPrice {
  const fallbackParts = flagged && !price.fallbackParts.includes('web_search') ? [...price.fallbackParts, 'web_search' as const] : price.fallbackParts
  return Object.freeze<ModelPrice>(Object.assign({}, price, { webSearchMicrosPerKcall: microsPerKcall, fallbackParts }))
}

/**
 * The fee of a chat call's searches on `model` (the id sent upstream; a router's `vendor/` prefix
 * aside): a known search model's price for `search_context_size` (medium when absent, the
 * model's dearest when not a size it has). A model whose name says `search` that we do not know
 * is taken to search all the same, at the dearest known fee. Undefined for other models: OpenAI
 * searches only with its search models.
 */
export function chatSearchFeeOf(model: string, options: unknown): ChatSearchFee | undefined {
  return chatSearchFeeAt(model, contextSizeOf(options))
}

/** The same for a context size already read (undefined: none of the three). */
export function chatSearchFeeAt(model: string, contextSize: ChatSearchSize | undefined): ChatSearchFee | undefined {
  const id = model.slice(model.lastIndexOf('/') + 1).toLowerCase()
  const key = Object.keys(CHAT_SEARCH_MICROS_PER_KCALL).find((name) => id === name || id.startsWith(`${name}-`))
  if (key === undefined) return id.includes('search') ? { microsPerKcall: CHAT_SEARCH_MICROS_PER_KCALL_MAX, upperBound: true, contextSize } : undefined
  const prices = CHAT_SEARCH_MICROS_PER_KCALL[key] as ChatSearchPrices
  if (contextSize === undefined) return { microsPerKcall: Math.max(prices.low, prices.medium, prices.high), upperBound: true, contextSize }
  return { microsPerKcall: prices[contextSize], upperBound: false, contextSize }
}

/** `search_context_size`, medium when absent; undefined when it names no size (or the options are not an object). */
function contextSizeOf(options: unknown): ChatSearchSize | undefined {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return undefined
  const size = (options as Record<string, unknown>)['search_context_size']
  if (size === undefined) return 'medium'
  return size === 'low' || size === 'medium' || size === 'high' ? size : undefined
}

function limitOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined
}

function typeOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const type = (value as Record<string, unknown>)['type']
  return typeof type === 'string' ? type : undefined
}

/**
 * The server-side searches a request allows: Anthropic `web_search_*` tools (each up to its
 * `max_uses`), Responses `web_search*` and `file_search` tools (up to `max_tool_calls` built-in
 * tool calls), a chat call's `web_search_options` on a search `model` (one per answer: `n`). A tool
 * without a limit counts `SERVER_SEARCHES_RESERVED_DEFAULT`. Undefined when the request has no
 * search tool (one pass over `tools`, only when there are tools). `model` is the id sent upstream.
 */
export function serverSearchesOf(endpoint: Endpoint, body: Record<string, unknown>, model: string): ServerSearches | undefined {
  if (endpoint === 'chat_completions') return chatSearchesOf(body, model)
  const tools = body['tools']
  if (!Array.isArray(tools) || tools.length === 0) return undefined
  let webSearches = 0
  let fileSearches = 0
  let webSearchPreview = false
  if (endpoint === 'messages') {
    for (const tool of tools) {
      if (typeOf(tool)?.startsWith('web_search_') !== true) continue
      webSearches += limitOf((tool as Record<string, unknown>)['max_uses']) ?? SERVER_SEARCHES_RESERVED_DEFAULT
    }
  } else if (endpoint === 'responses') {
    const limit = limitOf(body['max_tool_calls']) ?? SERVER_SEARCHES_RESERVED_DEFAULT
    for (const tool of tools) {
      const type = typeOf(tool)
      if (type === undefined) continue
      if (type.startsWith('web_search')) {
        webSearches = limit
        if (type.startsWith('web_search_preview')) webSearchPreview = true
      } else if (type === 'file_search') {
        fileSearches = limit
      }
    }
  }
  return webSearches === 0 && fileSearches === 0 ? undefined : { webSearches, fileSearches, webSearchPreview }
}

/**
 * A chat call searches when it sets `web_search_options` (as held-input.ts reads it: null and ''
 * are unset) on a search model: once per answer, `n` answers.
 */
function chatSearchesOf(body: Record<string, unknown>, model: string): ServerSearches | undefined {
  const options = body['web_search_options']
  if (options === undefined || options === null || options === '') return undefined
  const chatSearch = chatSearchFeeOf(model, options)
  if (chatSearch === undefined) return undefined
  return { webSearches: CHAT_SEARCHES_PER_CHOICE * choicesOf(body), fileSearches: 0, webSearchPreview: false, chatSearch }
}

/**
 * A chat call's `n` (answers asked for), 1 when absent. One that is not a whole number from 1 up
 * is refused before its worst case is priced (proxy/reserve.ts); 1 keeps this function total.
 */
function choicesOf(body: Record<string, unknown>): number {
  const n = body['n']
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 ? n : 1
}
