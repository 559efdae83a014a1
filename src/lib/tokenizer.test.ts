/**
 * Token counting is linear in the text and never below gpt-tokenizer's count of the whole text:
 * exactly that count, except that a pre-token longer than `bpePreTokenBytesMax` counts as its bytes.
 */
import fc from 'fast-check'
import { countTokens as wholeTextCount } from 'gpt-tokenizer'
import { O200K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants'
import { describe, expect, it } from 'vitest'
import { bpePreTokenBytesMax, countSliceChars, countTokens, countTokensInSlices, countTokensWith, mayHoldLongPreToken } from './tokenizer.js'

const plainText = { disallowedSpecial: new Set<string>() }
const whole = (text: string): number => wholeTextCount(text, plainText)
const bytes = (text: string): number => Buffer.byteLength(text, 'utf8')
const preTokens = (text: string): string[] => Array.from(text.matchAll(O200K_TOKEN_SPLIT_REGEX), (match) => match[0])
const isLong = (preToken: string): boolean => bytes(preToken) > bpePreTokenBytesMax

/** `countTokens`, recording what the tokenizer is handed. */
function countRecording(text: string): { tokens: number; pieces: string[] } {
  const pieces: string[] = []
  const tokens = countTokensWith(text, (piece) => {
    pieces.push(piece)
    return whole(piece)
  })
  return { tokens, pieces }
}

/** The tokenizer never merges a long pre-token, and sees each character at most once. */
function expectBoundedWork(text: string, pieces: readonly string[]): void {
  for (const piece of pieces) expect(preTokens(piece).filter(isLong)).toEqual([])
  expect(pieces.reduce((sum, piece) => sum + piece.length, 0)).toBeLessThanOrEqual(text.length)
}

describe('countTokens', () => {
  it('counts an unbroken run by its bytes, without handing it to the tokenizer', () => {
    // gpt-tokenizer alone: 1.6 s for the first (8,000 tokens), minutes for the second.
    for (const text of ['x'.repeat(64_000), 'a'.repeat(1_000_000), `${'é'.repeat(40_000)} and then some words`]) {
      const { tokens, pieces } = countRecording(text)
      expectBoundedWork(text, pieces)
      expect(tokens).toBeGreaterThanOrEqual(bytes(preTokens(text)[0]!))
      expect(countTokens(text)).toBe(tokens)
    }
    expect(countRecording('a'.repeat(1_000_000)).pieces).toEqual([])
  })

  it('counts a run of 3-byte characters by its bytes from 86 characters on', () => {
    for (const length of [85, 86, 90]) {
      const text = `前文 ${'日'.repeat(length)}。後文`
      const run = ` ${'日'.repeat(length)}`
      expect(preTokens(text)).toContain(run)
      const expected = length > 85 ? whole(text) - whole(run) + bytes(run) : whole(text)
      expect(countTokens(text)).toBe(expected)
    }
  })

  it('hands ordinary text to the tokenizer whole: the same count', () => {
    const prose = 'The gateway reserves the worst case before dispatch; it settles to the cost after. '.repeat(2_000)
    const { tokens, pieces } = countRecording(prose)
    expect(pieces).toEqual([prose])
    expect(tokens).toBe(whole(prose))
    expect(countTokens('')).toBe(0)
  })

  it('counts text around long runs exactly: only the runs are counted by bytes', () => {
    const run = 'z'.repeat(5_000)
    const text = `Some words first,   ${run}\n\n  then more words!\n${'-'.repeat(300)}\n<|endoftext|> the end ${'\t'.repeat(400)}`
    const { tokens, pieces } = countRecording(text)
    expectBoundedWork(text, pieces)
    const long = preTokens(text).filter(isLong)
    expect(long).toHaveLength(3)
    expect(tokens).toBe(whole(text) + long.reduce((sum, preToken) => sum + bytes(preToken) - whole(preToken), 0))
  })
})

// Fragments that make pre-tokens of every kind, long runs of each class around the lengths where
// the scan and the byte bound switch, and the places the regex looks ahead (whitespace before a
// word, a digit or a line break; punctuation followed by line breaks or a slash).
const runLength = fc.oneof(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 60, max: 130 }), fc.integer({ min: 250, max: 270 }))
const runOf = (units: fc.Arbitrary<string>) => fc.tuple(units, runLength).map(([unit, length]) => unit.repeat(Math.ceil(length / unit.length)))
const fragment = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      ' ',
      '  ',
      '\n',
      ' \n',
      '\r\n',
      '\t',
      'the',
      ' word',
      'Word',
      "don't",
      "we'll",
      '123456',
      '!',
      '!\n',
      './/',
      '<|endoftext|>',
      '日本語',
      'é',
      '\u0301',
      '𝐀𝐁',
    ),
  },
  {
    weight: 3,
    arbitrary: runOf(fc.constantFrom('a', 'Q', 'xy', ' ', '\t', '\n', '-', '=', '/', '!\n', '日', 'é', '\u0301', '𝐀', 'ab ', '\u3000', '\ud800')),
  },
)
const generatedText = fc.array(fragment, { maxLength: 30 }).map((parts) => parts.join(''))

