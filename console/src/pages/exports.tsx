/**
 * Exports (/exports): start an export of events, the ledger or budgets as CSV or NDJSON for a
 * date range, watch its progress (polled while any job runs), download the file when done and
 * until the gateway deletes it (`expires_at`); an expired job says so and offers no link.
 */
import { useState, type FormEvent } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import type { ExportJobView, ListOf } from '../../../src/api/contract/wire'
import { ApiError, api, get } from '../api'
import { Field, FormError } from '../components/field'
import { formatCount, formatDateTime } from '../format'
import { lastDays, shownRange, wireRange } from '../range'

const POLL_MS = 1_000
const TYPES: Array<{ value: ExportJobView['type']; label: string }> = [
  { value: 'events', label: 'Usage events' },
  { value: 'ledger', label: 'Wallet ledger' },
  { value: 'budgets', label: 'Budgets' },
]

export function ExportsPage() {
  const jobs = useQuery({
    queryKey: ['exports'],
    queryFn: () => get<ListOf<ExportJobView>>('/v1/export-jobs'),
    refetchInterval: (q) => ((q.state.data?.data ?? []).some((j) => j.status === 'queued' || j.status === 'running') ? POLL_MS : false),
  })
  return (
    <section aria-labelledby="exports-title">
      <h1 id="exports-title">Exports</h1>
      {/* Any role may export: it reads what the token can already read (a team_admin: its team). */}
      <ExportForm />
      {jobs.isError ? <FormError error={jobs.error} /> : null}
      <div className="card">
        <h2>Export jobs</h2>
        {jobs.data && jobs.data.data.length === 0 ? <p className="empty">No exports yet.</p> : null}
        <ul className="jobs">
          {(jobs.data?.data ?? []).map((job) => (
            <li key={job.id} data-testid={`export-${job.id}`} className={`job job-${job.status}`}>
              <div className="job-head">
                <strong>
                  {TYPES.find((t) => t.value === job.type)?.label ?? job.type} · {job.format.toUpperCase()}
                </strong>
                <span className={`tag tag-${job.status}`}>{job.status}</span>
              </div>
              <p className="muted small">
                {job.date_from && job.date_to ? daysOf(job.date_from, job.date_to) : ''}
                {job.created_at ? ` · started ${formatDateTime(job.created_at)}` : ''}
              </p>
              <progress max={1} value={job.progress} aria-label={`Export ${job.id}: ${Math.round(job.progress * 100)}%`} />
              <p className="small">
                {formatCount(job.rows_written)}
                {job.rows_total !== null ? ` of ${formatCount(job.rows_total)}` : ''} rows · {Math.round(job.progress * 100)}%
              </p>
              {job.status === 'failed' ? <p className="error">{job.error ?? 'The export failed.'}</p> : null}
              {job.status === 'expired' ? (
                <p className="muted small">
                  The file was deleted{job.expired_at ? ` on ${formatDateTime(job.expired_at)}` : ''} after the retention period. Start a new export to get it
                  again.
                </p>
              ) : null}
              {job.status === 'completed' && job.download_url ? (
                <>
                  {job.expires_at ? <p className="muted small">Kept until {formatDateTime(job.expires_at)}</p> : null}
                  <a className="button primary" href={job.download_url} download>
                    Download
                  </a>
                </>
              ) : null}
            </li>
          ))}
        </ul>
      </div>
    </section>
  )
}

function ExportForm() {
  const client = useQueryClient()
  const initial = lastDays(30, Date.now())
  const [type, setType] = useState<ExportJobView['type']>('events')
  const [format, setFormat] = useState<ExportJobView['format']>('csv')
  const [from, setFrom] = useState(initial.from)
  const [to, setTo] = useState(initial.to)
  const start = useMutation({
    mutationFn: () => {
      // Whole local days, the last one included: the API's window is half-open.
      const window = from && to ? wireRange({ from, to }) : { from, to }
      return api<ExportJobView>('POST', '/v1/export-jobs', { type, format, date_from: window.from, date_to: window.to })
    },
    onSuccess: () => client.invalidateQueries({ queryKey: ['exports'] }),
  })
  const error = start.error instanceof ApiError ? start.error : undefined
  const submit = (event: FormEvent) => {
    event.preventDefault()
    start.mutate()
  }
  return (
    <form className="card" onSubmit={submit} aria-labelledby="export-form-title" noValidate>
      <h2 id="export-form-title">New export</h2>
      <div className="form-grid">
        <Field label="What" error={error?.issueAt('type')}>
          {(p) => (
            <select {...p} value={type} onChange={(e) => setType(e.target.value as ExportJobView['type'])}>
              {TYPES.map((t) => (
                <option key={t.value} value={t.value}>
                  {t.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Format" error={error?.issueAt('format')}>
          {(p) => (
            <select {...p} value={format} onChange={(e) => setFormat(e.target.value as ExportJobView['format'])}>
              <option value="csv">CSV</option>
              <option value="ndjson">NDJSON</option>
            </select>
          )}
        </Field>
        <Field label="From" error={error?.issueAt('date_from')}>
          {(p) => <input {...p} type="date" value={from} onChange={(e) => setFrom(e.target.value)} />}
        </Field>
        <Field label="To (included)" error={error?.issueAt('date_to')}>
          {(p) => <input {...p} type="date" value={to} onChange={(e) => setTo(e.target.value)} />}
        </Field>
      </div>
      {error && error.issues.length === 0 ? <FormError error={error} /> : null}
      {start.error && !(start.error instanceof ApiError) ? <FormError error={start.error} /> : null}
      <button type="submit" className="primary" disabled={start.isPending}>
        Start export
      </button>
    </form>
  )
}

/** A job's range as the form took it: first and last day, both included. */
function daysOf(fromIso: string, toIso: string): string {
  const days = shownRange(fromIso, toIso)
  return days.from === days.to ? days.from : `${days.from} – ${days.to}`
}
