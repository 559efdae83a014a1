/**
 * Usage events (/usage/events): every priced call, newest first, filtered and paged by cursor.
 * Selecting an event shows where its numbers came from: the usage source (reported by the
 * provider, counted, estimated), the price source, and the cost per part when the API breaks it
 * down.
 */
import { useState } from 'react'
import { useQuery } from '@tanstack/react-query'
import { createColumnHelper } from '@tanstack/react-table'
import type { CostBreakdownView, UsageEventView } from '../../../src/api/contract/wire'
import { get, query } from '../api'
import { DataTable } from '../components/data-table'
import { FilterBar, useUsageFilters } from '../components/filters'
import { FormError } from '../components/field'
import { costPartLabel, formatCount, formatDateTime, formatUsd, labelOf, searchesLabel } from '../format'

const PAGE_SIZE = 50
const TEXT_FILTERS = [
  ['team', 'Team'],
  ['user', 'User'],
  ['model', 'Model'],
  ['endpoint', 'Endpoint tag'],
] as const
/** Where an event's token counts came from: the provider's report, counted by Tollgate, or estimated (an upper bound). */
const USAGE_SOURCES = ['reported', 'counted', 'estimated']

const column = createColumnHelper<UsageEventView>()
const columns = [
  column.accessor('occurred_at', { header: 'When', cell: (c) => formatDateTime(c.getValue()) }),
  column.accessor('team_id', { header: 'Team', cell: (c) => labelOf(c.getValue()) }),
  column.accessor('user_id', { header: 'User', cell: (c) => labelOf(c.getValue()) }),
  column.accessor('endpoint_tag', { header: 'Endpoint', cell: (c) => labelOf(c.getValue()) }),
  column.accessor('model_served', { header: 'Model' }),
  column.accessor('status', { header: 'Status', cell: (c) => <span className={`status status-${c.getValue()}`}>{c.getValue()}</span> }),
  // A shadow budget's would_block shows in the list itself: "what if this had been hard?" at a glance.
  column.accessor('decision', { header: 'Decision', cell: (c) => (c.getValue() === 'allowed' || c.getValue() === 'unenforced' ? '' : c.getValue()) }),
  column.accessor((e) => e.tokens.input + e.tokens.output, { id: 'tokens', header: 'Tokens', cell: (c) => formatCount(c.getValue()), meta: { numeric: true } }),
  column.accessor('cost_usd', { header: 'Cost', cell: (c) => formatUsd(c.getValue()), meta: { numeric: true } }),
]

interface EventPage {
  data: UsageEventView[]
  next_cursor: string | null
}

