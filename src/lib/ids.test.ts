import { describe, expect, it } from 'vitest'
import { newId } from './ids.js'

const BODY = /^rsv_[0-9a-hjkmnp-tv-z]{26}$/

describe('newId', () => {
  it('is the prefix, ten characters of time and sixteen of randomness, in Crockford base32', () => {
    expect(newId('rsv', 1_700_000_000_000)).toMatch(BODY)
  })

  it('sorts by creation time', () => {
    const times = [0, 1, 31, 32, 1_700_000_000_000, 1_700_000_000_001, 2_000_000_000_000]
    const ids = times.map((t) => newId('rsv', t))
    expect([...ids].sort()).toEqual(ids)
  })

  it('never repeats within one millisecond, and every random character varies', () => {
    const ids = Array.from({ length: 20_000 }, () => newId('rsv', 1_700_000_000_000))
    expect(new Set(ids).size).toBe(ids.length)
    // Each of the 16 random positions takes many values: none reads a fixed or out-of-range byte.
    for (let position = 14; position < 30; position++) {
      const seen = new Set(ids.map((id) => id[position]))
      expect(seen.size, `position ${position}`).toBe(32)
    }
  })

  it('refuses a prefix too long for its buffer instead of cutting the id', () => {
    expect(() => newId('toolongprefix' as 'rsv')).toThrow(/prefix too long/)
    expect(newId('ct', 0)).toMatch(/^ct_0{10}[0-9a-hjkmnp-tv-z]{16}$/)
  })
})
