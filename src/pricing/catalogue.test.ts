import { calcPrice } from '@pydantic/genai-prices'
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../lib/clock.js'
import type { ModelRoute } from '../config/types.js'
import { emptyUsage, type ProviderKind, type Usage } from '../providers/types.js'
import { PriceBook, catalogueVersion } from './catalogue.js'
import { costOfUsage, fallbackPartsOf } from './cost.js'
import type { CostBreakdown } from './types.js'

// FakeClock's default now is 2026-11-15T12:00:00Z: after every start_date in the bundled data.
const clock = () => new FakeClock()

function usage(parts: Partial<Usage>): Usage {
  return { ...emptyUsage(), ...parts }
}

interface Case {
  name: string
  provider: ProviderKind
  model: string
  catalogueId: string
  usage: Usage
  // Plain numbers per kind of token; reasoning is inside `outputMicros` here (summed from its part).
  expected: Record<
    'uncachedInputMicros' | 'cacheReadMicros' | 'cacheWriteMicros' | 'audioInputMicros' | 'outputMicros' | 'audioOutputMicros' | 'totalMicros',
    number
  >
}

const zero = { uncachedInputMicros: 0, cacheReadMicros: 0, cacheWriteMicros: 0, audioInputMicros: 0, outputMicros: 0, audioOutputMicros: 0 }

/** A breakdown summed by token kind, in the table's terms. */
function byKind(cost: CostBreakdown): Case['expected'] {
  const sum = (...parts: string[]) => cost.parts.filter((p) => parts.includes(p.part)).reduce((total, p) => total + p.costMicros, 0)
  return {
    uncachedInputMicros: sum('input'),
    cacheReadMicros: sum('cache_read'),
    cacheWriteMicros: sum('cache_write_5m', 'cache_write_1h'),
    audioInputMicros: sum('audio_input'),
    outputMicros: sum('output', 'reasoning'),
    audioOutputMicros: sum('audio_output'),
    totalMicros: cost.totalMicros,
  }
}