export function EventsPage() {
  const filters = useUsageFilters()
  const [text, setText] = useState<Record<string, string>>({})
  const [usageSource, setUsageSource] = useState('')
  const [cursors, setCursors] = useState<string[]>([])
  const [selected, setSelected] = useState<UsageEventView | null>(null)
  const cursor = cursors.at(-1)
  const params = { ...filters.wire, ...text, usage_source: usageSource || undefined, limit: PAGE_SIZE, cursor }
  const page = useQuery({
    queryKey: ['usage', 'events', params],
    queryFn: () => get<EventPage>(`/v1/usage/events${query(params)}`),
    placeholderData: (previous) => previous,
  })
  const resetPaging = () => {
    setCursors([])
    setSelected(null)
  }
  return (
    <section aria-labelledby="events-title">
      <h1 id="events-title">Events</h1>
      <FilterBar filters={filters}>
        {TEXT_FILTERS.map(([name, label]) => (
          <div className="field" key={name}>
            <label htmlFor={`events-${name}`}>{label}</label>
            <input
              id={`events-${name}`}
              type="search"
              defaultValue={text[name] ?? ''}
              onBlur={(e) => {
                setText((t) => ({ ...t, [name]: e.target.value.trim() }))
                resetPaging()
              }}
              onKeyDown={(e) => {
                if (e.key === 'Enter') {
                  setText((t) => ({ ...t, [name]: (e.target as HTMLInputElement).value.trim() }))
                  resetPaging()
                }
              }}
            />
          </div>
        ))}
        <div className="field">
          <label htmlFor="events-usage-source">Usage source</label>
          <select
            id="events-usage-source"
            value={usageSource}
            onChange={(e) => {
              setUsageSource(e.target.value)
              resetPaging()
            }}
          >
            <option value="">Any</option>
            {USAGE_SOURCES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
      </FilterBar>
      {page.isError ? <FormError error={page.error} /> : null}
      <div className="grid-events">
        <div className="card">
          <DataTable
            data={page.data?.data ?? []}
            columns={columns}
            caption="Usage events, newest first"
            empty={page.isPending ? 'Loading…' : 'No events match these filters.'}
            onRowClick={setSelected}
            rowLabel={(e) => `Event ${e.request_id}, ${e.model_served}, ${formatUsd(e.cost_usd)}`}
            selectedRow={(e) => e.id === selected?.id}
            testId="events-table"
          />
          <nav className="pager" aria-label="Pages">
            <button type="button" disabled={cursors.length === 0} onClick={() => setCursors((c) => c.slice(0, -1))}>
              ← Newer
            </button>
            <span>Page {cursors.length + 1}</span>
            <button
              type="button"
              disabled={!page.data?.next_cursor}
              onClick={() => page.data?.next_cursor && setCursors((c) => [...c, page.data!.next_cursor!])}
            >
              Older →
            </button>
          </nav>
        </div>
        <EventDetails event={selected} onClose={() => setSelected(null)} />
      </div>
    </section>
  )
}

function EventDetails({ event, onClose }: { event: UsageEventView | null; onClose: () => void }) {
  if (event === null) return <aside className="card details muted">Select an event to see where its usage and price came from.</aside>
  const rows: Array<[string, React.ReactNode]> = [
    ['Request', <code key="r">{event.request_id}</code>],
    ['When', formatDateTime(event.occurred_at)],
    ['Team / user / agent', `${labelOf(event.team_id)} / ${labelOf(event.user_id)} / ${labelOf(event.agent_id)}`],
    ['Key', labelOf(event.key_name)],
    ['Endpoint tag · prompt version', `${labelOf(event.endpoint_tag)} · ${labelOf(event.prompt_version)}`],
    ['Environment · data', `${event.environment} · ${event.data_mode}`],
    ['Provider · model', `${event.provider} · ${event.model_requested}${event.model_served !== event.model_requested ? ` → ${event.model_served}` : ''}`],
    ['API · stream', `${event.endpoint}${event.is_stream ? ' · stream' : ''}`],
    ['Status', `${event.status} (HTTP ${event.http_status}) · ${event.decision}`],
    ['Latency', `${formatCount(event.latency_ms)} ms`],
    [
      'Usage source',
      <strong key="u">
        {event.usage_source}
        {event.usage_note ? ` (${event.usage_note.replaceAll('_', ' ')})` : ''}
      </strong>,
    ],
    ['Price source', <strong key="p">{event.price_source}</strong>],
    ['Recorded by', event.source === 'ingest' ? 'POST /v1/events' : event.source === 'direct' ? 'a settled reservation' : 'the gateway'],
    ...(event.reported_cost_usd === null
      ? []
      : [['Reported cost', `${formatUsd(event.reported_cost_usd)} (as sent; the cost above is the catalogue's)`] as [string, React.ReactNode]]),
  ]
  const searches = searchesLabel(event)
  if (searches !== undefined) rows.push(['Searches', searches])
  const tokens = Object.entries(event.tokens).filter(([, n]) => n > 0)
  return (
    <aside className="card details" aria-labelledby="event-details-title" data-testid="event-details">
      <div className="details-head">
        <h2 id="event-details-title">Event {formatUsd(event.cost_usd)}</h2>
        <button type="button" onClick={onClose} aria-label="Close event details">
          ×
        </button>
      </div>
      <dl>
        {rows.map(([term, value]) => (
          <div key={term}>
            <dt>{term}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      <h3>Tokens</h3>
      <dl>
        {tokens.length === 0 ? (
          <dd>none</dd>
        ) : (
          tokens.map(([kind, n]) => (
            <div key={kind}>
              <dt>{kind.replaceAll('_', ' ')}</dt>
              <dd>{formatCount(n)}</dd>
            </div>
          ))
        )}
      </dl>
      {event.cost_breakdown ? <Breakdown breakdown={event.cost_breakdown} /> : null}
    </aside>
  )
}

/** The per-part cost breakdown: each part's tokens, unit price and cost, and the price tier. */
function Breakdown({ breakdown }: { breakdown: CostBreakdownView }) {
  return (
    <>
      <h3>Cost breakdown · {breakdown.tier}</h3>
      <dl className="breakdown" data-testid="cost-breakdown">
        {breakdown.parts.map((line) => (
          <div key={line.part}>
            <dt>{costPartLabel(line)}</dt>
            <dd>
              {formatUsd(line.cost_usd)}
              {line.fallback ? ' (fallback price)' : ''}
            </dd>
          </div>
        ))}
      </dl>
    </>
  )
}
