/**
 * Usage → money, checked as properties over random usage on real catalogue models: the breakdown
 * adds up to the cost, each part is its tokens at its unit price rounded up by less than one µ$,
 * and the cost is never below what the catalogue's own calculator (`calcPrice`) makes of the same
 * usage — tiers, 1-hour cache writes and audio included.
 */
import { calcPrice } from '@pydantic/genai-prices'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ProviderKind, Usage } from '../providers/types.js'
import { PriceBook } from './catalogue.js'
import { costOfUsage } from './cost.js'

const MODELS: ReadonlyArray<readonly [ProviderKind, string, string]> = [
  ['openai', 'gpt-4o-mini', 'openai'],
  ['openai', 'gpt-4.1', 'openai'],
  ['openai', 'gpt-5', 'openai'],
  ['openai', 'o3', 'openai'],
  ['openai', 'gpt-audio', 'openai'],
  ['openai', 'gpt-4o-audio-preview', 'openai'],
  ['openai', 'text-embedding-3-small', 'openai'],
  ['anthropic', 'claude-haiku-4-5', 'anthropic'],
  ['anthropic', 'claude-sonnet-4-5', 'anthropic'],
  ['anthropic', 'claude-opus-4-1', 'anthropic'],
]

/** Usage with every subset inside its total, up to beyond the 200k-token tier. */
const usageArb: fc.Arbitrary<Usage> = fc
  .record({
    uncached: fc.integer({ min: 0, max: 400_000 }),
    cacheRead: fc.integer({ min: 0, max: 100_000 }),
    write5m: fc.integer({ min: 0, max: 50_000 }),
    write1h: fc.integer({ min: 0, max: 50_000 }),
    audioInput: fc.integer({ min: 0, max: 20_000 }),
    text: fc.integer({ min: 0, max: 60_000 }),
    reasoning: fc.integer({ min: 0, max: 60_000 }),
    audioOutput: fc.integer({ min: 0, max: 20_000 }),
  })
  .map((u) => ({
    inputTokens: u.uncached + u.cacheRead + u.write5m + u.write1h + u.audioInput,
    cacheReadTokens: u.cacheRead,
    cacheWriteTokens: u.write5m + u.write1h,
    cacheWrite1hTokens: u.write1h,
    audioInputTokens: u.audioInput,
    outputTokens: u.text + u.reasoning + u.audioOutput,
    reasoningTokens: u.reasoning,
    audioOutputTokens: u.audioOutput,
  }))

const book = new PriceBook()

describe('costOfUsage on catalogue models', () => {
  it('adds its parts up to the cost, each rounded up by less than one µ$', () => {
    fc.assert(
      fc.property(fc.constantFrom(...MODELS), usageArb, ([provider, model], usage) => {
        const price = book.lookup(provider, model, usage.inputTokens)!
        const breakdown = costOfUsage(usage, price)
        expect(breakdown.parts.reduce((sum, p) => sum + p.costMicros, 0)).toBe(breakdown.totalMicros)
        for (const part of breakdown.parts) {
          const exact = BigInt(part.tokens) * BigInt(part.unitMicrosPerMtok)
          const charged = BigInt(part.costMicros) * 1_000_000n
          expect(charged >= exact && charged - exact < 1_000_000n).toBe(true)
        }
        const tokens = breakdown.parts.reduce((sum, p) => sum + p.tokens, 0)
        expect(tokens).toBe(usage.inputTokens + usage.outputTokens)
      }),
      { numRuns: 500 },
    )
  })

  it('is never below what the catalogue itself prices the same usage at', () => {
    fc.assert(
      fc.property(fc.constantFrom(...MODELS), usageArb, ([provider, model, catalogueProvider], usage) => {
        const ours = costOfUsage(usage, book.lookup(provider, model, usage.inputTokens)!).totalMicros
        const theirs = calcPrice(
          {
            input_tokens: usage.inputTokens,
            cache_read_tokens: usage.cacheReadTokens,
            cache_write_tokens: usage.cacheWriteTokens,
            cache_write_1h_tokens: usage.cacheWrite1hTokens,
            input_audio_tokens: usage.audioInputTokens,
            output_tokens: usage.outputTokens,
            output_audio_tokens: usage.audioOutputTokens,
          },
          model,
          { providerId: catalogueProvider },
        )
        expect(theirs).not.toBeNull()
        // The catalogue computes in floating-point dollars; a thousandth of a µ$ absorbs its error.
        expect(ours).toBeGreaterThanOrEqual(theirs!.total_price * 1_000_000 - 0.001)
      }),
      { numRuns: 500 },
    )
  })
})