describe('countTokens (properties)', () => {
  it('is the whole-text count, plus bytes minus tokens for each long pre-token: never below it', () => {
    fc.assert(
      fc.property(generatedText, (text) => {
        const { tokens, pieces } = countRecording(text)
        expectBoundedWork(text, pieces)
        const long = preTokens(text).filter(isLong)
        const surplus = long.reduce((sum, preToken) => sum + bytes(preToken) - whole(preToken), 0)
        expect(tokens).toBe(whole(text) + surplus)
        expect(tokens).toBeGreaterThanOrEqual(whole(text))
        expect(tokens).toBeLessThanOrEqual(bytes(text))
        // The shortcut that hands text to the tokenizer whole is taken only when no pre-token is long.
        if (long.length > 0) expect(mayHoldLongPreToken(text)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('equals the whole-text count on ordinary prose', () => {
    const word = fc.oneof(
      fc.constantFrom(
        'the',
        'a',
        'gateway',
        'reservation',
        'cost',
        'settle',
        'token',
        'é',
        'naïve',
        'API',
        'GPT-4o',
        '42',
        '3.14',
        '(see',
        'docs)',
        '—',
        'ünïcödé',
      ),
      fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }),
    )
    const separator = fc.constantFrom(' ', ' ', ' ', ', ', '. ', '\n', '\n\n', '  ', ': ', '; ')
    const prose = fc.array(fc.tuple(word, separator), { maxLength: 400 }).map((pairs) => pairs.map(([w, s]) => w + s).join(''))
    fc.assert(
      fc.property(prose, (text) => {
        expect(countTokens(text)).toBe(whole(text))
      }),
      { numRuns: 200 },
    )
  })
})

describe('countTokensInSlices', () => {
  it('counts exactly what countTokens counts, wherever the slices fall', async () => {
    await fc.assert(
      fc.asyncProperty(generatedText, fc.integer({ min: 1, max: 300 }), async (text, sliceChars) => {
        let pauses = 0
        const counted = await countTokensInSlices(text, sliceChars, async () => {
          pauses++
        })
        expect(counted).toBe(countTokens(text))
        expect(pauses).toBeLessThanOrEqual(Math.floor(text.length / sliceChars))
      }),
      { numRuns: 300 },
    )
  })

  it('lets other work run between the slices of a long text', async () => {
    const text = 'The gateway settles a cut stream for what it delivered. '.repeat(8_000)
    let turns = 0
    let probing = true
    const probe = () => {
      turns++
      if (probing) setImmediate(probe)
    }
    setImmediate(probe)
    const counted = await countTokensInSlices(text)
    probing = false
    expect(counted).toBe(countTokens(text))
    // One turn of the event loop at least between each two slices.
    expect(turns).toBeGreaterThanOrEqual(Math.floor(text.length / countSliceChars) - 1)
  })
})
