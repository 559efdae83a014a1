import fc from 'fast-check'
import { countTokens, encodeChat } from 'gpt-tokenizer'
import { describe, expect, it } from 'vitest'
import { countTokens as countTokensLinear } from '../lib/tokenizer.js'
import { micros } from '../money/index.js'
import type { Usage } from '../providers/types.js'
import { costOfUsage } from './cost.js'
import {
  affordableOutputTokens,
  affordableOutputTokensMax,
  anthropicToolSystemTokens,
  countTextTokens,
  defaultMediaAllowances,
  estimateInputTokens,
  estimateInputTokensInSlices,
  mediaAllowancesOf,
  promptTextOf,
  tokenizerFitOf,
  worstCaseCost,
} from './estimate.js'
import type { ModelPrice } from './types.js'

const unicodeText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 300 }),
  fc.string({ unit: 'binary-ascii', maxLength: 300 }),
  // Special-token spellings are plain text to us and must neither throw nor undercount.
  fc.constantFrom('<|endoftext|>', '<|im_start|>user\nhi<|im_end|>', '\ud800\udc00\ud800', '   \n\n\t'),
)

const priceArb: fc.Arbitrary<ModelPrice> = fc.record({
  inputMicrosPerMtok: fc.integer({ min: 0, max: 200_000_000 }),
  outputMicrosPerMtok: fc.integer({ min: 0, max: 600_000_000 }),
  cacheReadMicrosPerMtok: fc.integer({ min: 0, max: 200_000_000 }),
  cacheWriteMicrosPerMtok: fc.integer({ min: 0, max: 200_000_000 }),
  cacheWrite1hMicrosPerMtok: fc.integer({ min: 0, max: 200_000_000 }),
  audioInputMicrosPerMtok: fc.integer({ min: 0, max: 200_000_000 }),
  audioOutputMicrosPerMtok: fc.integer({ min: 0, max: 600_000_000 }),
  fallbackParts: fc.constant([]),
  source: fc.constant('test'),
  tier: fc.constant('base'),
})

describe('countTextTokens / estimateInputTokens', () => {
  it('byte bound is never below the tokenizer count', () => {
    fc.assert(
      fc.property(unicodeText, (text) => {
        const counted = countTextTokens(text, Number.MAX_SAFE_INTEGER)
        const bound = countTextTokens(text, 0)
        expect(counted.method).toBe('tokenizer')
        expect(bound.method).toBe(text.length === 0 ? 'tokenizer' : 'byte_bound')
        expect(bound.tokens).toBeGreaterThanOrEqual(counted.tokens)
        // The tokenizer's count, or more where a pre-token is too long to merge (lib/tokenizer.test.ts).
        expect(counted.tokens).toBe(countTokensLinear(text))
        expect(counted.tokens).toBeGreaterThanOrEqual(countTokens(text, { disallowedSpecial: new Set() }))
        // Foreign tokenizers: scaled, never past the byte bound, never below the o200k count.
        const foreign = countTextTokens(text, Number.MAX_SAFE_INTEGER, 'foreign')
        expect(foreign.tokens).toBeLessThanOrEqual(bound.tokens)
        expect(foreign.tokens).toBeGreaterThanOrEqual(counted.tokens)
      }),
      { numRuns: 500 },
    )
  })

  it('switches to the byte bound above tokenizerMaxBytes', () => {
    const text = 'héllo wörld '.repeat(10)
    const bytes = Buffer.byteLength(text)
    expect(countTextTokens(text, bytes).method).toBe('tokenizer')
    expect(countTextTokens(text, bytes - 1)).toEqual({ tokens: bytes, method: 'byte_bound' })
  })

  it('counts the same in slices as in one block, whatever the text, limit and tokenizer', async () => {
    const long = fc.array(unicodeText, { maxLength: 400 }).map((parts) => parts.join(' '))
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(unicodeText, long),
        fc.integer({ min: 0, max: 200_000 }),
        fc.constantFrom('o200k' as const, 'foreign' as const),
        async (text, limit, fit) => {
          const prompt = { text, segments: 2, messages: 3, fixedTokens: 7, mediaParts: 0 }
          expect(await estimateInputTokensInSlices(prompt, limit, fit)).toEqual(estimateInputTokens(prompt, limit, fit))
          expect(await estimateInputTokensInSlices(text, limit, fit)).toEqual(estimateInputTokens(text, limit, fit))
        },
      ),
      { numRuns: 200 },
    )
  })

  it('adds framing: a plain string is one message', () => {
    const text = 'Hello there, how are you?'
    expect(estimateInputTokens(text, 1 << 20)).toEqual({ tokens: countTokens(text) + 1 + 4 + 3, method: 'tokenizer' })
  })

  it('never estimates a chat below what gpt-4o counts for it (encodeChat)', () => {
    const messageArb = fc.record({
      role: fc.constantFrom('system' as const, 'user' as const, 'assistant' as const),
      content: fc.string({ unit: 'grapheme', maxLength: 200 }),
    })
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 8 }), fc.boolean(), (messages, byBytes) => {
        const estimate = estimateInputTokens(promptTextOf('chat_completions', { messages }), byBytes ? 0 : 1 << 20)
        const actual = encodeChat(messages, 'gpt-4o').length
        expect(estimate.tokens).toBeGreaterThanOrEqual(actual)
      }),
      { numRuns: 300 },
    )
  })

  it('maps models to tokenizers', () => {
    expect(tokenizerFitOf('openai', 'gpt-4o-mini')).toBe('o200k')
    expect(tokenizerFitOf('openai', 'o3')).toBe('o200k')
    expect(tokenizerFitOf('openai', 'gpt-3.5-turbo')).toBe('foreign')
    expect(tokenizerFitOf('anthropic', 'claude-sonnet-4-5')).toBe('foreign')
    expect(tokenizerFitOf('mock', 'gpt-5')).toBe('o200k')
    expect(tokenizerFitOf('openai-compatible', 'llama-3.3-70b')).toBe('foreign')
  })
})

