/**
 * Server-side tool fees: each search the provider reports is charged its per-call fee on top of
 * the tokens — the catalogue's where it has one, else a documented default, flagged — and a
 * request's worst case holds the fees of the searches it allows.
 */
import { describe, expect, it } from 'vitest'
import type { Usage } from '../providers/types.js'
import { PriceBook } from './catalogue.js'
import { costOfUsage, fallbackPartsOf } from './cost.js'
import {
  CHAT_SEARCH_MICROS_PER_KCALL_MAX,
  FILE_SEARCH_MICROS_PER_KCALL_DEFAULT,
  SERVER_SEARCHES_RESERVED_DEFAULT,
  WEB_SEARCH_MICROS_PER_KCALL_DEFAULT,
  priceForServerSearches,
  priceForWebSearchKind,
  serverSearchFeesMicros,
  serverSearchesOf,
  webSearchKindFrom,
  webSearchKindOf,
} from './tool-fees.js'

const book = new PriceBook()
const tokens: Usage = {
  inputTokens: 10_000,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  cacheWrite1hTokens: 0,
  outputTokens: 2_000,
  reasoningTokens: 0,
  audioInputTokens: 0,
  audioOutputTokens: 0,
}

describe('costOfUsage: tool fees', () => {
  it('charges 25 Anthropic web searches at the catalogue $10 per 1,000, exactly, beside the tokens', () => {
    const haiku = book.lookup('anthropic', 'claude-haiku-4-5')!
    expect(haiku.webSearchMicrosPerKcall).toBe(10_000_000)
    const plain = costOfUsage(tokens, haiku)
    const searched = costOfUsage({ ...tokens, webSearches: 25 }, haiku)
    // 10k × $1 + 2k × $5 per Mtok = 20,000 µ$; 25 × $0.01 = 250,000 µ$.
    expect(plain.totalMicros).toBe(20_000)
    expect(searched.totalMicros).toBe(270_000)
    expect(searched.parts.find((p) => p.part === 'web_search')).toEqual({
      part: 'web_search',
      tokens: 25,
      unitMicrosPerMtok: 10_000_000_000,
      costMicros: 250_000,
      fallback: false,
    })
  })

  it('charges OpenAI web and file searches at the catalogue prices', () => {
    const gpt41 = book.lookup('openai', 'gpt-4.1')!
    const cost = costOfUsage({ ...tokens, webSearches: 3, fileSearches: 4 }, gpt41)
    expect(cost.parts.find((p) => p.part === 'web_search')?.costMicros).toBe(30_000)
    expect(cost.parts.find((p) => p.part === 'file_search')?.costMicros).toBe(10_000)
    expect(fallbackPartsOf(cost)).toEqual([])
  })

  it('charges a price the source lacks at the documented default, flagged, never zero', () => {
    const haiku = book.lookup('anthropic', 'claude-haiku-4-5')!
    const { webSearchMicrosPerKcall: _w, fileSearchMicrosPerKcall: _f, ...withoutFees } = haiku
    const cost = costOfUsage({ ...tokens, webSearches: 2, fileSearches: 2 }, withoutFees)
    expect(cost.parts.find((p) => p.part === 'web_search')).toMatchObject({ costMicros: 2 * (WEB_SEARCH_MICROS_PER_KCALL_DEFAULT / 1_000), fallback: true })
    expect(cost.parts.find((p) => p.part === 'file_search')).toMatchObject({ costMicros: 2 * (FILE_SEARCH_MICROS_PER_KCALL_DEFAULT / 1_000), fallback: true })
    expect(fallbackPartsOf(cost)).toEqual(['web_search', 'file_search'])
  })

  it('charges web_search_preview searches at $25 per 1,000 at least, flagged', () => {
    const gpt41 = book.lookup('openai', 'gpt-4.1')!
    const searches = serverSearchesOf('responses', { tools: [{ type: 'web_search_preview' }] }, 'gpt-4.1')!
    const cost = costOfUsage({ ...tokens, webSearches: 4 }, priceForServerSearches(gpt41, searches))
    expect(cost.parts.find((p) => p.part === 'web_search')).toMatchObject({ costMicros: 100_000, fallback: true })
    expect(priceForServerSearches(gpt41, serverSearchesOf('responses', { tools: [{ type: 'web_search' }] }, 'gpt-4.1'))).toBe(gpt41)
  })
})

