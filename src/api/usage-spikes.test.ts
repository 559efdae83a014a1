/** The spike rule the Overview highlights: ≥ 3× the trailing 24-hour mean and ≥ $1, tested at its edges. */
import { describe, expect, it } from 'vitest'
import { micros, type Micros } from '../money/index.js'
import { spikeHours } from './usage-spikes.js'

const HOUR = 3_600_000
const T0 = Date.UTC(2026, 10, 10, 0)

function hourly(entries: Array<[number, number]>): Map<number, Micros> {
  return new Map(entries.map(([hour, usd]) => [T0 + hour * HOUR, micros(Math.round(usd * 1_000_000))]))
}

/** 24 quiet hours at $0.50 each (hours 0..23), then the hour under test at 24. */
function quietDayThen(usd: number): Map<number, Micros> {
  return hourly([...Array.from({ length: 24 }, (_, h) => [h, 0.5] as [number, number]), [24, usd]])
}

describe('spikeHours', () => {
  it('marks an hour at exactly 3× the trailing mean', () => {
    expect(spikeHours(quietDayThen(1.5), T0 + 24 * HOUR, T0 + 25 * HOUR)).toEqual([
      { bucket_start: new Date(T0 + 24 * HOUR).toISOString(), cost_usd: 1.5, trailing_mean_usd: 0.5 },
    ])
  })

  it('does not mark an hour one micro below 3× the trailing mean', () => {
    expect(spikeHours(quietDayThen(1.499999), T0 + 24 * HOUR, T0 + 25 * HOUR)).toEqual([])
  })

  it('does not mark a burst below the $1 floor, however quiet the day was', () => {
    const map = hourly([[24, 0.999999]])
    expect(spikeHours(map, T0 + 24 * HOUR, T0 + 25 * HOUR)).toEqual([])
    expect(spikeHours(hourly([[24, 1]]), T0 + 24 * HOUR, T0 + 25 * HOUR)).toHaveLength(1)
  })

  it('counts hours before the range as trailing history, and silent hours as zero', () => {
    // Busy hours before the range keep hour 24 from being a spike…
    const busy = hourly([...Array.from({ length: 24 }, (_, h) => [h, 2] as [number, number]), [24, 5]])
    expect(spikeHours(busy, T0 + 24 * HOUR, T0 + 25 * HOUR)).toEqual([])
    // …and after silence, the same $5 hour is one.
    expect(spikeHours(hourly([[24, 5]]), T0 + 24 * HOUR, T0 + 25 * HOUR)).toHaveLength(1)
  })

  it('judges every hour of the range, from the hour containing `from`', () => {
    const map = hourly([
      [30, 4],
      [31, 40],
      [32, 1],
    ])
    expect(spikeHours(map, T0 + 30 * HOUR + 1, T0 + 33 * HOUR).map((s) => s.cost_usd)).toEqual([4, 40])
  })
})
