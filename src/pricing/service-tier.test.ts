/**
 * Service tiers: a call served at `priority` is never charged below OpenAI's priority prices (2×
 * the standard ones, the top of the published ratios), and the breakdown and price source say the
 * tier was priced as an upper bound. `flex` keeps the standard prices, flagged as above the bill.
 */
import { describe, expect, it } from 'vitest'
import type { Usage } from '../providers/types.js'
import { PriceBook } from './catalogue.js'
import { costOfUsage } from './cost.js'
import { PRIORITY_PRICE_PERCENT, priceAtServiceTier, serviceTierPricing } from './service-tier.js'

const book = new PriceBook()
const gpt41 = book.lookup('openai', 'gpt-4.1')!
const usage: Usage = {
  inputTokens: 10_000,
  cacheReadTokens: 4_000,
  cacheWriteTokens: 0,
  cacheWrite1hTokens: 0,
  outputTokens: 1_000,
  reasoningTokens: 0,
  audioInputTokens: 0,
  audioOutputTokens: 0,
}

describe('priceAtServiceTier', () => {
  it('leaves the standard tiers (and none named) at the catalogue price, the same object', () => {
    for (const tier of [undefined, 'default', 'auto', 'standard']) expect(priceAtServiceTier(gpt41, tier)).toBe(gpt41)
  })

  it('prices priority at 2× every per-token price and says it is an upper bound', () => {
    const priority = priceAtServiceTier(gpt41, 'priority')
    expect(PRIORITY_PRICE_PERCENT).toBe(200)
    expect(priority.inputMicrosPerMtok).toBe(2 * gpt41.inputMicrosPerMtok)
    expect(priority.cacheReadMicrosPerMtok).toBe(2 * gpt41.cacheReadMicrosPerMtok)
    expect(priority.outputMicrosPerMtok).toBe(2 * gpt41.outputMicrosPerMtok)
    expect(priority.source).toBe(`${gpt41.source};service_tier:priority@200%~upper_bound`)
    const standard = costOfUsage(usage, gpt41)
    const charged = costOfUsage(usage, priority)
    // $2/Mtok × 6k + $0.5/Mtok × 4k + $8/Mtok × 1k = 22,000 µ$ standard; priority 44,000 µ$.
    expect(standard.totalMicros).toBe(22_000)
    expect(charged.totalMicros).toBe(44_000)
    expect(charged.serviceTier).toEqual({ name: 'priority', pricePercent: 200, upperBound: true })
    expect(standard).not.toHaveProperty('serviceTier')
  })

  it('keeps flex (and scale, batch) at the standard prices, flagged as an upper bound', () => {
    const flex = priceAtServiceTier(gpt41, 'flex')
    expect(flex.inputMicrosPerMtok).toBe(gpt41.inputMicrosPerMtok)
    expect(flex.source).toMatch(/;service_tier:flex@100%~upper_bound$/)
    expect(costOfUsage(usage, flex).totalMicros).toBe(costOfUsage(usage, gpt41).totalMicros)
    expect(serviceTierPricing('scale')).toEqual({ name: 'scale', pricePercent: 100, upperBound: true })
  })

  it('prices a tier it does not know like priority: a new tier may cost more', () => {
    expect(serviceTierPricing('turbo')).toEqual({ name: 'turbo', pricePercent: 200, upperBound: true })
  })
})
