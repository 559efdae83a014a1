/**
 * Money at the edges and in arithmetic: USD parsing is exact (never silently rounded), costs round
 * up and never under, formatting round-trips. Table tests pin the boundaries; fast-check proves
 * the properties over the whole range.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  addSaturating,
  AMOUNT_MICROS_MAX,
  costOfTokens,
  divCeil,
  divFloor,
  formatUsd,
  micros,
  mulDivCeil,
  mulDivFloor,
  parseUsd,
  percentOf,
  PRICE_MICROS_PER_MTOK_MAX,
  TOKENS_MAX,
  usdPerMtokToMicros,
} from './micros.js'

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

describe('the bounds: no arithmetic on values inside them leaves the safe integers', () => {
  const amount = fc.integer({ min: 0, max: AMOUNT_MICROS_MAX })
  const tokens = fc.integer({ min: 0, max: TOKENS_MAX })
  const price = fc.integer({ min: 0, max: PRICE_MICROS_PER_MTOK_MAX })
  const percent = fc.integer({ min: 0, max: 1_000 })
  const ceilBig = (a: number, b: number, d: number) => (BigInt(a) * BigInt(b) + BigInt(d) - 1n) / BigInt(d)
  const floorBig = (a: number, b: number, d: number) => (BigInt(a) * BigInt(b)) / BigInt(d)

  it('a cost part is exact (against BigInt) and stays below 10^15 µ$ for every token count and price', () => {
    fc.assert(
      fc.property(tokens, price, (t, p) => {
        const cost = costOfTokens(t, p)
        expect(BigInt(cost)).toBe(ceilBig(t, p, 1_000_000))
        expect(cost).toBeLessThanOrEqual(1e15)
      }),
    )
  })

  it('a worst case (every input part and the output, at the dearest prices) is a safe integer', () => {
    fc.assert(
      fc.property(tokens, tokens, price, price, (input, output, inputPrice, outputPrice) => {
        const total = costOfTokens(input, inputPrice) + costOfTokens(output, outputPrice) + 4
        expect(Number.isSafeInteger(total)).toBe(true)
      }),
    )
  })

  it('a percentage of any amount is exact, and a wallet cap never passes its allocation', () => {
    fc.assert(
      fc.property(amount, percent, (a, p) => {
        // Exact; a threshold mark past 2^53 (1000% of a huge budget) saturates, as no counter can reach it.
        const cap = BigInt(Number.MAX_SAFE_INTEGER)
        const min = (x: bigint) => (x < cap ? x : cap)
        expect(BigInt(percentOf(micros(a), p))).toBe(min(floorBig(a, p, 100)))
        expect(BigInt(mulDivCeil(a, p, 100))).toBe(min(ceilBig(a, p, 100)))
        expect(percentOf(micros(a), Math.min(p, 100))).toBeLessThanOrEqual(a)
      }),
    )
  })

  it('wallet moves (allocated ≤ max; reserved + spent ≤ allocated; a reservation ≤ max) stay safe', () => {
    fc.assert(
      fc.property(amount, fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), amount, (allocated, r, s, reservation) => {
        const reserved = Math.floor(allocated * r)
        const spent = Math.floor((allocated - reserved) * s)
        const free = allocated - reserved - spent
        // settle: charged = min(actual, reservation + free); spent after = spent + charged
        for (const value of [reservation + free, spent + reservation + free, reserved + reservation, allocated + reservation]) {
          expect(Number.isSafeInteger(value)).toBe(true)
        }
      }),
    )
  })

  it('a spend percentage of a budget (basis points) is exact even for counters near 2^53', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 1, max: AMOUNT_MICROS_MAX }), (spent, budget) => {
        expect(mulDivFloor(spent, 10_000, budget)).toBe(Math.min(Number.MAX_SAFE_INTEGER, Number(floorBig(spent, 10_000, budget))))
      }),
    )
  })

  it('counters saturate instead of losing precision', () => {
    expect(addSaturating(Number.MAX_SAFE_INTEGER - 1, 5)).toBe(Number.MAX_SAFE_INTEGER)
    expect(addSaturating(10, 5)).toBe(15)
  })

  it('parseUsd refuses amounts that cannot be held exactly instead of throwing', () => {
    expect(parseUsd(999_999_999_999)).toBeUndefined()
    expect(parseUsd('9999999999.5')).toBeUndefined()
    expect(parseUsd(1_000_000_000)).toBe(AMOUNT_MICROS_MAX)
  })
})
