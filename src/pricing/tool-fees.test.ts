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
  FILE_SEARCH_MICROS_PER_KCALL_DEFAULT,
  SERVER_SEARCHES_RESERVED_DEFAULT,
  WEB_SEARCH_MICROS_PER_KCALL_DEFAULT,
  priceForServerSearches,
  serverSearchFeesMicros,
  serverSearchesOf,
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
    const searches = serverSearchesOf('responses', { tools: [{ type: 'web_search_preview' }] })!
    const cost = costOfUsage({ ...tokens, webSearches: 4 }, priceForServerSearches(gpt41, searches))
    expect(cost.parts.find((p) => p.part === 'web_search')).toMatchObject({ costMicros: 100_000, fallback: true })
    expect(priceForServerSearches(gpt41, serverSearchesOf('responses', { tools: [{ type: 'web_search' }] }))).toBe(gpt41)
  })
})

describe('serverSearchesOf: what the worst case reserves', () => {
  it('takes an Anthropic web search tool at its max_uses, else the default', () => {
    expect(serverSearchesOf('messages', { tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }] })).toEqual({
      webSearches: 5,
      fileSearches: 0,
      webSearchPreview: false,
    })
    expect(serverSearchesOf('messages', { tools: [{ type: 'web_search_20250305', name: 'web_search' }] })?.webSearches).toBe(SERVER_SEARCHES_RESERVED_DEFAULT)
    expect(serverSearchesOf('messages', { tools: [{ name: 'lookup', input_schema: {} }, { type: 'web_fetch_20250910' }] })).toBeUndefined()
  })

  it('takes Responses search tools at max_tool_calls, else the default', () => {
    expect(serverSearchesOf('responses', { max_tool_calls: 3, tools: [{ type: 'web_search' }, { type: 'file_search' }] })).toEqual({
      webSearches: 3,
      fileSearches: 3,
      webSearchPreview: false,
    })
    expect(serverSearchesOf('responses', { tools: [{ type: 'web_search_preview_2025_03_11' }] })).toEqual({
      webSearches: SERVER_SEARCHES_RESERVED_DEFAULT,
      fileSearches: 0,
      webSearchPreview: true,
    })
    expect(serverSearchesOf('responses', { tools: [{ type: 'function', name: 'f' }] })).toBeUndefined()
    expect(serverSearchesOf('chat_completions', { tools: [{ type: 'function' }] })).toBeUndefined()
  })

  it('prices the allowed searches at the model fee', () => {
    const haiku = book.lookup('anthropic', 'claude-haiku-4-5')!
    expect(serverSearchFeesMicros({ webSearches: 5, fileSearches: 0, webSearchPreview: false }, haiku)).toBe(50_000)
    expect(serverSearchFeesMicros(undefined, haiku)).toBe(0)
  })
})
