/**
 * Burn-rate forecast and spike detection, pure. The projection weights the recent rate: a team
 * that started a batch job an hour ago will exhaust its budget at the new pace, not at the
 * month's average. Arithmetic is in BigInt (micros × milliseconds overflows 2^53), and the
 * results are whole micros and whole milliseconds.
 */
import { assert } from '../lib/assert.js'
import { micros, type Micros } from '../money/index.js'

export interface ForecastInput {
  readonly periodStartMs: number
  /** Exclusive. */
  readonly periodEndMs: number
  readonly nowMs: number
  readonly spentMicros: Micros
  readonly amountMicros: Micros
  /** Consecutive buckets ending at `nowMs`, oldest first (e.g. the last 6 hours, hourly). */
  readonly recentBucketsMicros: readonly Micros[]
  readonly bucketMs: number
}

export interface Forecast {
  /** Spend at period end if the weighted rate holds; never below spend so far. */
  readonly projectedSpendMicros: Micros
  /** When spend reaches the amount at that rate; `nowMs` if already there; undefined if not within the period. */
  readonly exhaustionAtMs: number | undefined
}

/**
 * Rate = 3/4 the recent rate + 1/4 the period average. The recent rate itself weights bucket i
 * (oldest = 1) by i, so the last hour counts most. The period-average share keeps a quiet last
 * hour from hiding a steady burn.
 */
export function forecastSpend(input: ForecastInput): Forecast {
  const { periodStartMs, periodEndMs, nowMs, spentMicros, amountMicros, recentBucketsMicros, bucketMs } = input
  assert(periodStartMs < periodEndMs, 'forecast: empty period')
  if (!(Number.isSafeInteger(bucketMs) && bucketMs > 0)) assert(false, `forecast bucketMs: ${bucketMs}`)
  const clampedNowMs = Math.min(Math.max(nowMs, periodStartMs), periodEndMs)
  const elapsedMs = BigInt(clampedNowMs - periodStartMs)
  const remainingMs = BigInt(periodEndMs - clampedNowMs)

  // Rate as a fraction numerator/denominator in micros per millisecond.
  let weightedSum = 0n
  let weightTotal = 0n
  recentBucketsMicros.forEach((bucket, index) => {
    if (!(Number.isSafeInteger(bucket) && bucket >= 0)) assert(false, `forecast bucket: ${bucket}`)
    weightedSum += BigInt(bucket) * BigInt(index + 1)
    weightTotal += BigInt(index + 1)
  })
  const spent = BigInt(spentMicros)
  // recent = weightedSum / (weightTotal·bucketMs); average = spent / elapsed.
  // rate = (3·recent + average) / 4, kept exact over a common denominator.
  const recentDenominator = weightTotal === 0n ? 1n : weightTotal * BigInt(bucketMs)
  const recentNumerator = weightTotal === 0n ? 0n : weightedSum
  const averageDenominator = elapsedMs === 0n ? 1n : elapsedMs
  const averageNumerator = elapsedMs === 0n ? 0n : spent
  const rateNumerator = 3n * recentNumerator * averageDenominator + averageNumerator * recentDenominator
  const rateDenominator = 4n * recentDenominator * averageDenominator

  const projected = spent + (rateNumerator * remainingMs) / rateDenominator
  // Saturated like the counters: spend near 2^53 µ$ projects past what a number holds.
  const projectedSpendMicros = micros(projected > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(projected))

  let exhaustionAtMs: number | undefined
  if (spentMicros >= amountMicros) {
    exhaustionAtMs = clampedNowMs
  } else if (rateNumerator > 0n) {
    const missing = BigInt(amountMicros - spentMicros)
    // ceil(missing / rate)
    const untilMs = (missing * rateDenominator + rateNumerator - 1n) / rateNumerator
    if (untilMs < remainingMs) exhaustionAtMs = clampedNowMs + Number(untilMs)
  }
  return { projectedSpendMicros, exhaustionAtMs }
}

/** Below this, an hour is never a spike: a jump from 2 cents to 9 cents is not news. */
export const SPIKE_FLOOR_MICROS_DEFAULT = micros(1_000_000)
export const SPIKE_FACTOR = 3

/**
 * True when the last hour's spend is at least 3× the trailing hourly mean and above an absolute
 * floor. Trailing hours with no spend count as zero, so a burst after silence is a spike.
 */
export function spikeDetected(lastHourMicros: Micros, trailingHourlyMicros: readonly Micros[], floorMicros: Micros = SPIKE_FLOOR_MICROS_DEFAULT): boolean {
  if (trailingHourlyMicros.length === 0) return false
  if (lastHourMicros < floorMicros) return false
  let trailingSum = 0
  for (const hour of trailingHourlyMicros) trailingSum += hour
  assert(Number.isSafeInteger(trailingSum), 'spike trailing sum overflows')
  // last ≥ 3 · (sum / n)  ⇔  last · n ≥ 3 · sum, in integers.
  return BigInt(lastHourMicros) * BigInt(trailingHourlyMicros.length) >= BigInt(SPIKE_FACTOR) * BigInt(trailingSum)
}
