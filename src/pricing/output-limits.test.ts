import { findProvider } from '@pydantic/genai-prices'
import { describe, expect, it } from 'vitest'
import { PriceBook } from './catalogue.js'
import { publishedOutputLimitIds, publishedOutputTokensMax } from './output-limits.js'

describe('published output limits', () => {
  // The providers' model pages, as of the table's last update.
  it.each([
    ['gpt-4o', 16_384],
    ['gpt-4o-2024-08-06', 16_384],
    ['gpt-4o-2024-05-13', 4_096],
    ['gpt-4o-mini-2024-07-18', 16_384],
    ['gpt-4.1-2025-04-14', 32_768],
    ['gpt-5', 128_000],
    ['gpt-5-mini-2025-08-07', 128_000],
    ['gpt-5-pro', 272_000],
    ['gpt-5-chat-latest', 16_384],
    ['o1-mini', 65_536],
    ['o3-mini-2025-01-31', 100_000],
    ['o4-mini', 100_000],
    ['codex-mini-latest', 100_000],
    ['gpt-3.5-turbo-0125', 4_096],
    ['claude-sonnet-4-5-20250929', 64_000],
    ['claude-sonnet-4-20250514', 64_000],
    ['claude-opus-4-1-20250805', 32_000],
    ['claude-opus-4-5', 64_000],
    ['claude-haiku-4-5', 64_000],
    ['claude-3-7-sonnet-latest', 64_000],
    ['claude-3-5-haiku-20241022', 8_192],
    ['anthropic/claude-sonnet-4-5', 64_000],
    ['openai/gpt-4.1-mini', 32_768],
  ] as const)('%s → %i', (model, tokens) => {
    expect(publishedOutputTokensMax(model)).toBe(tokens)
  })

  it('never lends an older sibling’s smaller limit to a newer model', () => {
    for (const model of ['claude-opus-4-6', 'claude-sonnet-4-6', 'gpt-5.1', 'gpt-4o-mini-tts', 'o3-deep-research-extra']) {
      expect(publishedOutputTokensMax(model)).toBeUndefined()
    }
  })

  it('bounds every OpenAI and Anthropic chat model in the catalogue: its published limit, else its context window', () => {
    const book = new PriceBook()
    const missing: string[] = []
    const notChat =
      /^(ada|babbage|curie|davinci|text-|ft:|whisper|moderation|gpt-image|gpt-.*-(tts|transcribe)|gpt-transcribe|gpt-5-image|gpt-5\.4-image|gpt-4o:extended|gpt-3\.5-0301|claude-v1|.*\.ft-)/
    for (const [providerId, kind] of [
      ['openai', 'openai'],
      ['anthropic', 'anthropic'],
    ] as const) {
      for (const model of findProvider({ providerId })!.models) {
        if (notChat.test(model.id)) continue
        const bound = book.outputTokensMax(kind, model.id)
        if (bound === undefined) missing.push(model.id)
        else expect(bound.tokens, model.id).toBeGreaterThan(0)
      }
    }
    // Neither a published limit we could check nor a context window: these get the configured
    // default (`models[].max_output_tokens` or `reservations.default_output_tokens`), written upstream.
    expect(missing).toEqual(['gpt-chat-latest'])
  })

  it('lists no limit above the model’s context window', () => {
    const book = new PriceBook()
    for (const id of publishedOutputLimitIds) {
      const provider = id.startsWith('claude') ? 'anthropic' : 'openai'
      const window = findProvider({ providerId: provider })!.models.find((m) => m.id === id)?.context_window
      if (typeof window === 'number') expect(publishedOutputTokensMax(id), id).toBeLessThanOrEqual(window)
      expect(book.outputTokensMax(provider, id)?.source).toBe('published')
    }
  })
})
