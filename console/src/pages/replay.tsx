/**
 * Policy replay (/policy/replay): paste or upload a policy (YAML or JSON: budgets, cost_tracking,
 * endpoint_tiers, wallets), pick whole days, run it over the recorded traffic and read what it
 * would have done — totals, spend vs avoided over time, one row per budget or wallet, and when its
 * thresholds would have fired. The job is polled while it runs. A viewer may look, not run.
 */
import { useMemo, useState, type ChangeEvent, type FormEvent } from 'react'
import { useMutation, useQuery } from '@tanstack/react-query'
import type { ReplayJobView, ScopeReport } from '../../../src/api/contract/wire'
import { ApiError, api, get } from '../api'
import { Chart } from '../components/chart'
import { Field, FormError } from '../components/field'
import { replayChartOption } from '../charts'
import { formatCount, formatDateTime, formatUsd } from '../format'
import { lastDays, wireRange } from '../range'
import { useSession } from '../session'

const POLL_MS = 500
const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

export const EXAMPLE_POLICY = `budgets:
  - name: growth monthly
    scope: { kind: team, id: growth }
    period: monthly
    amount_usd: 400
    alert_thresholds: [50, 80]
    hard_limit: true
endpoint_tiers:
  checkout: critical
`

export function ReplayPage() {
  const session = useSession()
  const [jobId, setJobId] = useState<string | undefined>()
  const job = useQuery({
    queryKey: ['replay', jobId],
    queryFn: () => get<ReplayJobView>(`/v1/replays/${encodeURIComponent(jobId!)}`),
    enabled: jobId !== undefined,
    refetchInterval: (q) => (q.state.data?.status === 'running' || q.state.data === undefined ? POLL_MS : false),
  })
  return (
    <section aria-labelledby="replay-title">
      <h1 id="replay-title">Policy replay</h1>
      <p className="muted">What would a policy have done to the traffic you already had? Nothing is changed: no budget, wallet or notification.</p>
      {session.role === 'viewer' ? <p className="empty">A viewer cannot run a replay; ask an admin or a team admin.</p> : <ReplayForm onStarted={setJobId} />}
      {job.isError ? <FormError error={job.error} /> : null}
      {job.data ? <ReplayResult job={job.data} /> : null}
    </section>
  )
}

function ReplayForm({ onStarted }: { readonly onStarted: (id: string) => void }) {
  const initial = lastDays(30, Date.now())
  const [policy, setPolicy] = useState(EXAMPLE_POLICY)
  const [from, setFrom] = useState(initial.from)
  const [to, setTo] = useState(initial.to)
  const [dataMode, setDataMode] = useState<'real' | 'demo' | 'all'>('real')
  const start = useMutation({
    mutationFn: () => {
      const window = from && to ? wireRange({ from, to }) : { from, to }
      return api<ReplayJobView>('POST', '/v1/replays', { from: window.from, to: window.to, policy, data_mode: dataMode })
    },
    onSuccess: (job) => onStarted(job.id),
  })
  const error = start.error instanceof ApiError ? start.error : undefined
  const policyError = error?.issues
    .filter((i) => i.path === 'policy' || i.path.startsWith('policy.'))
    .map((i) => `${i.path}: ${i.message}`)
    .join('\n')
  const upload = async (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0]
    if (file) setPolicy(await file.text())
  }
  const submit = (event: FormEvent) => {
    event.preventDefault()
    start.mutate()
  }
  return (
    <form className="card" onSubmit={submit} aria-labelledby="replay-form-title" noValidate>
      <h2 id="replay-form-title">Proposed policy</h2>
      <Field
        label="Policy (YAML or JSON)"
        error={policyError || undefined}
        hint="The config file's budgets, cost_tracking and endpoint_tiers sections, plus wallets."
      >
        {(p) => (
          <textarea
            {...p}
            className="code"
            rows={12}
            spellCheck={false}
            value={policy}
            onChange={(e) => setPolicy(e.target.value)}
            data-testid="replay-policy"
          />
        )}
      </Field>
      <div className="form-grid">
        <Field label="Or upload a policy file">
          {(p) => <input {...p} type="file" accept=".yaml,.yml,.json,text/yaml,application/json" onChange={(e) => void upload(e)} />}
        </Field>
        <Field label="From" error={error?.issueAt('from')}>
          {(p) => <input {...p} type="date" value={from} onChange={(e) => setFrom(e.target.value)} />}
        </Field>
        <Field label="To (included)" error={error?.issueAt('to')}>
          {(p) => <input {...p} type="date" value={to} onChange={(e) => setTo(e.target.value)} />}
        </Field>
        <Field label="Traffic" error={error?.issueAt('data_mode')}>
          {(p) => (
            <select {...p} value={dataMode} onChange={(e) => setDataMode(e.target.value as 'real' | 'demo' | 'all')}>
              <option value="real">Real traffic</option>
              <option value="demo">Demo data</option>
              <option value="all">Both</option>
            </select>
          )}
        </Field>
      </div>
      {error && error.issues.length === 0 ? <FormError error={error} /> : null}
      {start.error && !(start.error instanceof ApiError) ? <FormError error={start.error} /> : null}
      <button type="submit" className="primary" disabled={start.isPending}>
        Run replay
      </button>
    </form>
  )
}

