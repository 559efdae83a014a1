/**
 * Overview (/usage): who is spending and how close each budget is. Spend over time as stacked
 * bars by the chosen breakdown, the spike window shaded, a sortable breakdown table, and every
 * budget's posture (percent and forecast) at a glance.
 */
import { useMemo } from 'react'
import { Link, useSearchParams } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import { createColumnHelper } from '@tanstack/react-table'
import { USAGE_DIMENSIONS, type BudgetWire, type ListOf, type UsageDimension, type UsageReportView } from '../../../src/api/contract/wire'
import { get, query } from '../api'
import { Chart } from '../components/chart'
import { DataTable } from '../components/data-table'
import { FilterBar, useUsageFilters } from '../components/filters'
import { FormError } from '../components/field'
import { SERIES_KEYS_MAX, spendChartOptionByWidth, spendSeries, type Bucket } from '../charts'
import { formatCount, formatDate, formatDateTime, formatPercent, formatUsd, labelOf } from '../format'
import { rangeDays } from '../range'

export const DIMENSION_LABELS: Record<UsageDimension, string> = {
  provider: 'Provider',
  model: 'Model',
  team: 'Team',
  user: 'User',
  agent: 'Agent',
  endpoint: 'Endpoint',
  prompt_version: 'Prompt version',
  environment: 'Environment',
}

const HOUR_BUCKET_DAYS_MAX = 14

type Group = UsageReportView['groups'][number]
const groupColumn = createColumnHelper<Group & { share: number; label: string }>()

