/**
 * Burn-rate forecast and spike detection on synthetic spend patterns. The forecast must follow
 * the recent rate (a job that started recently) rather than the period average.
 */
import { describe, expect, it } from 'vitest'
import { micros } from '../money/index.js'
import { forecastSpend, spikeDetected } from './forecast.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const m = micros
const start = Date.UTC(2026, 10, 1)
const end = Date.UTC(2026, 11, 1) // 30 days

describe('forecastSpend', () => {
  it('a steady burn projects linearly and exhausts when the line meets the amount', () => {
    // $10/h for 10 days = $2400 so far on a $3000 budget: $10/h reaches $3000 after 60 more hours.
    const now = start + 10 * DAY
    const result = forecastSpend({
      periodStartMs: start,
      periodEndMs: end,
      nowMs: now,
      spentMicros: m(2_400_000_000),
      amountMicros: m(3_000_000_000),
      recentBucketsMicros: Array(6).fill(m(10_000_000)),
      bucketMs: HOUR,
    })
    expect(result.projectedSpendMicros).toBe(7_200_000_000)
    expect(result.exhaustionAtMs).toBe(now + 60 * HOUR)
  })

  it('weights the recent rate: a burst in the last hours pulls exhaustion far earlier than the average would', () => {
    // $100 spent over 5 days (≈ $0.83/h), then $50/h for the last 3 hours. Budget $1000.
    const now = start + 5 * DAY
    const recent = [0, 0, 0, 50_000_000, 50_000_000, 50_000_000].map(m)
    const result = forecastSpend({
      periodStartMs: start,
      periodEndMs: end,
      nowMs: now,
      spentMicros: m(250_000_000),
      amountMicros: m(1_000_000_000),
      recentBucketsMicros: recent,
      bucketMs: HOUR,
    })
    const averageOnlyExhaustion = now + (1_000_000_000 - 250_000_000) / (250_000_000 / (5 * DAY))
    expect(result.exhaustionAtMs).toBeDefined()
    expect(result.exhaustionAtMs!).toBeLessThan(averageOnlyExhaustion)
    expect(result.exhaustionAtMs!).toBeLessThan(now + 2 * DAY)
    expect(result.exhaustionAtMs!).toBeGreaterThan(now + 12 * HOUR)
    expect(result.projectedSpendMicros).toBeGreaterThan(1_000_000_000)
  })

  it('no exhaustion within the period when the projection stays under the amount', () => {
    const now = start + 15 * DAY
    const result = forecastSpend({
      periodStartMs: start,
      periodEndMs: end,
      nowMs: now,
      spentMicros: m(360_000_000),
      amountMicros: m(1_000_000_000),
      recentBucketsMicros: Array(6).fill(m(1_000_000)),
      bucketMs: HOUR,
    })
    expect(result.exhaustionAtMs).toBeUndefined()
    expect(result.projectedSpendMicros).toBeLessThan(1_000_000_000)
  })

  it('already exhausted: exhaustion is now', () => {
    const now = start + DAY
    const result = forecastSpend({
      periodStartMs: start,
      periodEndMs: end,
      nowMs: now,
      spentMicros: m(1_000_000_000),
      amountMicros: m(1_000_000_000),
      recentBucketsMicros: [],
      bucketMs: HOUR,
    })
    expect(result.exhaustionAtMs).toBe(now)
  })
})

describe('spikeDetected', () => {
  const trailing = Array(24).fill(m(2_000_000)) // $2/h
  it.each([
    ['3× the trailing mean is a spike', 6_000_000, trailing, true],
    ['one micro under 3× is not', 5_999_999, trailing, false],
    ['below the $1 floor is never a spike, even after silence', 999_999, Array(24).fill(m(0)), false],
    ['a burst after silence is a spike', 5_000_000, Array(24).fill(m(0)), true],
    ['no history, no verdict', 50_000_000, [], false],
  ])('%s', (_name, lastHour, history, expected) => {
    expect(spikeDetected(m(lastHour as number), history as ReturnType<typeof m>[])).toBe(expected)
  })
})