describe('mediaAllowancesOf', () => {
  it('allows gpt-4o-mini, its snapshots and fine-tunes its largest image; other models the flat allowance', () => {
    for (const model of ['gpt-4o-mini', 'GPT-4o-mini', 'gpt-4o-mini-2024-07-18', 'ft:gpt-4o-mini-2024-07-18:acme::abc123', 'openai/gpt-4o-mini']) {
      expect(mediaAllowancesOf(model).imagePartTokens, model).toBe(2_833 + 8 * 5_667)
    }
    // Variants that take no images, and models whose largest image fits the flat allowance.
    for (const model of ['gpt-4o-mini-search-preview', 'gpt-4o-mini-audio-preview', 'gpt-4o-mini-transcribe', 'gpt-4o', 'gpt-4.1-mini', 'claude-haiku-4-5']) {
      expect(mediaAllowancesOf(model), model).toEqual(defaultMediaAllowances)
    }
    expect(mediaAllowancesOf('gpt-4o-mini').audioPartTokensMin).toBe(defaultMediaAllowances.audioPartTokensMin)
  })
})

describe('promptTextOf', () => {
  const a = defaultMediaAllowances

  it('chat completions: text parts, tool calls and tool definitions; images by allowance', () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]
    const prompt = promptTextOf('chat_completions', {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${'A'.repeat(100_000)}` } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ],
      tools,
    })
    expect(prompt.messages).toBe(4)
    expect(prompt.mediaParts).toBe(1)
    expect(prompt.fixedTokens).toBe(a.imagePartTokens)
    for (const piece of ['Be brief.', 'What is this?', '{"city":"Paris"}', 'sunny', JSON.stringify(tools)]) {
      expect(prompt.text).toContain(piece)
    }
    expect(prompt.text).not.toContain('AAAA') // image data is not text
  })

  it('chat completions: audio and file parts scale with their data', () => {
    const audio = 'A'.repeat(400_000) // 300_000 bytes decoded → 3_000 tokens at 100 B/token
    const prompt = promptTextOf('chat_completions', {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'input_audio', input_audio: { data: audio, format: 'wav' } },
            { type: 'file', file: { file_id: 'file-abc' } },
          ],
        },
      ],
    })
    expect(prompt.mediaParts).toBe(2)
    expect(prompt.fixedTokens).toBe(3_000 + a.filePartTokensMin)
  })

  it('responses: input string or items, instructions, tools', () => {
    const fromString = promptTextOf('responses', { input: 'Tell me a joke', instructions: 'Be funny' })
    expect(fromString.messages).toBe(2)
    expect(fromString.text).toContain('Tell me a joke')
    expect(fromString.text).toContain('Be funny')
    const fromItems = promptTextOf('responses', {
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Describe' },
            { type: 'input_image', image_url: 'https://x/y.png' },
          ],
        },
        { type: 'function_call_output', call_id: 'c1', output: '42' },
      ],
      tools: [{ type: 'function', name: 'calc', parameters: {} }],
    })
    expect(fromItems.messages).toBe(2)
    expect(fromItems.mediaParts).toBe(1)
    expect(fromItems.text).toContain('Describe')
    expect(fromItems.text).toContain('42')
    expect(fromItems.text).toContain('"name":"calc"')
  })

  it('embeddings: strings are text, token arrays count as their length', () => {
    expect(promptTextOf('embeddings', { input: 'hello' })).toMatchObject({ text: 'hello', messages: 1, fixedTokens: 0 })
    expect(promptTextOf('embeddings', { input: ['a', 'b'] })).toMatchObject({ text: 'a\nb', messages: 2 })
    expect(promptTextOf('embeddings', { input: [1, 2, 3] })).toMatchObject({ text: '', messages: 0, fixedTokens: 3 })
    expect(
      promptTextOf('embeddings', {
        input: [
          [1, 2],
          [3, 4, 5],
        ],
      }),
    ).toMatchObject({ messages: 0, fixedTokens: 5 })
  })

  it('messages: system, content blocks, tool use and tools (with the hidden tool prompt)', () => {
    const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object' } }]
    const prompt = promptTextOf('messages', {
      system: [{ type: 'text', text: 'You are Claude.', cache_control: { type: 'ephemeral' } }],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Weather in Paris?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
          ],
        },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'tu_1', name: 'get_weather', input: { city: 'Paris', days: 3 } }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'tu_1', content: 'rain' },
            { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'A plain document' } },
          ],
        },
      ],
      tools,
    })
    expect(prompt.messages).toBe(4)
    expect(prompt.mediaParts).toBe(1)
    expect(prompt.fixedTokens).toBe(a.imagePartTokens + anthropicToolSystemTokens)
    for (const piece of ['You are Claude.', 'Weather in Paris?', 'city', 'Paris', '3', 'rain', 'A plain document', JSON.stringify(tools)]) {
      expect(prompt.text).toContain(piece)
    }
  })

  it('tolerates malformed bodies', () => {
    for (const endpoint of ['chat_completions', 'responses', 'embeddings', 'messages'] as const) {
      for (const body of [null, 42, 'x', [], {}, { messages: 'x', input: { a: 1 }, system: 7 }]) {
        const prompt = promptTextOf(endpoint, body)
        expect(estimateInputTokens(prompt, 1 << 20).tokens).toBeGreaterThanOrEqual(3)
      }
    }
  })
})

/** A usage whose input fits in `inputMax` and output in `outputMax`, split arbitrarily. */
function usageWithin(inputMax: number, outputMax: number): fc.Arbitrary<Usage> {
  return fc
    .tuple(fc.integer({ min: 0, max: inputMax }), fc.integer({ min: 0, max: outputMax }), fc.array(fc.nat(), { minLength: 7, maxLength: 7 }))
    .map(([inputTokens, outputTokens, seeds]) => {
      const s = (i: number, of: number) => (of === 0 ? 0 : (seeds[i] ?? 0) % (of + 1))
      const cacheReadTokens = s(0, inputTokens)
      const cacheWriteTokens = s(1, inputTokens - cacheReadTokens)
      const audioInputTokens = s(2, inputTokens - cacheReadTokens - cacheWriteTokens)
      const reasoningTokens = s(3, outputTokens)
      return {
        inputTokens,
        cacheReadTokens,
        cacheWriteTokens,
        cacheWrite1hTokens: s(5, cacheWriteTokens),
        audioInputTokens,
        outputTokens,
        reasoningTokens,
        audioOutputTokens: s(4, outputTokens - reasoningTokens),
      }
    })
}

describe('worstCaseCost', () => {
  it('is never below the actual cost of any usage within the estimate and the cap', () => {
    const scenario = fc
      .tuple(priceArb, fc.integer({ min: 0, max: 2_000_000 }), fc.integer({ min: 0, max: 200_000 }))
      .chain(([price, inputTokens, outputTokensCap]) =>
        fc.tuple(fc.constant(price), fc.constant(inputTokens), fc.constant(outputTokensCap), usageWithin(inputTokens, outputTokensCap)),
      )
    fc.assert(
      fc.property(scenario, ([price, inputTokens, outputTokensCap, u]) => {
        const worst = worstCaseCost({ inputTokens, outputTokensCap, price })
        expect(costOfUsage(u, price).totalMicros).toBeLessThanOrEqual(worst)
      }),
      { numRuns: 3_000 },
    )
  })

  it('covers the rounding of many tiny parts', () => {
    // Every part 1 token at 0.25 µ$: each rounds up to 1 µ$, 8 µ$ in all.
    const price: ModelPrice = {
      inputMicrosPerMtok: 250_000,
      outputMicrosPerMtok: 250_000,
      cacheReadMicrosPerMtok: 250_000,
      cacheWriteMicrosPerMtok: 250_000,
      cacheWrite1hMicrosPerMtok: 250_000,
      audioInputMicrosPerMtok: 250_000,
      audioOutputMicrosPerMtok: 250_000,
      fallbackParts: [],
      source: 'test',
      tier: 'base',
    }
    const u: Usage = {
      inputTokens: 5,
      cacheReadTokens: 1,
      cacheWriteTokens: 2,
      cacheWrite1hTokens: 1,
      audioInputTokens: 1,
      outputTokens: 3,
      reasoningTokens: 1,
      audioOutputTokens: 1,
    }
    expect(costOfUsage(u, price).totalMicros).toBe(8)
    expect(worstCaseCost({ inputTokens: 5, outputTokensCap: 3, price })).toBeGreaterThanOrEqual(8)
  })
})

describe('affordableOutputTokens', () => {
  it('is the largest cap that fits: cap fits, cap + 1 does not', () => {
    fc.assert(
      fc.property(
        priceArb.filter((p) => Math.max(p.outputMicrosPerMtok, p.audioOutputMicrosPerMtok) > 0),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.oneof(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 2_000_000_000_000 })),
        (price, inputTokens, funds) => {
          const fundsMicros = micros(funds)
          const cap = affordableOutputTokens(fundsMicros, inputTokens, price)
          const inputOnly = worstCaseCost({ inputTokens, outputTokensCap: 0, price })
          if (inputOnly > fundsMicros) {
            expect(cap).toBe(0)
            return
          }
          expect(worstCaseCost({ inputTokens, outputTokensCap: cap, price })).toBeLessThanOrEqual(fundsMicros)
          if (cap < affordableOutputTokensMax) {
            expect(worstCaseCost({ inputTokens, outputTokensCap: cap + 1, price })).toBeGreaterThan(fundsMicros)
          }
        },
      ),
      { numRuns: 2_000 },
    )
  })

  it('handles funds whose × 1e6 passes 2^53 exactly', () => {
    const price: ModelPrice = {
      inputMicrosPerMtok: 3_000_000,
      outputMicrosPerMtok: 15_000_000,
      cacheReadMicrosPerMtok: 300_000,
      cacheWriteMicrosPerMtok: 3_750_000,
      cacheWrite1hMicrosPerMtok: 3_750_000,
      audioInputMicrosPerMtok: 3_000_000,
      audioOutputMicrosPerMtok: 15_000_000,
      fallbackParts: [],
      source: 'test',
      tier: 'base',
    }
    // $20k of funds: far more than any cap needs.
    expect(affordableOutputTokens(micros(20_000_000_000), 1_000, price)).toBe(affordableOutputTokensMax)
    // $10: input at the dearest input price (cache write 3.75) 1_000 × 3.75 = 3_750 µ$ + 6 µ$ slack;
    // (10_000_000 − 3_756) × 1e6 / 15e6 = 666_416.2 → 666_416
    expect(affordableOutputTokens(micros(10_000_000), 1_000, price)).toBe(666_416)
  })

  it('is 0 when the input alone does not fit, and the max for free output', () => {
    const price: ModelPrice = {
      inputMicrosPerMtok: 1_000_000,
      outputMicrosPerMtok: 0,
      cacheReadMicrosPerMtok: 0,
      cacheWriteMicrosPerMtok: 0,
      cacheWrite1hMicrosPerMtok: 0,
      audioInputMicrosPerMtok: 0,
      audioOutputMicrosPerMtok: 0,
      fallbackParts: [],
      source: 'test',
      tier: 'base',
    }
    expect(affordableOutputTokens(micros(10), 100, price)).toBe(0)
    expect(affordableOutputTokens(micros(106), 100, price)).toBe(affordableOutputTokensMax)
  })
})
