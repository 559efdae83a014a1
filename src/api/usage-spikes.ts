/**
 * The spike window on the console's Overview: hours whose spend is well above the hours before
 * them. The rule is the one behind `budget.spike` notifications (src/budgets/forecast.ts,
 * `spikeDetected`): an hour is a spike when its spend is at least 3× the mean of the 24 hours
 * before it (hours without spend count as zero) and at least $1, so a jump from 2 to 9 cents is
 * not news. Pure: the caller reads hourly totals starting 24 hours before the range.
 */
import { SPIKE_FLOOR_MICROS_DEFAULT, spikeDetected, HOUR_MS } from '../budgets/index.js'
import { micros, toUsd, type Micros } from '../money/index.js'
import type { SpikeHourView } from './contract/wire.js'

export const SPIKE_TRAILING_HOURS = 24

/** Spike hours in [fromMs, toMs), judged on `hourlyMicros` (hour start → spend) that reaches back 24 hours before fromMs. */
export function spikeHours(hourlyMicros: ReadonlyMap<number, Micros>, fromMs: number, toMs: number): SpikeHourView[] {
  const spikes: SpikeHourView[] = []
  const firstHourMs = Math.floor(fromMs / HOUR_MS) * HOUR_MS
  for (let hourMs = firstHourMs; hourMs < toMs; hourMs += HOUR_MS) {
    const spend = hourlyMicros.get(hourMs) ?? micros(0)
    if (spend < SPIKE_FLOOR_MICROS_DEFAULT) continue
    const trailing: Micros[] = []
    for (let i = SPIKE_TRAILING_HOURS; i >= 1; i--) trailing.push(hourlyMicros.get(hourMs - i * HOUR_MS) ?? micros(0))
    if (!spikeDetected(spend, trailing)) continue
    const trailingSum = trailing.reduce((sum, m) => sum + m, 0)
    spikes.push({
      bucket_start: new Date(hourMs).toISOString(),
      cost_usd: toUsd(spend),
      trailing_mean_usd: toUsd(micros(Math.round(trailingSum / SPIKE_TRAILING_HOURS))),
    })
  }
  return spikes
}