function ReplayResult({ job }: { readonly job: ReplayJobView }) {
  const { processed, total } = job.progress
  if (job.status === 'running') {
    return (
      <div className="card" data-testid="replay-progress">
        <h2>Replaying…</h2>
        <progress max={Math.max(1, total)} value={Math.min(processed, Math.max(1, total))} aria-label={`Replay: ${processed} of ${total} events`} />
        <p className="small">
          {formatCount(processed)} of {formatCount(total)} events
        </p>
      </div>
    )
  }
  if (job.status === 'failed' || !job.report) return <p className="error">{job.error ?? 'The replay failed.'}</p>
  return <ReplayReportView job={job} />
}

function ReplayReportView({ job }: { readonly job: ReplayJobView }) {
  const report = job.report!
  const t = report.totals
  const bucketMs = Date.parse(job.to) - Date.parse(job.from) <= 3 * DAY_MS ? HOUR_MS : DAY_MS
  const option = useMemo(() => replayChartOption(report.series, bucketMs), [report.series, bucketMs])
  const usd = (micros: number) => formatUsd(micros / 1e6)
  const firings = report.scopes.flatMap((s) => s.thresholds.map((f) => ({ ...f, scope: s.name ?? s.scope })))
  const firingsTotal = report.scopes.reduce((n, s) => n + s.thresholds_total, 0)
  return (
    <div data-testid="replay-report">
      <div className="kpis">
        <Tile label="Events" value={formatCount(t.events)} />
        <Tile label="Spend with no policy" value={usd(t.baseline_cost_micros)} />
        <Tile label="Spend under the policy" value={usd(t.replayed_cost_micros)} />
        <Tile label="Spend avoided" value={usd(t.avoided_micros)} testId="replay-avoided" />
        <Tile label="Decisions that differ" value={formatCount(t.changed_decisions)} />
        <Tile label="Critical refusals" value={formatCount(t.critical_refusals)} />
      </div>
      <div className="card">
        <h2>Spend vs avoided</h2>
        <Chart option={option} label="Spend under the policy and spend avoided, per time bucket" height={260} testId="replay-chart" />
      </div>
      <div className="card">
        <h2>Per budget and wallet</h2>
        <div className="table-frame">
          <table data-testid="replay-scopes">
            <thead>
              <tr>
                <th scope="col">Scope</th>
                <th scope="col">Name</th>
                <th scope="col" className="num">
                  Blocked
                </th>
                <th scope="col">First blocked</th>
                <th scope="col" className="num">
                  Degraded
                </th>
                <th scope="col" className="num">
                  Would block
                </th>
                <th scope="col" className="num">
                  Critical
                </th>
                <th scope="col" className="num">
                  Avoided
                </th>
              </tr>
            </thead>
            <tbody>
              {report.scopes.map((s) => (
                <ScopeRow key={s.key} scope={s} />
              ))}
            </tbody>
          </table>
        </div>
      </div>
      <div className="card">
        <h2>When thresholds would have fired</h2>
        {firings.length === 0 ? <p className="empty">No threshold would have fired.</p> : null}
        {firings.length < firingsTotal ? (
          <p className="muted small" data-testid="replay-firings-truncated">
            {formatCount(firingsTotal)} firings; the first {formatCount(firings.length)} are listed. The report's <code>threshold_counts</code> counts each
            threshold.
          </p>
        ) : null}
        <ul className="firings">
          {firings.map((f, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: the list is replaced whole with each report; firings have no id
            <li key={i}>
              <strong>{f.scope}</strong> · {f.kind === 'blocked' ? 'first refusal' : `${f.threshold_percent}%`} ({f.action ?? 'alert'}) · {formatDateTime(f.at)}
            </li>
          ))}
        </ul>
      </div>
      {t.estimated_costs > 0 ? (
        <p className="muted small">
          {formatCount(t.estimated_costs)} events had been refused when recorded; their cost is estimated from the same key's last call of that model.
        </p>
      ) : null}
    </div>
  )
}

function ScopeRow({ scope }: { readonly scope: ScopeReport }) {
  return (
    <tr>
      <td>
        {scope.kind} {scope.scope}
      </td>
      <td>{scope.name ?? '–'}</td>
      <td className="num">{formatCount(scope.blocked.count)}</td>
      <td>{scope.blocked.first_at ? formatDateTime(scope.blocked.first_at) : '–'}</td>
      <td className="num">{formatCount(scope.degraded.count)}</td>
      <td className="num">{formatCount(scope.would_block.count)}</td>
      <td className="num">{formatCount(scope.critical_refusals.count)}</td>
      <td className="num">{formatUsd(scope.avoided_micros / 1e6)}</td>
    </tr>
  )
}

function Tile({ label, value, testId }: { readonly label: string; readonly value: string; readonly testId?: string }) {
  return (
    <div className="kpi" data-testid={testId}>
      <span className="kpi-label">{label}</span>
      <span className="kpi-value">{value}</span>
    </div>
  )
}
