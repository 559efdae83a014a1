/**
 * Money at the edges and in arithmetic: USD parsing is exact (never silently rounded), costs round
 * up and never under, formatting round-trips. Table tests pin the boundaries; fast-check proves
 * the properties over the whole range.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { costOfTokens, divCeil, divFloor, formatUsd, micros, parseUsd, percentOf, usdPerMtokToMicros } from './micros.js'

describe('parseUsd', () => {
  it.each([
    [0.1, 100_000],
    ['0.1', 100_000],
    [1, 1_000_000],
    ['12.345678', 12_345_678],
    [0.000001, 1],
    ['0', 0],
    [1_000_000_000, 1_000_000_000_000_000],
  ])('parses %j exactly as %i µ$', (input, expected) => {
    expect(parseUsd(input)).toBe(expected)
  })

  it.each([[-1], ['-0.5'], ['0.0000001'], [0.0000001], ['1e3'], ['abc'], [Number.NaN], [Infinity], [null], [undefined], [{}], ['']])(
    'refuses %j rather than round it',
    (input) => {
      expect(parseUsd(input)).toBeUndefined()
    },
  )

  it('round-trips with formatUsd for every amount with at most six decimals (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000_000_000_000 }), (amount) => {
        expect(parseUsd(formatUsd(micros(amount)))).toBe(amount)
      }),
    )
  })
})

describe('rounding', () => {
  it('rounds a cost up, never under: 1 token at $2.50/Mtok is 3 µ$', () => {
    expect(costOfTokens(1, usdPerMtokToMicros(2.5))).toBe(3)
    expect(costOfTokens(0, usdPerMtokToMicros(2.5))).toBe(0)
    expect(costOfTokens(1_000_000, usdPerMtokToMicros(2.5))).toBe(2_500_000)
  })

  it('keeps catalogue prices exact despite binary noise', () => {
    expect(usdPerMtokToMicros(2.5)).toBe(2_500_000)
    expect(usdPerMtokToMicros(0.075)).toBe(75_000)
    expect(usdPerMtokToMicros(0.1 + 0.2)).toBe(300_000)
  })

  it('costOfTokens is the smallest integer not below the exact cost (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 200_000_000 }), (tokens, price) => {
        const cost = costOfTokens(tokens, price)
        expect(cost * 1_000_000).toBeGreaterThanOrEqual(tokens * price)
        expect((cost - 1) * 1_000_000).toBeLessThan(tokens * price)
      }),
    )
  })

  it('divCeil and divFloor bracket the quotient and a split never loses or creates a micro (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 1, max: 10_000 }), (amount, parts) => {
        const floor = divFloor(amount, parts)
        const ceil = divCeil(amount, parts)
        expect(ceil - floor).toBeLessThanOrEqual(1)
        const remainder = amount - floor * parts
        // `parts` shares of floor, plus the remainder given one micro at a time, is the whole amount.
        expect(floor * (parts - remainder) + ceil * remainder).toBe(amount)
      }),
    )
  })

  it('percentOf rounds down, so a cap never exceeds the funds', () => {
    expect(percentOf(micros(999), 90)).toBe(899)
    expect(percentOf(micros(1_000), 100)).toBe(1_000)
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 100 }), (amount, percent) => {
        expect(percentOf(micros(amount), percent)).toBeLessThanOrEqual(amount)
      }),
    )
  })

  it('refuses non-integer money', () => {
    expect(() => micros(0.5)).toThrow(/not a safe integer/)
    expect(() => costOfTokens(1.5, 10)).toThrow()
  })
})
