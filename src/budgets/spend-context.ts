/**
 * Builds the context a budget or wallet notification carries: spend, amount, percent,
 * period, forecast and the top endpoints, users and models behind the spend. Money stays Micros
 * until `spendNotificationData`, the one place it becomes USD numbers and ISO instants.
 */
import { mulDivFloor, toUsd, type Micros } from '../money/index.js'
import type { SpendNotificationData, TopSpenders } from '../notify/index.js'
import type { BudgetUsageReader, SpendScopeFilter, TopSpendersMicros } from './budget-store.js'
import { forecastSpend, type Forecast } from './forecast.js'
import type { Period } from './period.js'

export const HOUR_MS = 3_600_000

export interface ForecastSettings {
  /** No forecast before this much of the period has passed: one early call is not a trend. */
  readonly forecastMinElapsedMs: number
  /** Recent window the forecast weights, in hours. */
  readonly forecastWindowHours: number
}

/** Forecast at `nowMs` from hourly buckets inside the period; undefined before there is enough history. */
export async function forecastFor(
  usage: BudgetUsageReader,
  filter: SpendScopeFilter,
  period: Period,
  nowMs: number,
  spentMicros: Micros,
  amountMicros: Micros,
  settings: ForecastSettings,
): Promise<Forecast | undefined> {
  const hours = forecastHours(period, nowMs, settings)
  if (hours === undefined) return undefined
  const buckets = await usage.spendBuckets(filter, nowMs, HOUR_MS, hours)
  return forecastOfBuckets(period, nowMs, spentMicros, amountMicros, buckets)
}

/**
 * How many hourly buckets ending at `nowMs` the forecast reads; undefined when there is no
 * forecast yet (too early in the period) or any more (the period is over).
 */
export function forecastHours(period: Period, nowMs: number, settings: ForecastSettings): number | undefined {
  const elapsedMs = nowMs - period.startMs
  if (elapsedMs < settings.forecastMinElapsedMs || nowMs >= period.endMs) return undefined
  // Only whole hours inside the period: buckets before its start would read as idle hours.
  return Math.max(1, Math.min(settings.forecastWindowHours, Math.floor(elapsedMs / HOUR_MS)))
}

/** The forecast from `buckets`: the `forecastHours` hourly buckets ending at `nowMs`, oldest first. */
export function forecastOfBuckets(period: Period, nowMs: number, spentMicros: Micros, amountMicros: Micros, buckets: readonly Micros[]): Forecast {
  return forecastSpend({
    periodStartMs: period.startMs,
    periodEndMs: period.endMs,
    nowMs,
    spentMicros,
    amountMicros,
    recentBucketsMicros: buckets,
    bucketMs: HOUR_MS,
  })
}

export interface SpendContext {
  readonly scope: string
  readonly spentMicros: Micros
  readonly amountMicros: Micros
  readonly period: Period | undefined
  readonly forecast: Forecast | undefined
  readonly top: TopSpendersMicros
}

export interface SpendDataExtras {
  readonly budget_id?: string
  readonly budget_name?: string
  readonly wallet_id?: string
  readonly threshold_percent?: number
  readonly last_hour_spend_usd?: number
  readonly shadow?: boolean
  /** `would_block`: a shadow budget reached a block mark; nothing was blocked. */
  readonly decision?: 'would_block'
  /** `refused`: blocking started with a refused call, before spend reached the mark. */
  readonly reason?: 'refused'
  /** The worst-case estimate of the call a wallet refused. */
  readonly refused_estimate_usd?: number
  /** The action configured at this threshold. */
  readonly action?: string
  /** `block_if_forecast_exceeds`: whether the forecast (projected_spend_usd, forecast_exhaustion_at) confirmed the block. */
  readonly forecast_decision?: 'confirmed' | 'not_confirmed'
  /** That decision in words. */
  readonly forecast_note?: string
  /** The budget's owner: every notice of the budget names them. */
  readonly owner?: string
  readonly tier?: string
}

export function spendNotificationData(context: SpendContext, extras: SpendDataExtras): SpendNotificationData {
  const forecast = context.forecast
  return {
    ...extras,
    scope: context.scope,
    spend_usd: toUsd(context.spentMicros),
    amount_usd: toUsd(context.amountMicros),
    percent: percentOfAmount(context.spentMicros, context.amountMicros),
    period_start: context.period ? new Date(context.period.startMs).toISOString() : null,
    period_end: context.period ? new Date(context.period.endMs).toISOString() : null,
    forecast_exhaustion_at: forecast?.exhaustionAtMs !== undefined ? new Date(forecast.exhaustionAtMs).toISOString() : null,
    ...(forecast && { projected_spend_usd: toUsd(forecast.projectedSpendMicros) }),
    top: topView(context.top),
  }
}

/** Spend as a percentage of the amount with two decimals, rounded down (integer basis points first). */
export function percentOfAmount(spentMicros: Micros, amountMicros: Micros): number {
  if (amountMicros <= 0) return 0
  return mulDivFloor(Math.max(0, spentMicros), 10_000, amountMicros) / 100
}

function topView(top: TopSpendersMicros): TopSpenders {
  const view = (entries: TopSpendersMicros['users']) => entries.map((e) => ({ id: e.id, spend_usd: toUsd(e.spendMicros) }))
  return { endpoints: view(top.endpoints), users: view(top.users), models: view(top.models) }
}