/** Expected micros worked by hand from the catalogue's USD/Mtok prices (1 token at $x/Mtok = x µ$), rounded up per part. */
const cases: Case[] = [
  {
    // openai/gpt-4o: input 2.5, cache_read 1.25, output 10 (USD/Mtok)
    name: 'gpt-4o with cache reads',
    provider: 'openai',
    model: 'gpt-4o',
    catalogueId: 'openai/gpt-4o',
    usage: usage({ inputTokens: 12_345, cacheReadTokens: 4_096, outputTokens: 789, reasoningTokens: 100 }),
    expected: {
      ...zero,
      uncachedInputMicros: 20_623, // (12_345 − 4_096) × 2.5 = 20_622.5 → 20_623
      cacheReadMicros: 5_120, // 4_096 × 1.25
      outputMicros: 7_890, // 789 × 10 (reasoning inside)
      totalMicros: 33_633,
    },
  },
  {
    // openai/gpt-4o-mini via a dated snapshot id: input 0.15, cache_read 0.075, output 0.6
    name: 'gpt-4o-mini snapshot id',
    provider: 'openai',
    model: 'gpt-4o-mini-2024-07-18',
    catalogueId: 'openai/gpt-4o-mini',
    usage: usage({ inputTokens: 100_001, cacheReadTokens: 33_333, outputTokens: 4_321, reasoningTokens: 1 }),
    expected: {
      ...zero,
      uncachedInputMicros: 10_001, // 66_668 × 0.15 = 10_000.2 → 10_001
      cacheReadMicros: 2_500, // 33_333 × 0.075 = 2_499.975 → 2_500
      outputMicros: 2_593, // 4_321 × 0.6 = 2_592.6 → 2_593
      totalMicros: 15_094,
    },
  },
  {
    // openai/o4-mini (reasoning): input 1.1, cache_read 0.275, output 4.4
    name: 'o4-mini with cache and reasoning',
    provider: 'openai',
    model: 'o4-mini',
    catalogueId: 'openai/o4-mini',
    usage: usage({ inputTokens: 7_777, cacheReadTokens: 1_024, outputTokens: 3_333, reasoningTokens: 2_048 }),
    expected: {
      ...zero,
      uncachedInputMicros: 7_429, // 6_753 × 1.1 = 7_428.3 → 7_429
      cacheReadMicros: 282, // 1_024 × 0.275 = 281.6 → 282
      outputMicros: 14_666, // 3_333 × 4.4 = 14_665.2 → 14_666
      totalMicros: 22_377,
    },
  },
  {
    // openai/o3, conditional: since 2025-06-10 input 2, cache_read 0.5, output 8 (before: 10 / 0.5 / 40)
    name: 'o3 at its current conditional price',
    provider: 'openai',
    model: 'o3',
    catalogueId: 'openai/o3',
    usage: usage({ inputTokens: 50_000, cacheReadTokens: 30_000, outputTokens: 20_000, reasoningTokens: 15_000 }),
    expected: {
      ...zero,
      uncachedInputMicros: 40_000, // 20_000 × 2
      cacheReadMicros: 15_000, // 30_000 × 0.5
      outputMicros: 160_000, // 20_000 × 8
      totalMicros: 215_000,
    },
  },
  {
    // openai/gpt-audio: input 2.5, output 10, input_audio 32, output_audio 64; no cache prices
    name: 'gpt-audio with audio in and out',
    provider: 'openai',
    model: 'gpt-audio',
    catalogueId: 'openai/gpt-audio',
    usage: usage({ inputTokens: 1_000, audioInputTokens: 600, outputTokens: 500, audioOutputTokens: 300 }),
    expected: {
      ...zero,
      uncachedInputMicros: 1_000, // 400 × 2.5
      audioInputMicros: 19_200, // 600 × 32
      outputMicros: 2_000, // 200 × 10
      audioOutputMicros: 19_200, // 300 × 64
      totalMicros: 41_400,
    },
  },
  {
    // anthropic/claude-3-5-sonnet (dated id): input 3, cache_write 3.75, cache_read 0.3, output 15
    name: 'claude-3-5-sonnet with cache reads, writes and thinking',
    provider: 'anthropic',
    model: 'claude-3-5-sonnet-20241022',
    catalogueId: 'anthropic/claude-3-5-sonnet',
    usage: usage({ inputTokens: 10_007, cacheReadTokens: 6_001, cacheWriteTokens: 1_999, outputTokens: 1_003, reasoningTokens: 400 }),
    expected: {
      ...zero,
      uncachedInputMicros: 6_021, // 2_007 × 3
      cacheReadMicros: 1_801, // 6_001 × 0.3 = 1_800.3 → 1_801
      cacheWriteMicros: 7_497, // 1_999 × 3.75 = 7_496.25 → 7_497
      outputMicros: 15_045, // 1_003 × 15
      totalMicros: 30_364,
    },
  },
  {
    // anthropic/claude-sonnet-4-0: input 3, cache_write 3.75, cache_read 0.3, output 15
    name: 'claude-sonnet-4',
    provider: 'anthropic',
    model: 'claude-sonnet-4-20250514',
    catalogueId: 'anthropic/claude-sonnet-4-0',
    usage: usage({ inputTokens: 3_001, cacheReadTokens: 1_000, cacheWriteTokens: 1_000, outputTokens: 77, reasoningTokens: 50 }),
    expected: {
      ...zero,
      uncachedInputMicros: 3_003, // 1_001 × 3
      cacheReadMicros: 300, // 1_000 × 0.3
      cacheWriteMicros: 3_750, // 1_000 × 3.75
      outputMicros: 1_155, // 77 × 15
      totalMicros: 8_208,
    },
  },
  {
    // anthropic/claude-sonnet-4-5, tiered: above 200k input tokens input 6, cache_write 7.5, cache_read 0.6, output 22.5
    name: 'claude-sonnet-4-5 above the 200k tier',
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    catalogueId: 'anthropic/claude-sonnet-4-5',
    usage: usage({ inputTokens: 250_000, cacheReadTokens: 200_000, cacheWriteTokens: 10_000, outputTokens: 2_000, reasoningTokens: 1_000 }),
    expected: {
      ...zero,
      uncachedInputMicros: 240_000, // 40_000 × 6
      cacheReadMicros: 120_000, // 200_000 × 0.6
      cacheWriteMicros: 75_000, // 10_000 × 7.5
      outputMicros: 45_000, // 2_000 × 22.5
      totalMicros: 480_000,
    },
  },
  {
    // anthropic/claude-sonnet-4-5 at exactly 200k input: still the base tier (3 / 3.75 / 0.3 / 15)
    name: 'claude-sonnet-4-5 at the tier boundary',
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    catalogueId: 'anthropic/claude-sonnet-4-5',
    usage: usage({ inputTokens: 200_000, cacheReadTokens: 150_000, cacheWriteTokens: 1, outputTokens: 1, reasoningTokens: 1 }),
    expected: {
      ...zero,
      uncachedInputMicros: 149_997, // 49_999 × 3
      cacheReadMicros: 45_000, // 150_000 × 0.3
      cacheWriteMicros: 4, // 1 × 3.75 → 4
      outputMicros: 15, // 1 × 15
      totalMicros: 195_016,
    },
  },
]

