/**
 * Threshold crossing at the boundary micro and one micro either side. Integer inputs only.
 * The action ladder is tested with the decision itself, in policy.test.ts.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { micros } from '../money/index.js'
import { crossedThresholds, thresholdMarkMicros } from './thresholds.js'

const m = (value: number) => micros(value)
const AMOUNT = m(100_000_000) // $100

describe('crossedThresholds', () => {
  it.each<[string, number, number, number[]]>([
    ['reaching 50% exactly crosses it', 49_999_999, 50_000_000, [50]],
    ['stopping one micro below 50% does not', 0, 49_999_999, []],
    ['starting exactly at 50% does not cross it again', 50_000_000, 60_000_000, []],
    ['starting one micro below and ending one above crosses', 49_999_999, 50_000_001, [50]],
    ['one big settle crosses every threshold it passes, in order', 0, 99_000_000, [50, 80, 95]],
    ['spend beyond the amount crosses 100 and beyond', 94_000_000, 250_000_000, [95, 100, 200]],
    ['no movement crosses nothing', 80_000_000, 80_000_000, []],
  ])('%s', (_name, before, after, expected) => {
    expect(crossedThresholds([95, 50, 80, 100, 200, 50], AMOUNT, m(before), m(after))).toEqual(expected)
  })

  it('rounds the mark up: 1/3 of 10 micros is reached at 4, not 3', () => {
    expect(thresholdMarkMicros(m(10), 33)).toBe(4)
    expect(crossedThresholds([33], m(10), m(0), m(3))).toEqual([])
    expect(crossedThresholds([33], m(10), m(3), m(4))).toEqual([33])
  })

  it('splitting spend into any sequence of settles crosses each threshold exactly once', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20_000_000 }), { maxLength: 40 }), (costs) => {
        let spent = 0
        const seen: number[] = []
        for (const cost of costs) {
          seen.push(...crossedThresholds([50, 80, 95, 100], AMOUNT, m(spent), m(spent + cost)))
          spent += cost
        }
        const expected = [50, 80, 95, 100].filter((t) => spent >= (AMOUNT * t) / 100)
        return JSON.stringify(seen) === JSON.stringify(expected)
      }),
    )
  })
})
