/**
 * Chart options built from API reports, pure (ECharts draws them). The spend chart stacks the
 * largest breakdown keys per bucket (the rest as "Other") and shades the spike window: the
 * buckets that contain a spike hour reported by the API.
 */
import type { EChartsCoreOption } from 'echarts/core'
import type { ReplaySeriesPoint, UsageDimension, UsageReportView } from '../../src/api/contract/wire'
import { labelOf } from './format'
import { OTHER_COLOR, SERIES_COLORS } from './theme'

/** Keys drawn as their own series; the rest are summed as "Other". */
export const SERIES_KEYS_MAX = 8
export const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const
export type Bucket = keyof typeof BUCKET_MS

export interface SpendSeries {
  readonly bucketStartsMs: number[]
  readonly series: Array<{ name: string; values: number[] }>
  /** Indexes into bucketStartsMs of the buckets that hold a spike hour. */
  readonly spikeBuckets: number[]
}

/** Every bucket of [fromMs, toMs) (empty ones as zero), the largest keys, and the spike buckets. */
export function spendSeries(report: UsageReportView, dimension: UsageDimension | undefined, bucket: Bucket): SpendSeries {
  const bucketMs = BUCKET_MS[bucket]
  const firstMs = Math.floor(Date.parse(report.from) / bucketMs) * bucketMs
  const toMs = Date.parse(report.to)
  const bucketStartsMs: number[] = []
  for (let ms = firstMs; ms < toMs; ms += bucketMs) bucketStartsMs.push(ms)
  const indexOf = new Map(bucketStartsMs.map((ms, i) => [ms, i]))

  const keyOf = (key: Partial<Record<UsageDimension, string | null>>) => (dimension === undefined ? 'Spend' : labelOf(key[dimension]))
  const named = dimension === undefined ? ['Spend'] : report.groups.slice(0, SERIES_KEYS_MAX).map((g) => keyOf(g.key))
  const hasOther = dimension !== undefined && report.groups.length > SERIES_KEYS_MAX
  const names = hasOther ? [...named, 'Other'] : named
  const values = new Map(names.map((name) => [name, new Array<number>(bucketStartsMs.length).fill(0)]))
  for (const point of report.series) {
    const index = indexOf.get(Date.parse(point.bucket_start))
    if (index === undefined) continue
    // A folded answer (`series_groups`) already summed the rest into `other` points.
    const name = point.other ? 'Other' : keyOf(point.key)
    const row = values.get(named.includes(name) ? name : 'Other')
    if (row) row[index] = round6((row[index] ?? 0) + point.cost_usd)
  }
  const spikeBuckets = [...new Set((report.spikes ?? []).map((s) => indexOf.get(Math.floor(Date.parse(s.bucket_start) / bucketMs) * bucketMs)))]
    .filter((i): i is number => i !== undefined)
    .sort((a, b) => a - b)
  return { bucketStartsMs, series: names.map((name) => ({ name, values: values.get(name)! })), spikeBuckets }
}

