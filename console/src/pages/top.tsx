/**
 * Top spenders (/usage/top): the endpoints, users and prompt versions that spend most in the
 * range, each with its share of all spend and its change against the window of the same length
 * just before (a new prompt version that doubled an endpoint's cost shows here first).
 */
import { useQuery } from '@tanstack/react-query'
import { createColumnHelper } from '@tanstack/react-table'
import type { UsageDimension, UsageReportView, UsageTopView } from '../../../src/api/contract/wire'
import { get, query } from '../api'
import { DataTable } from '../components/data-table'
import { FilterBar, useUsageFilters, type UsageFilters } from '../components/filters'
import { FormError } from '../components/field'
import { formatChange, formatCount, formatDate, formatPercent, formatUsd, labelOf } from '../format'
import { previousRange, wireRange } from '../range'

/** Rows per table; the previous window is read deeper so a key that fell out of the top still has a baseline. */
const TOP_ROWS = 10
const PREVIOUS_ROWS = 100

interface TopRow {
  name: string
  spend: number
  share: number
  requests: number
  previous: number | undefined
  change: number | undefined
}

const column = createColumnHelper<TopRow>()

const SECTIONS: Array<{ by: UsageDimension; title: string; label: string }> = [
  { by: 'endpoint', title: 'Top endpoints', label: 'Endpoint' },
  { by: 'user', title: 'Top users', label: 'User' },
  { by: 'prompt_version', title: 'Prompt versions', label: 'Prompt version' },
]

export function TopPage() {
  const filters = useUsageFilters()
  const previous = previousRange(filters.range)
  return (
    <section aria-labelledby="top-title">
      <h1 id="top-title">Top spenders</h1>
      <FilterBar filters={filters} />
      <p className="hint">
        Change compares with {formatDate(wireRange(previous).from)} – {formatDate(new Date(Date.parse(wireRange(previous).to) - 1).toISOString())}, the window
        of the same length before.
      </p>
      <div className="stack">
        {SECTIONS.map((section) => (
          <TopSection key={section.by} filters={filters} {...section} />
        ))}
      </div>
    </section>
  )
}

function TopSection({ filters, by, title, label }: { filters: UsageFilters; by: UsageDimension; title: string; label: string }) {
  const { environment, data_mode } = filters.wire
  const previousWire = wireRange(previousRange(filters.range))
  const totals = useQuery({
    queryKey: ['usage', 'totals', filters.wire],
    queryFn: () => get<UsageReportView>(`/v1/usage${query({ ...filters.wire, bucket: 'day' })}`),
  })
  const current = useQuery({
    queryKey: ['usage', 'top', by, filters.wire],
    queryFn: () => get<UsageTopView>(`/v1/usage/top${query({ ...filters.wire, by, limit: TOP_ROWS })}`),
  })
  const before = useQuery({
    queryKey: ['usage', 'top', by, previousWire, environment, data_mode, 'previous'],
    queryFn: () => get<UsageTopView>(`/v1/usage/top${query({ ...previousWire, environment, data_mode, by, limit: PREVIOUS_ROWS })}`),
  })
  const total = totals.data?.totals.cost_usd ?? 0
  const previousByName = new Map((before.data?.data ?? []).map((row) => [labelOf(row[by]), row.cost_usd]))
  const rows: TopRow[] = (current.data?.data ?? []).map((row) => {
    const name = labelOf(row[by])
    const previousSpend = before.data ? (previousByName.get(name) ?? 0) : undefined
    return {
      name,
      spend: row.cost_usd,
      share: total > 0 ? (row.cost_usd / total) * 100 : 0,
      requests: row.requests,
      previous: previousSpend,
      change: previousSpend === undefined || previousSpend === 0 ? undefined : (row.cost_usd - previousSpend) / previousSpend,
    }
  })
  const columns = [
    column.accessor('name', { header: label }),
    column.accessor('spend', { header: 'Spend', cell: (c) => formatUsd(c.getValue()), meta: { numeric: true } }),
    column.accessor('share', { header: 'Share', cell: (c) => formatPercent(c.getValue()), meta: { numeric: true } }),
    column.accessor('requests', { header: 'Requests', cell: (c) => formatCount(c.getValue()), meta: { numeric: true } }),
    column.accessor('change', {
      header: 'Change',
      sortUndefined: 'last',
      cell: (c) => {
        const row = c.row.original
        const text = formatChange(row.spend, row.previous)
        return <span className={text.startsWith('+') || text === 'new' ? 'up' : text.startsWith('−') ? 'down' : undefined}>{text}</span>
      },
      meta: { numeric: true },
    }),
  ]
  const error = current.error ?? before.error ?? totals.error
  return (
    <div className="card" data-testid={`top-${by}`}>
      <h2>{title}</h2>
      {error ? <FormError error={error} /> : null}
      <DataTable
        data={rows}
        columns={columns}
        caption={title}
        initialSort={[{ id: 'spend', desc: true }]}
        empty={current.isPending ? 'Loading…' : 'No spend in this range.'}
      />
    </div>
  )
}
