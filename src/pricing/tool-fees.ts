/**
 * Per-call fees of server-side tools, billed on top of tokens: web searches (Anthropic's
 * `web_search_*` tool, OpenAI's Responses `web_search*` tools) and OpenAI's file searches. The
 * catalogue gives some models a price (`web_searches_kcount`, `storage_searches_kcount`, USD per
 * 1,000 calls); without one, the documented constants below apply (docs/costs.md gives their
 * sources) and the part is flagged as a fallback. Never zero.
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
 * `price` for a call whose request uses OpenAI's `web_search_preview` tool: its searches at no less
 * than the preview's $25 per 1,000 (which the catalogue does not state), flagged as a fallback.
 */
export function priceForServerSearches(price: ModelPrice, searches: ServerSearches | undefined): ModelPrice {
  if (searches === undefined || !searches.webSearchPreview) return price
  return Object.freeze<ModelPrice>({
    ...price,
    webSearchMicrosPerKcall: Math.max(webSearchMicrosPerKcall(price), WEB_SEARCH_PREVIEW_MICROS_PER_KCALL),
    fallbackParts: price.fallbackParts.includes('web_search') ? price.fallbackParts : [...price.fallbackParts, 'web_search'],
  })
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
 * tool calls). A tool without a limit counts `SERVER_SEARCHES_RESERVED_DEFAULT`. Undefined when
 * the request has no search tool (one pass over `tools`, only when there are tools).
 */
export function serverSearchesOf(endpoint: Endpoint, body: Record<string, unknown>): ServerSearches | undefined {
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