export function OverviewPage() {
  const filters = useUsageFilters()
  const [params] = useSearchParams()
  const by = params.get('by')
  const dimension: UsageDimension = (USAGE_DIMENSIONS as readonly string[]).includes(by ?? '') ? (by as UsageDimension) : 'team'
  // Hour buckets up to two weeks (336 bars); longer ranges in days.
  const bucket: Bucket = rangeDays(filters.range) > HOUR_BUCKET_DAYS_MAX || params.get('bucket') === 'day' ? 'day' : 'hour'
  const report = useQuery({
    queryKey: ['usage', 'overview', filters.wire, dimension, bucket],
    // The chart draws SERIES_KEYS_MAX keys and "Other": the rest of the series comes folded, not as thousands of points.
    queryFn: () => get<UsageReportView>(`/v1/usage${query({ ...filters.wire, group_by: dimension, bucket, series_groups: SERIES_KEYS_MAX })}`),
  })
  const budgets = useQuery({ queryKey: ['budgets'], queryFn: () => get<ListOf<BudgetWire>>('/v1/billing/budgets') })

  const chart = useMemo(() => (report.data ? spendSeries(report.data, dimension, bucket) : undefined), [report.data, dimension, bucket])
  const option = useMemo(() => (chart ? spendChartOptionByWidth(chart, bucket) : undefined), [chart, bucket])
  const total = report.data?.totals.cost_usd ?? 0
  const rows = useMemo(
    () => (report.data?.groups ?? []).map((g) => ({ ...g, label: labelOf(g.key[dimension]), share: total > 0 ? (g.cost_usd / total) * 100 : 0 })),
    [report.data, dimension, total],
  )
  const spikes = report.data?.spikes ?? []
  const peak = spikes.reduce<(typeof spikes)[number] | undefined>((best, s) => (best === undefined || s.cost_usd > best.cost_usd ? s : best), undefined)
  const atRisk = (budgets.data?.data ?? []).filter((b) => b.posture.percent >= 80 || (b.posture.forecast_spend_usd ?? 0) > b.amount_usd)

  const columns = [
    groupColumn.accessor('label', { header: DIMENSION_LABELS[dimension] }),
    groupColumn.accessor('cost_usd', { header: 'Spend', cell: (c) => formatUsd(c.getValue()), meta: { numeric: true } }),
    groupColumn.accessor('share', { header: 'Share', cell: (c) => formatPercent(c.getValue()), meta: { numeric: true } }),
    groupColumn.accessor('requests', { header: 'Requests', cell: (c) => formatCount(c.getValue()), meta: { numeric: true } }),
    // Tokens are detail: a phone shows spend, share and requests without scrolling sideways.
    groupColumn.accessor('input_tokens', { header: 'Input tokens', cell: (c) => formatCount(c.getValue()), meta: { numeric: true, wideOnly: true } }),
    groupColumn.accessor('output_tokens', { header: 'Output tokens', cell: (c) => formatCount(c.getValue()), meta: { numeric: true, wideOnly: true } }),
  ]

  const setView = (changes: Record<string, string>) => filters.set(changes)

  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <FilterBar filters={filters}>
        <div className="field">
          <label htmlFor="overview-by">Break down by</label>
          <select id="overview-by" value={dimension} onChange={(e) => setView({ by: e.target.value })}>
            {USAGE_DIMENSIONS.map((d) => (
              <option key={d} value={d}>
                {DIMENSION_LABELS[d]}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="overview-bucket">Buckets</label>
          <select
            id="overview-bucket"
            value={bucket}
            onChange={(e) => setView({ bucket: e.target.value })}
            disabled={rangeDays(filters.range) > HOUR_BUCKET_DAYS_MAX}
          >
            <option value="hour">Hours</option>
            <option value="day">Days</option>
          </select>
        </div>
      </FilterBar>

      {report.isError ? <FormError error={report.error} /> : null}

      <div className="kpis">
        <div className="kpi" data-testid="kpi-spend">
          <span className="kpi-label">Spend</span>
          <span className="kpi-value">{report.data ? formatUsd(total) : '…'}</span>
          <span className="kpi-note">{report.data ? `${formatCount(report.data.totals.requests)} requests` : ''}</span>
        </div>
        <div className={spikes.length > 0 ? 'kpi kpi-alert' : 'kpi'} data-testid="kpi-spikes">
          <span className="kpi-label">Spike window</span>
          <span className="kpi-value">{report.data ? (spikes.length === 0 ? 'None' : `${spikes.length} h`) : '…'}</span>
          <span className="kpi-note">
            {peak
              ? `peak ${formatUsd(peak.cost_usd)} at ${formatDateTime(peak.bucket_start)} (avg ${formatUsd(peak.trailing_mean_usd)}/h before)`
              : 'no hour ≥ 3× its trailing day'}
          </span>
        </div>
        <div className={atRisk.length > 0 ? 'kpi kpi-warn' : 'kpi'} data-testid="kpi-budgets">
          <span className="kpi-label">Budgets at risk</span>
          <span className="kpi-value">{budgets.data ? `${atRisk.length} of ${budgets.data.data.length}` : '…'}</span>
          <span className="kpi-note">≥ 80% spent or forecast over</span>
        </div>
      </div>

      <div className="card">
        <h2>Spend by {DIMENSION_LABELS[dimension].toLowerCase()}</h2>
        {option ? (
          <Chart option={option} height={320} label={`Spend per ${bucket} by ${DIMENSION_LABELS[dimension]}, spike hours shaded`} testId="spend-chart" />
        ) : (
          <div className="chart-placeholder" style={{ height: 320 }} />
        )}
        <p className="hint">Shaded: the spike window — hours whose spend is at least 3× the average of the 24 hours before and at least $1.</p>
      </div>

      <div className="grid-2">
        <div className="card">
          <h2>Breakdown</h2>
          <DataTable
            data={rows}
            columns={columns}
            caption={`Spend by ${DIMENSION_LABELS[dimension]}`}
            initialSort={[{ id: 'cost_usd', desc: true }]}
            testId="breakdown-table"
          />
        </div>
        <div className="card">
          <h2>
            Budget posture{' '}
            <Link to="/usage/budgets" className="small">
              all budgets →
            </Link>
          </h2>
          {budgets.isError ? <FormError error={budgets.error} /> : null}
          <BudgetPosture budgets={budgets.data?.data ?? []} />
        </div>
      </div>
    </section>
  )
}

function BudgetPosture({ budgets }: { readonly budgets: readonly BudgetWire[] }) {
  if (budgets.length === 0)
    return (
      <p className="empty">
        No budgets yet. <Link to="/usage/budgets">Create one</Link>.
      </p>
    )
  const sorted = [...budgets].sort((a, b) => b.posture.percent - a.posture.percent)
  return (
    <ul className="posture" data-testid="budget-posture">
      {sorted.map((b) => {
        const forecastPercent = b.posture.forecast_spend_usd === null ? null : (b.posture.forecast_spend_usd / b.amount_usd) * 100
        return (
          <li key={b.id}>
            <div className="posture-head">
              <span className="posture-name">{b.name}</span>
              <span className="posture-scope">
                {b.scope.kind}:{b.scope.id} · {b.period}
              </span>
            </div>
            <meter
              min={0}
              max={100}
              low={Math.min(...b.alert_thresholds, 80)}
              high={95}
              optimum={0}
              value={Math.min(b.posture.percent, 100)}
              aria-label={`${b.name}: ${formatPercent(b.posture.percent)} spent`}
            />
            <div className="posture-figures">
              <span>
                <strong>{formatPercent(b.posture.percent)}</strong> · {formatUsd(b.posture.spend_usd)} of {formatUsd(b.amount_usd)}
              </span>
              <span className={forecastPercent !== null && forecastPercent > 100 ? 'warn' : undefined}>
                {forecastPercent === null ? 'no forecast yet' : `forecast ${formatPercent(forecastPercent)}`}
                {b.posture.spend_usd >= b.amount_usd
                  ? ' · spent in full'
                  : b.posture.forecast_exhaustion_at
                    ? ` · runs out ${formatDate(b.posture.forecast_exhaustion_at)}`
                    : ''}
              </span>
            </div>
          </li>
        )
      })}
    </ul>
  )
}