export function bucketLabel(ms: number, bucket: Bucket): string {
  const date = new Date(ms)
  return bucket === 'day'
    ? date.toLocaleDateString('en-GB', { month: 'short', day: 'numeric' })
    : date.toLocaleString('en-GB', { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
}

/** Room a "Spike window" label takes, and what of the chart's width the axis labels and margins take. */
const SPIKE_LABEL_PX = 96
const PLOT_INSET_PX = 64

/**
 * The spike buckets that start a run of spike hours and get a label: each run, unless it starts
 * too close to the last labelled one for two labels to fit side by side at this chart width.
 */
export function spikeLabelled(spikeBuckets: readonly number[], buckets: number, widthPx: number | undefined): Set<number> {
  const bucketsApart = widthPx === undefined ? 1 : Math.ceil(SPIKE_LABEL_PX / (Math.max(widthPx - PLOT_INSET_PX, 1) / Math.max(buckets, 1)))
  const labelled = new Set<number>()
  let last: number | undefined
  spikeBuckets.forEach((index, n) => {
    const startsRun = n === 0 || spikeBuckets[n - 1] !== index - 1
    if (startsRun && (last === undefined || index - last >= bucketsApart)) {
      labelled.add(index)
      last = index
    }
  })
  return labelled
}

/** The spend chart; `widthPx`, the chart's width, keeps spike-window labels from running into each other. */
export function spendChartOption(data: SpendSeries, bucket: Bucket, widthPx?: number): EChartsCoreOption {
  const labels = data.bucketStartsMs.map((ms) => bucketLabel(ms, bucket))
  const labelled = spikeLabelled(data.spikeBuckets, labels.length, widthPx)
  return {
    color: [...SERIES_COLORS.slice(0, data.series.length - (data.series.at(-1)?.name === 'Other' ? 1 : 0)), OTHER_COLOR],
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (value: unknown) => `$${Number(value).toFixed(4)}` },
    legend: { type: 'scroll', bottom: 0 },
    grid: { left: 8, right: 16, top: 24, bottom: 40, containLabel: true },
    xAxis: { type: 'category', data: labels, axisTick: { alignWithLabel: true } },
    yAxis: { type: 'value', axisLabel: { formatter: (value: number) => `$${value}` } },
    series: data.series.map((s, i) => ({
      name: s.name,
      type: 'bar',
      stack: 'spend',
      barMaxWidth: 28,
      emphasis: { focus: 'series' },
      data: s.values,
      ...(i === 0 && data.spikeBuckets.length > 0
        ? {
            markArea: {
              silent: true,
              itemStyle: { color: 'rgba(220, 38, 38, 0.22)' },
              label: { show: true, position: 'insideTop', color: '#dc2626', fontWeight: 'bold' },
              // Named at the first hour of each run of spike hours that has room for its label.
              data: data.spikeBuckets.map((index) => [{ xAxis: labels[index], name: labelled.has(index) ? 'Spike window' : '' }, { xAxis: labels[index] }]),
            },
          }
        : {}),
    })),
  }
}

/**
 * `spendChartOption` as a function of the chart's width that returns the same object while the
 * labels stay the same, so resizing does not set (and animate) the chart again at every pixel.
 */
export function spendChartOptionByWidth(data: SpendSeries, bucket: Bucket): (widthPx: number) => EChartsCoreOption {
  const made = new Map<string, EChartsCoreOption>()
  return (widthPx) => {
    const key = [...spikeLabelled(data.spikeBuckets, data.bucketStartsMs.length, widthPx)].join(',')
    let option = made.get(key)
    if (option === undefined) made.set(key, (option = spendChartOption(data, bucket, widthPx)))
    return option
  }
}

export interface GaugeInput {
  readonly percent: number
  readonly forecastPercent: number | null
  readonly thresholds: readonly number[]
}

/**
 * A budget gauge: the needle is spend as a percent of the amount; the arc changes colour at each
 * of the budget's thresholds (green before the first, warmer after each, red past 100%); a thin
 * grey needle marks the forecast for the period end. The scale runs to 100%, or to the next 50%
 * when spend or forecast is past it (at most 300%).
 */
export function gaugeOption(input: GaugeInput): EChartsCoreOption {
  const max = Math.min(300, Math.max(100, Math.ceil(Math.max(input.percent, input.forecastPercent ?? 0) / 50) * 50))
  const common = { type: 'gauge', min: 0, max, startAngle: 200, endAngle: -20, radius: '95%', center: ['50%', '62%'] }
  return {
    series: [
      {
        ...common,
        axisLine: { lineStyle: { width: 12, color: gaugeStops(input.thresholds, max) } },
        splitNumber: max / 25,
        splitLine: { length: 8, distance: 0 },
        axisTick: { show: false },
        axisLabel: { distance: 12, fontSize: 10, formatter: (v: number) => (v === 0 || v === 100 || v === max ? `${v}%` : '') },
        pointer: { width: 5, length: '70%' },
        anchor: { show: true, size: 8 },
        title: { show: false },
        detail: { valueAnimation: false, offsetCenter: [0, '32%'], fontSize: 18, formatter: (v: number) => `${Math.round(v * 10) / 10}%` },
        data: [{ value: Math.min(input.percent, max), name: 'spend' }],
      },
      ...(input.forecastPercent === null
        ? []
        : [
            {
              ...common,
              axisLine: { show: false },
              splitLine: { show: false },
              axisTick: { show: false },
              axisLabel: { show: false },
              pointer: { width: 2, length: '88%', itemStyle: { color: '#64748b' } },
              title: { show: false },
              detail: { show: false },
              data: [{ value: Math.min(input.forecastPercent, max), name: 'forecast' }],
            },
          ]),
    ],
  }
}

const STOP_COLORS = ['#16a34a', '#ca8a04', '#d97706', '#ea580c']

/** Arc colour stops (fractions of the scale) at each threshold below 100%, then red to the end. */
export function gaugeStops(thresholds: readonly number[], max: number): Array<[number, string]> {
  const marks = [...new Set(thresholds)].filter((t) => t > 0 && t < 100).sort((a, b) => a - b)
  const stops: Array<[number, string]> = []
  let previous = 0
  for (const [i, mark] of [...marks, 100].entries()) {
    if (mark <= previous) continue
    stops.push([mark / max, STOP_COLORS[Math.min(i, STOP_COLORS.length - 1)]!])
    previous = mark
  }
  if (max > 100) stops.push([1, '#dc2626'])
  return stops
}

function round6(value: number): number {
  return Math.round(value * 1_000_000) / 1_000_000
}

/**
 * A replay's spend over time: per bucket, what the traffic costs under the policy and what the
 * policy avoided, stacked, so each bar's height is the spend with no policy.
 */
export function replayChartOption(series: readonly ReplaySeriesPoint[], bucketMs: number): EChartsCoreOption {
  const bucket: Bucket = bucketMs >= BUCKET_MS.day ? 'day' : 'hour'
  const labels = series.map((p) => bucketLabel(Date.parse(p.bucket_start), bucket))
  const usd = (micros: number) => round6(micros / 1e6)
  return {
    color: [SERIES_COLORS[0] ?? OTHER_COLOR, SERIES_COLORS[2] ?? OTHER_COLOR],
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (value: unknown) => `$${Number(value).toFixed(4)}` },
    legend: { bottom: 0 },
    grid: { left: 8, right: 16, top: 24, bottom: 40, containLabel: true },
    xAxis: { type: 'category', data: labels, axisTick: { alignWithLabel: true } },
    yAxis: { type: 'value', axisLabel: { formatter: (value: number) => `$${value}` } },
    series: [
      { name: 'Spend under the policy', type: 'bar', stack: 'spend', barMaxWidth: 28, data: series.map((p) => usd(p.replayed_micros)) },
      { name: 'Spend avoided', type: 'bar', stack: 'spend', barMaxWidth: 28, data: series.map((p) => usd(p.avoided_micros)) },
    ],
  }
}