describe('serverSearchesOf: what the worst case reserves', () => {
  it('takes an Anthropic web search tool at its max_uses, else the default', () => {
    expect(serverSearchesOf('messages', { tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }] }, 'claude-haiku-4-5')).toEqual({
      webSearches: 5,
      fileSearches: 0,
      webSearchPreview: false,
    })
    expect(serverSearchesOf('messages', { tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'claude-haiku-4-5')?.webSearches).toBe(
      SERVER_SEARCHES_RESERVED_DEFAULT,
    )
    expect(serverSearchesOf('messages', { tools: [{ name: 'lookup', input_schema: {} }, { type: 'web_fetch_20250910' }] }, 'claude-haiku-4-5')).toBeUndefined()
  })

  it('takes Responses search tools at max_tool_calls, else the default', () => {
    expect(serverSearchesOf('responses', { max_tool_calls: 3, tools: [{ type: 'web_search' }, { type: 'file_search' }] }, 'gpt-4.1')).toEqual({
      webSearches: 3,
      fileSearches: 3,
      webSearchPreview: false,
    })
    expect(serverSearchesOf('responses', { tools: [{ type: 'web_search_preview_2025_03_11' }] }, 'gpt-4.1')).toEqual({
      webSearches: SERVER_SEARCHES_RESERVED_DEFAULT,
      fileSearches: 0,
      webSearchPreview: true,
    })
    expect(serverSearchesOf('responses', { tools: [{ type: 'function', name: 'f' }] }, 'gpt-4.1')).toBeUndefined()
    expect(serverSearchesOf('chat_completions', { tools: [{ type: 'function' }] }, 'gpt-4o')).toBeUndefined()
  })

  it('prices the allowed searches at the model fee', () => {
    const haiku = book.lookup('anthropic', 'claude-haiku-4-5')!
    expect(serverSearchFeesMicros({ webSearches: 5, fileSearches: 0, webSearchPreview: false }, haiku)).toBe(50_000)
    expect(serverSearchFeesMicros(undefined, haiku)).toBe(0)
  })
})

describe('chat search models: one search per answer with web_search_options, at the fee of the size asked', () => {
  const chat = (model: string, options: unknown) => serverSearchesOf('chat_completions', { model, messages: [], web_search_options: options }, model)

  it('bills gpt-4o-mini-search-preview $27.50 per 1,000 at the default size, not the catalogue’s $10 for gpt-4o-mini', () => {
    const price = book.lookup('openai', 'gpt-4o-mini-search-preview')!
    const searches = chat('gpt-4o-mini-search-preview', {})!
    expect(searches).toEqual({
      webSearches: 1,
      fileSearches: 0,
      webSearchPreview: false,
      chatSearch: { microsPerKcall: 27_500_000, upperBound: false, contextSize: 'medium' },
    })
    const cost = costOfUsage({ ...tokens, webSearches: 1 }, priceForServerSearches(price, searches))
    expect(cost.parts.find((p) => p.part === 'web_search')).toMatchObject({ tokens: 1, costMicros: 27_500, fallback: false })
    expect(serverSearchFeesMicros(searches, priceForServerSearches(price, searches))).toBe(27_500)
  })

  it.each([
    ['gpt-4o-search-preview', { search_context_size: 'low' }, 30_000],
    ['gpt-4o-search-preview', { search_context_size: 'medium' }, 35_000],
    ['gpt-4o-search-preview', { search_context_size: 'high' }, 50_000],
    ['gpt-4o-search-preview-2025-03-11', { user_location: { type: 'approximate' } }, 35_000],
    ['gpt-4o-mini-search-preview', { search_context_size: 'low' }, 25_000],
    ['gpt-4o-mini-search-preview-2025-03-11', { search_context_size: 'high' }, 30_000],
    ['openai/gpt-4o-search-preview', { search_context_size: 'low' }, 30_000],
  ])('%s with %j: %i µ$ a call, exact', (model, options, fee) => {
    const contextSize = 'search_context_size' in options ? options.search_context_size : 'medium'
    expect(chat(model, options)?.chatSearch).toEqual({ microsPerKcall: fee * 1_000, upperBound: false, contextSize })
  })

  it('an unknown size takes the model’s dearest, an unknown search model the dearest known fee, both flagged', () => {
    expect(chat('gpt-4o-mini-search-preview', { search_context_size: 'huge' })?.chatSearch).toEqual({
      microsPerKcall: 30_000_000,
      upperBound: true,
      contextSize: undefined,
    })
    expect(chat('gpt-4o-search-preview', 'high')?.chatSearch).toEqual({ microsPerKcall: 50_000_000, upperBound: true, contextSize: undefined })
    expect(CHAT_SEARCH_MICROS_PER_KCALL_MAX).toBe(50_000_000)
    const searches = chat('gpt-5-search-api', { search_context_size: 'low' })!
    expect(searches.chatSearch).toEqual({ microsPerKcall: 50_000_000, upperBound: true, contextSize: 'low' })
    const cost = costOfUsage({ ...tokens, webSearches: 1 }, priceForServerSearches(book.lookup('openai', 'gpt-4o')!, searches))
    expect(cost.parts.find((p) => p.part === 'web_search')).toMatchObject({ costMicros: 50_000, fallback: true })
    expect(fallbackPartsOf(cost)).toContain('web_search')
  })

  it('`n` answers search `n` times: the worst case holds n searches, and a settled answer is charged them all', () => {
    const price = book.lookup('openai', 'gpt-4o-mini-search-preview')!
    const body = { model: 'gpt-4o-mini-search-preview', messages: [], n: 3, web_search_options: { search_context_size: 'low' } }
    const searches = serverSearchesOf('chat_completions', body, 'gpt-4o-mini-search-preview')!
    expect(searches.webSearches).toBe(3)
    const priced = priceForServerSearches(price, searches)
    expect(serverSearchFeesMicros(searches, priced)).toBe(3 * 25_000)
    // `n` absent, or one the proxy refuses (it is never priced), is one answer.
    for (const n of [undefined, 1, 0, 2.5, '3']) {
      expect(serverSearchesOf('chat_completions', { ...body, n }, 'gpt-4o-mini-search-preview')?.webSearches).toBe(1)
    }
  })

  it('no search without web_search_options, nor on a model that does not search', () => {
    expect(chat('gpt-4o-search-preview', undefined)).toBeUndefined()
    expect(chat('gpt-4o-search-preview', null)).toBeUndefined()
    expect(chat('gpt-4o', { search_context_size: 'low' })).toBeUndefined()
  })

  it('a models: override that sets the web search fee wins over the table and the preview’s $25', () => {
    const overridden = {
      ...book.lookup('openai', 'gpt-4o-mini')!,
      source: 'override:gpt-4o-mini-search-preview',
      tier: 'override',
      webSearchMicrosPerKcall: 20_000_000,
    }
    expect(priceForServerSearches(overridden, chat('gpt-4o-mini-search-preview', { search_context_size: 'high' }))).toBe(overridden)
    expect(priceForServerSearches(overridden, serverSearchesOf('responses', { tools: [{ type: 'web_search_preview' }] }, 'gpt-4o-mini'))).toBe(overridden)
    // An override without a fee leaves the search priced as if it had none.
    const { webSearchMicrosPerKcall: _fee, ...withoutFee } = overridden
    expect(priceForServerSearches(withoutFee, chat('gpt-4o-mini-search-preview', {})).webSearchMicrosPerKcall).toBe(27_500_000)
  })
})

