/** The spend chart's data and the gauge's scale, pure: the largest keys stack, the rest is "Other", spike buckets are found. */
import { describe, expect, it } from 'vitest'
import type { UsageReportView } from '../../src/api/contract/wire'
import { gaugeStops, spendChartOption, spendChartOptionByWidth, spendSeries, spikeLabelled, SERIES_KEYS_MAX } from './charts'

const totals = {
  requests: 1,
  cost_micros: 0,
  input_tokens: 0,
  output_tokens: 0,
  cache_read_tokens: 0,
  cache_write_5m_tokens: 0,
  cache_write_1h_tokens: 0,
  reasoning_tokens: 0,
  audio_input_tokens: 0,
  audio_output_tokens: 0,
}

function report(keys: string[], spikes: string[] = []): UsageReportView {
  const from = '2026-11-15T00:00:00.000Z'
  return {
    from,
    to: '2026-11-15T04:00:00.000Z',
    bucket: 'hour',
    group_by: ['team'],
    totals: { ...totals, cost_usd: 0 },
    groups: keys.map((team, i) => ({ ...totals, key: { team }, cost_usd: 100 - i })),
    series: keys.map((team, i) => ({ ...totals, key: { team }, cost_usd: 1, bucket_start: new Date(Date.parse(from) + (i % 4) * 3_600_000).toISOString() })),
    spikes: spikes.map((bucket_start) => ({ bucket_start, cost_usd: 5, trailing_mean_usd: 1 })),
  }
}

describe('spendSeries', () => {
  it('fills every bucket of the range, empty ones with zero', () => {
    const data = spendSeries(report(['a']), 'team', 'hour')
    expect(data.bucketStartsMs).toHaveLength(4)
    expect(data.series).toEqual([{ name: 'a', values: [1, 0, 0, 0] }])
  })

  it(`draws the ${SERIES_KEYS_MAX} largest keys and sums the rest as Other`, () => {
    const keys = Array.from({ length: SERIES_KEYS_MAX + 2 }, (_, i) => `team${i}`)
    const data = spendSeries(report(keys), 'team', 'hour')
    expect(data.series.map((s) => s.name)).toEqual([...keys.slice(0, SERIES_KEYS_MAX), 'Other'])
    const other = data.series.at(-1)!.values.reduce((a, b) => a + b, 0)
    expect(other).toBe(2)
  })

  it("draws a folded answer's other points (series_groups) as Other, even when a named key has no value", () => {
    const keys = Array.from({ length: SERIES_KEYS_MAX }, (_, i) => `team${i}`)
    const folded = report(keys)
    // The largest group is "(none)" (key null); the other point has an empty key too.
    folded.groups = [
      { ...totals, key: { team: null }, cost_usd: 200 },
      ...folded.groups.slice(0, SERIES_KEYS_MAX - 1),
      { ...totals, key: { team: 'x' }, cost_usd: 1 },
    ]
    folded.series = [
      { ...totals, key: { team: null }, cost_usd: 4, bucket_start: folded.from },
      { ...totals, key: {}, other: true, cost_usd: 3, bucket_start: folded.from },
    ]
    const data = spendSeries(folded, 'team', 'hour')
    expect(data.series[0]).toEqual({ name: '(none)', values: [4, 0, 0, 0] })
    expect(data.series.at(-1)).toEqual({ name: 'Other', values: [3, 0, 0, 0] })
  })

  it('finds the buckets holding spike hours, for hour and for day buckets', () => {
    expect(spendSeries(report(['a'], ['2026-11-15T02:00:00.000Z']), 'team', 'hour').spikeBuckets).toEqual([2])
    expect(spendSeries(report(['a'], ['2026-11-15T02:00:00.000Z', '2026-11-15T03:00:00.000Z']), 'team', 'day').spikeBuckets).toEqual([0])
  })
})

describe('spendChartOption', () => {
  it('labels the first hour of each separate spike window, not only the first window', () => {
    const data = spendSeries(report(['a'], ['2026-11-15T00:00:00.000Z', '2026-11-15T01:00:00.000Z', '2026-11-15T03:00:00.000Z']), 'team', 'hour')
    const option = spendChartOption(data, 'hour') as { series: Array<{ markArea?: { data: Array<[{ name: string }, unknown]> } }> }
    const names = option.series[0]!.markArea!.data.map(([start]) => start.name)
    expect(names).toEqual(['Spike window', '', 'Spike window'])
  })
})

describe('spikeLabelled', () => {
  // A week of hours with the demo's two windows: 1 Dec 06:00 and 3 Dec 06:00, two days apart.
  const windows = [102, 103, 150, 151, 152]
  it('labels both windows on a wide chart', () => {
    expect([...spikeLabelled(windows, 168, 1_100)]).toEqual([102, 150])
  })
  it('labels only the first on a phone, where the second label would run into it', () => {
    expect([...spikeLabelled(windows, 168, 300)]).toEqual([102])
  })
  it('gives the same options object while the labels do not change', () => {
    const data = spendSeries(report(['a'], ['2026-11-15T00:00:00.000Z', '2026-11-15T03:00:00.000Z']), 'team', 'hour')
    const byWidth = spendChartOptionByWidth(data, 'hour')
    expect(byWidth(1_000)).toBe(byWidth(1_001))
  })
})

describe('gaugeStops', () => {
  it('changes colour at each threshold and turns red past 100%', () => {
    expect(gaugeStops([50, 80, 95], 150).map(([at]) => Math.round(at * 150))).toEqual([50, 80, 95, 100, 150])
    expect(gaugeStops([50, 80, 95], 150).at(-1)![1]).toBe('#dc2626')
  })

  it('ends at 100% when the scale does', () => {
    expect(gaugeStops([80], 100)).toEqual([
      [0.8, '#16a34a'],
      [1, '#ca8a04'],
    ])
  })
})
