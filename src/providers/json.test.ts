import { describe, expect, it } from 'vitest'
import { TOKENS_MAX } from '../money/index.js'
import { tokenCount } from './json.js'

describe('tokenCount', () => {
  it.each([
    [12, 12],
    [2.1, 3],
    [0, 0],
    [-5, 0],
    ['12', 0],
    [Number.NaN, 0],
    [Number.POSITIVE_INFINITY, 0],
    [1e20, TOKENS_MAX],
    [2 ** 53, TOKENS_MAX],
  ])('reads %s from the wire as %s: rounded up, never negative, never past the bound cost arithmetic is proven for', (wire, tokens) => {
    expect(tokenCount(wire)).toBe(tokens)
  })
})