describe('PriceBook against the bundled catalogue', () => {
  it('reads the catalogue version from its package.json', () => {
    expect(catalogueVersion).toBe('0.1.8')
  })

  for (const c of cases) {
    it(`${c.name}: exact micros`, () => {
      const book = new PriceBook({ clock: clock() })
      const price = book.lookup(c.provider, c.model, c.usage.inputTokens)
      expect(price?.source).toBe(`genai-prices@0.1.8:${c.catalogueId}`)
      const cost = costOfUsage(c.usage, price!)
      expect(byKind(cost)).toEqual(c.expected)
      expect(cost.totalMicros).toBe(cost.parts.reduce((sum, p) => sum + p.costMicros, 0))
    })

    it(`${c.name}: agrees with the library's calcPrice within 1 µ$ per token kind`, () => {
      const book = new PriceBook({ clock: clock() })
      const cost = costOfUsage(c.usage, book.lookup(c.provider, c.model, c.usage.inputTokens)!)
      const [providerId] = c.catalogueId.split('/')
      const lib = calcPrice(
        {
          input_tokens: c.usage.inputTokens,
          cache_read_tokens: c.usage.cacheReadTokens,
          cache_write_tokens: c.usage.cacheWriteTokens,
          input_audio_tokens: c.usage.audioInputTokens,
          output_tokens: c.usage.outputTokens,
          output_audio_tokens: c.usage.audioOutputTokens,
        },
        c.model,
        { providerId: providerId!, timestamp: new Date(clock().nowMs()) },
      )
      expect(lib).not.toBeNull()
      const kinds = byKind(cost)
      const ourInput = kinds.uncachedInputMicros + kinds.cacheReadMicros + kinds.cacheWriteMicros + kinds.audioInputMicros
      const ourOutput = kinds.outputMicros + kinds.audioOutputMicros
      const libInput = lib!.input_price * 1_000_000
      const libOutput = lib!.output_price * 1_000_000
      // Ours rounds each of up to 5 input / 3 output parts up: never below the library, at most 1 µ$ per part above.
      expect(ourInput).toBeGreaterThanOrEqual(libInput - 1e-6)
      expect(ourInput - libInput).toBeLessThanOrEqual(5)
      expect(ourOutput).toBeGreaterThanOrEqual(libOutput - 1e-6)
      expect(ourOutput - libOutput).toBeLessThanOrEqual(3)
    })
  }

  it('prices a part the catalogue lacks at the dearest known price of its kind, and flags it', () => {
    const price = new PriceBook({ clock: clock() }).lookup('openai', 'gpt-4o')!
    expect(price).toEqual({
      inputMicrosPerMtok: 2_500_000,
      outputMicrosPerMtok: 10_000_000,
      cacheReadMicrosPerMtok: 1_250_000,
      cacheWriteMicrosPerMtok: 2_500_000,
      cacheWrite1hMicrosPerMtok: 2_500_000,
      audioInputMicrosPerMtok: 2_500_000,
      audioOutputMicrosPerMtok: 10_000_000,
      fallbackParts: ['cache_write_5m', 'cache_write_1h', 'audio_input', 'audio_output'],
      // Per-call tool fees, µ$ per 1,000 calls: web searches $10, file searches $2.50.
      webSearchMicrosPerKcall: 10_000_000,
      fileSearchMicrosPerKcall: 2_500_000,
      source: 'genai-prices@0.1.8:openai/gpt-4o',
      tier: 'base',
    })
    // claude-sonnet-4-5 has every part: 1-hour writes at the catalogue's own price (2× input).
    const claude = new PriceBook({ clock: clock() }).lookup('anthropic', 'claude-sonnet-4-5', 1_000)!
    expect(claude).toMatchObject({ cacheWriteMicrosPerMtok: 3_750_000, cacheWrite1hMicrosPerMtok: 6_000_000, tier: 'base' })
    expect(claude.fallbackParts).toEqual(['audio_input', 'audio_output'])
    // The dearest-tier answer keeps the per-call fees.
    expect(new PriceBook({ clock: clock() }).lookup('anthropic', 'claude-sonnet-4-5')).toMatchObject({ tier: 'dearest', webSearchMicrosPerKcall: 10_000_000 })
    expect(claude).not.toHaveProperty('fileSearchMicrosPerKcall')
  })

  it('prices the dearest tier when no input count is given', () => {
    const book = new PriceBook({ clock: clock() })
    expect(book.lookup('anthropic', 'claude-sonnet-4-5')?.inputMicrosPerMtok).toBe(6_000_000)
    expect(book.lookup('anthropic', 'claude-sonnet-4-5', 200_000)?.inputMicrosPerMtok).toBe(3_000_000)
    expect(book.lookup('anthropic', 'claude-sonnet-4-5', 200_001)?.inputMicrosPerMtok).toBe(6_000_000)
  })

  it('switches conditional prices at a start date, also for a memoised lookup', () => {
    const fake = new FakeClock(Date.UTC(2025, 5, 9, 23, 59, 59))
    const book = new PriceBook({ clock: fake })
    // openai/o3 before 2025-06-10: input 10, output 40
    expect(book.lookup('openai', 'o3')).toMatchObject({ inputMicrosPerMtok: 10_000_000, outputMicrosPerMtok: 40_000_000 })
    fake.advance(1_000)
    expect(book.lookup('openai', 'o3')).toMatchObject({ inputMicrosPerMtok: 2_000_000, outputMicrosPerMtok: 8_000_000 })
  })

  it('switches time-of-day prices both ways', () => {
    // deepseek/deepseek-chat: 00:30–16:30 UTC input 0.27 / output 1.1, otherwise 0.135 / 0.55
    const fake = new FakeClock(Date.UTC(2026, 10, 15, 16, 29, 59))
    const book = new PriceBook({ clock: fake })
    expect(book.lookup('openai-compatible', 'deepseek-chat')?.inputMicrosPerMtok).toBe(270_000)
    fake.advance(1_000)
    expect(book.lookup('openai-compatible', 'deepseek-chat')?.inputMicrosPerMtok).toBe(135_000)
    fake.set(Date.UTC(2026, 10, 16, 0, 29, 59))
    expect(book.lookup('openai-compatible', 'deepseek-chat')?.outputMicrosPerMtok).toBe(550_000)
    fake.advance(1_000)
    expect(book.lookup('openai-compatible', 'deepseek-chat')?.outputMicrosPerMtok).toBe(1_100_000)
  })

  it('prices the mock like the real provider', () => {
    const book = new PriceBook({ clock: clock() })
    expect(book.lookup('mock', 'gpt-4o')?.source).toBe('genai-prices@0.1.8:openai/gpt-4o')
    expect(book.lookup('mock', 'o4-mini')?.source).toBe('genai-prices@0.1.8:openai/o4-mini')
    expect(book.lookup('mock', 'claude-3-5-sonnet-latest')?.source).toBe('genai-prices@0.1.8:anthropic/claude-3-5-sonnet')
  })

  it('finds openai-compatible models across providers', () => {
    const book = new PriceBook({ clock: clock() })
    expect(book.lookup('openai-compatible', 'gpt-4o-mini')?.source).toBe('genai-prices@0.1.8:openai/gpt-4o-mini')
    expect(book.lookup('openai-compatible', 'deepseek-chat')?.source).toBe('genai-prices@0.1.8:deepseek/deepseek-chat')
  })

  it('returns undefined for unknown models and models not priced per token', () => {
    const book = new PriceBook({ clock: clock() })
    expect(book.lookup('openai', 'no-such-model')).toBeUndefined()
    expect(book.lookup('anthropic', 'gpt-4o')).toBeUndefined()
    expect(book.lookup('openai-compatible', 'no-such-model')).toBeUndefined()
    expect(book.lookup('mock', 'mock-model')).toBeUndefined()
    expect(book.lookup('openai', 'whisper-1')).toBeUndefined() // priced per audio hour
    expect(book.lookup('openai', 'no-such-model')).toBeUndefined() // memoised miss
  })

  it('keeps the lookup cache bounded', () => {
    const book = new PriceBook({ clock: clock(), lookupCacheEntriesMax: 2 })
    book.lookup('openai', 'gpt-4o')
    book.lookup('openai', 'gpt-4o-mini')
    book.lookup('openai', 'nope')
    expect(book.cachedEntries).toBe(2)
    expect(book.lookup('openai', 'gpt-4o')?.inputMicrosPerMtok).toBe(2_500_000)
    // Across providers too: a flood of one provider's unknown models cannot grow it.
    book.lookup('anthropic', 'claude-sonnet-4-5')
    for (let i = 0; i < 10; i++) book.lookup('openai-compatible', `nope-${i}`)
    expect(book.cachedEntries).toBe(2)
    expect(book.lookup('anthropic', 'claude-sonnet-4-5')?.source).toContain('anthropic')
  })
})