describe('the kind of web search fee an event records: repriced, it is the fee the live call paid', () => {
  const gpt4o = book.lookup('openai', 'gpt-4o')!
  const usage: Usage = { ...tokens, webSearches: 2 }
  /** The web search part of `usage` priced as the live path prices a call of `body` on `model`. */
  const live = (endpoint: 'chat_completions' | 'responses', body: Record<string, unknown>, model: string) => {
    const searches = serverSearchesOf(endpoint, body, model)
    const price = priceForServerSearches(book.lookup('openai', model)!, searches)
    return { kind: webSearchKindOf(searches), part: costOfUsage(usage, price).parts.find((p) => p.part === 'web_search') }
  }

  it.each([
    ['responses', { tools: [{ type: 'web_search' }] }, 'gpt-4o', undefined],
    ['responses', { tools: [{ type: 'web_search_preview' }] }, 'gpt-4o', 'web_search_preview'],
    ['chat_completions', { web_search_options: { search_context_size: 'high' } }, 'gpt-4o-search-preview', 'chat:high'],
    ['chat_completions', { web_search_options: {} }, 'gpt-4o-mini-search-preview', 'chat:medium'],
    ['chat_completions', { web_search_options: { search_context_size: 'huge' } }, 'gpt-4o-search-preview', 'chat:unknown'],
  ] as const)('%s %j on %s: %s', (endpoint, body, model, kind) => {
    const { kind: recorded, part } = live(endpoint, body, model)
    expect(recorded).toBe(kind)
    const repriced = costOfUsage(usage, priceForWebSearchKind(book.lookup('openai', model)!, recorded, model))
    expect(repriced.parts.find((p) => p.part === 'web_search')).toEqual(part)
    expect(webSearchKindFrom(recorded ?? null)).toBe(recorded)
  })

  it('a chat search repriced at another search model takes that model’s fee for the size asked', () => {
    const mini = book.lookup('openai', 'gpt-4o-mini-search-preview')!
    expect(priceForWebSearchKind(mini, 'chat:low', 'gpt-4o-mini-search-preview').webSearchMicrosPerKcall).toBe(25_000_000)
    expect(priceForWebSearchKind(gpt4o, 'chat:high', 'gpt-4o-search-preview').webSearchMicrosPerKcall).toBe(50_000_000)
    // At a model that does not search: the dearest known chat fee, flagged — never the Responses tool's $10.
    const elsewhere = priceForWebSearchKind(gpt4o, 'chat:low', 'gpt-4o')
    expect(elsewhere.webSearchMicrosPerKcall).toBe(CHAT_SEARCH_MICROS_PER_KCALL_MAX)
    expect(elsewhere.fallbackParts).toContain('web_search')
  })

  it('a stored value this version does not know reads as the model’s own fee', () => {
    expect(webSearchKindFrom('chat:enormous')).toBeUndefined()
    expect(webSearchKindFrom(null)).toBeUndefined()
  })
})
