/** Console formatting and date ranges, pure: what a reader sees for amounts, changes and windows. */
import { describe, expect, it } from 'vitest'
import { costPartLabel, formatChange, formatPercent, formatUsd, searchesLabel } from './format'
import { isoDay, lastDays, previousRange, rangeDays, rangeFromParams, shownRange, wireRange } from './range'

describe('formatUsd', () => {
  it.each([
    [0, '$0.00'],
    [1234.5, '$1,234.50'],
    [0.000412, '$0.000412'],
    [0.5, '$0.50'],
    [null, '—'],
  ])('%s → %s', (value, text) => expect(formatUsd(value)).toBe(text))
})

describe('formatChange', () => {
  it.each([
    [120, 100, '+20%'],
    [60, 100, '−40%'],
    [100, 100, '±0%'],
    [999, 100, '+899%'],
    [1000, 100, '×10'],
    [47_830, 10, '×4783'],
    [5, 0, 'new'],
    [5, undefined, 'new'],
    [0, undefined, '—'],
  ])('%s vs %s → %s', (current, previous, text) => expect(formatChange(current, previous)).toBe(text))
})

it('formatPercent keeps one decimal', () => {
  expect(formatPercent(81.26)).toBe('81.3%')
})

describe('date ranges', () => {
  const now = new Date(2026, 10, 15, 13, 0).getTime()

  it('lastDays includes today', () => {
    expect(lastDays(7, now)).toEqual({ from: '2026-11-09', to: '2026-11-15' })
  })

  it('sends a half-open range: local midnight of the first day to local midnight after the last', () => {
    const wire = wireRange({ from: '2026-11-09', to: '2026-11-15' })
    expect(Date.parse(wire.to) - Date.parse(wire.from)).toBe(7 * 86_400_000)
    expect(isoDay(Date.parse(wire.from))).toBe('2026-11-09')
  })

  it('shows a half-open range as the days it covers, the last one included', () => {
    const wire = wireRange({ from: '2026-11-04', to: '2026-12-03' })
    expect(shownRange(wire.from, wire.to)).toEqual({ from: '2026-11-04', to: '2026-12-03' })
  })

  it('the previous window has the same length and ends the day before', () => {
    expect(previousRange({ from: '2026-11-09', to: '2026-11-15' })).toEqual({ from: '2026-11-02', to: '2026-11-08' })
    expect(rangeDays(previousRange({ from: '2026-11-01', to: '2026-11-30' }))).toBe(30)
  })

  it('falls back on missing, malformed or reversed URL ranges', () => {
    const fallback = { from: '2026-11-01', to: '2026-11-02' }
    expect(rangeFromParams(new URLSearchParams('from=2026-11-05&to=2026-11-06'), fallback)).toEqual({ from: '2026-11-05', to: '2026-11-06' })
    expect(rangeFromParams(new URLSearchParams('from=yesterday&to=2026-11-06'), fallback)).toBe(fallback)
    expect(rangeFromParams(new URLSearchParams('from=2026-11-07&to=2026-11-06'), fallback)).toBe(fallback)
    expect(rangeFromParams(new URLSearchParams(''), fallback)).toBe(fallback)
  })
})

describe('a cost breakdown line', () => {
  it('a token part reads as tokens at a price per million', () => {
    expect(costPartLabel({ part: 'cache_read', tokens: 2_324, unit_usd_per_mtok: 1.25 })).toBe('cache read · 2,324 tokens at $1.25/M')
  })

  it('a search fee reads as searches at a price per thousand, not as tokens', () => {
    expect(costPartLabel({ part: 'web_search', tokens: 3, unit_usd_per_mtok: 10_000 })).toBe('web search · 3 searches at $10.00 per 1,000')
    expect(costPartLabel({ part: 'file_search', tokens: 1, unit_usd_per_mtok: 2_500 })).toBe('file search · 1 search at $2.50 per 1,000')
  })
})

it('searchesLabel names web searches with the fee they paid, and file searches', () => {
  expect(searchesLabel({ web_searches: 3, file_searches: 1, web_search_kind: 'chat:medium' })).toBe('3 web (chat:medium) · 1 file')
  expect(searchesLabel({ web_searches: 2, file_searches: 0, web_search_kind: null })).toBe('2 web')
  expect(searchesLabel({ web_searches: 0, file_searches: 0, web_search_kind: null })).toBeUndefined()
})