describe('PriceBook overrides', () => {
  const route = (name: string, upstreamModel: string, pricing: ModelRoute['pricing']): ModelRoute => ({
    name,
    target: undefined,
    upstreamModel,
    pricing,
    degradeTo: undefined,
    outputTokensMax: undefined,
  })

  const only = (input: number, output: number, more: Partial<NonNullable<ModelRoute['pricing']>> = {}): NonNullable<ModelRoute['pricing']> => ({
    inputMicrosPerMtok: input,
    outputMicrosPerMtok: output,
    cacheReadMicrosPerMtok: undefined,
    cacheWriteMicrosPerMtok: undefined,
    cacheWrite1hMicrosPerMtok: undefined,
    audioInputMicrosPerMtok: undefined,
    audioOutputMicrosPerMtok: undefined,
    webSearchMicrosPerKcall: undefined,
    fileSearchMicrosPerKcall: undefined,
    ...more,
  })

  it('beat the catalogue, by route name or upstream model, and fill missing parts with the dearest of their kind', () => {
    const book = new PriceBook({
      clock: clock(),
      routes: [
        route('gpt-4o', 'gpt-4o', only(1_000_000, 2_000_000)),
        route('cheap', 'gpt-4o-mini', only(100, 200, { cacheReadMicrosPerMtok: 50, cacheWriteMicrosPerMtok: 150 })),
        route('audio', 'gpt-4o-audio-preview', only(2_500_000, 10_000_000, { audioInputMicrosPerMtok: 40_000_000, audioOutputMicrosPerMtok: 80_000_000 })),
        route('claude', 'claude-sonnet-4-5', undefined),
      ],
    })
    expect(book.lookup('openai', 'gpt-4o')).toEqual({
      inputMicrosPerMtok: 1_000_000,
      outputMicrosPerMtok: 2_000_000,
      cacheReadMicrosPerMtok: 1_000_000,
      cacheWriteMicrosPerMtok: 1_000_000,
      cacheWrite1hMicrosPerMtok: 1_000_000,
      audioInputMicrosPerMtok: 1_000_000,
      audioOutputMicrosPerMtok: 2_000_000,
      fallbackParts: ['cache_read', 'cache_write_5m', 'cache_write_1h', 'audio_input', 'audio_output'],
      source: 'override:gpt-4o',
      tier: 'override',
    })
    expect(book.lookup('openai', 'cheap')).toMatchObject({
      cacheReadMicrosPerMtok: 50,
      cacheWriteMicrosPerMtok: 150,
      cacheWrite1hMicrosPerMtok: 150,
      source: 'override:cheap',
    })
    // An override with the published audio prices fixes what the catalogue lacks.
    expect(book.lookup('openai', 'audio')).toMatchObject({ audioInputMicrosPerMtok: 40_000_000, audioOutputMicrosPerMtok: 80_000_000 })
    expect(book.lookup('openai', 'audio')!.fallbackParts).not.toContain('audio_output')
    expect(book.lookup('openai', 'gpt-4o-mini')?.source).toBe('override:cheap')
    // A route without pricing does not override.
    expect(book.lookup('anthropic', 'claude-sonnet-4-5', 10)?.source).toBe('genai-prices@0.1.8:anthropic/claude-sonnet-4-5')
  })

  it('set the search fees the catalogue states or lacks: an overridden fee is charged, not flagged', () => {
    const book = new PriceBook({
      clock: clock(),
      routes: [route('gpt-4.1', 'gpt-4.1', only(2_000_000, 8_000_000, { webSearchMicrosPerKcall: 12_500_000, fileSearchMicrosPerKcall: 0 }))],
    })
    const cost = costOfUsage(usage({ inputTokens: 1_000, webSearches: 2, fileSearches: 3 }), book.lookup('openai', 'gpt-4.1')!)
    // 2 × $0.0125 instead of the catalogue's 2 × $0.01; file searches free as the override says.
    expect(cost.parts.find((p) => p.part === 'web_search')).toMatchObject({ costMicros: 25_000, fallback: false })
    expect(cost.parts.find((p) => p.part === 'file_search')).toMatchObject({ costMicros: 0, fallback: false })
    expect(fallbackPartsOf(cost)).not.toContain('web_search')
  })

  it("keep the catalogue's context window: a price override does not change what the model reads", () => {
    const book = new PriceBook({ clock: clock(), routes: [route('cheap', 'gpt-4o-mini', only(100, 200)), route('mine', 'my-own-model', only(100, 200))] })
    expect(book.contextWindow('openai', 'gpt-4o-mini')).toBe(128_000)
    expect(book.contextWindow('mock', 'gpt-4.1')).toBe(1_000_000)
    expect(book.contextWindow('anthropic', 'claude-sonnet-4-5')).toBe(200_000)
    expect(book.contextWindow('openai-compatible', 'my-own-model')).toBeUndefined()
  })
})

describe('costOfUsage', () => {
  const price = new PriceBook({ clock: clock() }).lookup('openai', 'gpt-4o')!

  it('refuses inconsistent usage instead of clamping', () => {
    expect(() => costOfUsage(usage({ inputTokens: 10, cacheReadTokens: 11 }), price)).toThrow(/exceed input/)
    expect(() => costOfUsage(usage({ inputTokens: 10, cacheReadTokens: 5, cacheWriteTokens: 3, audioInputTokens: 3 }), price)).toThrow(/exceed input/)
    expect(() => costOfUsage(usage({ outputTokens: 1, reasoningTokens: 2 }), price)).toThrow(/reasoning/)
    expect(() => costOfUsage(usage({ outputTokens: 1, audioOutputTokens: 2 }), price)).toThrow(/audio output/)
    expect(() => costOfUsage(usage({ inputTokens: -1 }), price)).toThrow(/inputTokens/)
    expect(() => costOfUsage(usage({ outputTokens: 1.5 }), price)).toThrow(/outputTokens/)
  })

  it('is zero for empty usage', () => {
    expect(costOfUsage(usage({}), price).totalMicros).toBe(0)
  })
})
