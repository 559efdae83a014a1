/**
 * Budgets (/usage/budgets): every budget as a gauge — spend against the amount, the thresholds
 * marked on the arc, the forecast needle and exhaustion date — with create, edit and delete for
 * those who may write (admins; a team_admin for its own team's budgets).
 */
import { useState } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import type { BudgetWire, ListOf } from '../../../src/api/contract/wire'
import { api, get } from '../api'
import { Chart } from '../components/chart'
import { FormError } from '../components/field'
import { gaugeOption } from '../charts'
import { formatDate, formatDateTime, formatPercent, formatUsd } from '../format'
import { canWrite, useSession } from '../session'
import { BudgetForm } from './budget-form'

export function BudgetsPage() {
  const session = useSession()
  const budgets = useQuery({ queryKey: ['budgets'], queryFn: () => get<ListOf<BudgetWire>>('/v1/billing/budgets'), refetchInterval: 30_000 })
  const [editing, setEditing] = useState<BudgetWire | 'new' | null>(null)
  const mayCreate = session.role === 'admin' || (session.role === 'team_admin' && session.team_id !== null)
  return (
    <section aria-labelledby="budgets-title">
      <div className="page-head">
        <h1 id="budgets-title">Budgets</h1>
        {mayCreate && editing === null ? (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            New budget
          </button>
        ) : null}
      </div>
      <p className="hint">
        Budgets warn at their thresholds and, with a hard limit or a block action, refuse calls. The grey needle is the forecast for the end of the period at
        the recent rate.
      </p>
      {editing !== null ? (
        <BudgetForm key={editing === 'new' ? 'new' : editing.id} {...(editing === 'new' ? {} : { budget: editing })} onDone={() => setEditing(null)} />
      ) : null}
      {budgets.isError ? <FormError error={budgets.error} /> : null}
      {budgets.data && budgets.data.data.length === 0 ? <p className="empty card">No budgets yet.</p> : null}
      <ul className="gauges">
        {(budgets.data?.data ?? []).map((budget) => (
          <BudgetGauge
            key={budget.id}
            budget={budget}
            onEdit={() => setEditing(budget)}
            mayWrite={canWrite(session, budget.scope.kind === 'team' ? budget.scope.id : undefined)}
          />
        ))}
      </ul>
    </section>
  )
}

function BudgetGauge({ budget, onEdit, mayWrite }: { budget: BudgetWire; onEdit: () => void; mayWrite: boolean }) {
  const client = useQueryClient()
  const remove = useMutation({
    mutationFn: () => api<void>('DELETE', `/v1/billing/budgets/${budget.id}`),
    onSuccess: () => client.invalidateQueries({ queryKey: ['budgets'] }),
  })
  const p = budget.posture
  const forecastPercent = p.forecast_spend_usd === null ? null : (p.forecast_spend_usd / budget.amount_usd) * 100
  // Spent in full: the API's exhaustion time is the moment of the request, not a forecast to show.
  const spentInFull = p.spend_usd >= budget.amount_usd
  const thresholds = [...new Set([...budget.alert_thresholds, ...budget.threshold_actions.map((a) => a.threshold_percent)])].sort((a, b) => a - b)
  const isConfig = budget.source === 'config'
  return (
    <li className="card gauge-card" data-testid={`budget-${budget.name}`} aria-labelledby={`budget-${budget.id}-name`}>
      <div className="gauge-head">
        <h2 id={`budget-${budget.id}-name`}>{budget.name}</h2>
        <span className="scope">
          {budget.scope.kind}:{budget.scope.id}
          {budget.scope.environment ? `@${budget.scope.environment}` : ''}
        </span>
      </div>
      <div className="badges">
        <span className="tag">{budget.period}</span>
        <span className="tag">{budget.timezone}</span>
        {budget.hard_limit ? <span className="tag tag-hard">hard limit</span> : null}
        {budget.shadow ? <span className="tag tag-shadow">shadow</span> : null}
        {isConfig ? <span className="tag">from config</span> : null}
      </div>
      <Chart
        option={gaugeOption({ percent: p.percent, forecastPercent, thresholds })}
        height={170}
        label={`${budget.name}: ${formatPercent(p.percent)} of ${formatUsd(budget.amount_usd)} spent`}
      />
      <dl className="gauge-figures">
        <div>
          <dt>Spent</dt>
          <dd data-testid="budget-spent">
            {formatUsd(p.spend_usd)} of {formatUsd(budget.amount_usd)}
          </dd>
        </div>
        <div>
          <dt>Forecast</dt>
          <dd className={forecastPercent !== null && forecastPercent > 100 ? 'warn' : undefined}>
            {p.forecast_spend_usd === null ? 'not enough history' : `${formatUsd(p.forecast_spend_usd)} (${formatPercent(forecastPercent)})`}
          </dd>
        </div>
        <div>
          <dt>Runs out</dt>
          <dd className={p.forecast_exhaustion_at ? 'warn' : undefined} data-testid="budget-runs-out">
            {spentInFull ? 'already spent in full' : p.forecast_exhaustion_at ? formatDateTime(p.forecast_exhaustion_at) : 'not this period'}
          </dd>
        </div>
        <div>
          <dt>Thresholds</dt>
          <dd>
            {thresholds.length === 0
              ? 'none'
              : thresholds
                  .map((t) => {
                    const action = budget.threshold_actions.find((a) => a.threshold_percent === t)?.action
                    return `${t}%${action && action !== 'notify' ? ` ${action}` : ''}`
                  })
                  .join(' · ')}
          </dd>
        </div>
        <div>
          <dt>Period</dt>
          <dd>
            {formatDate(p.period_start)} – {formatDate(new Date(Date.parse(p.period_end) - 1).toISOString())}
          </dd>
        </div>
      </dl>
      {mayWrite && !isConfig ? (
        <div className="buttons">
          <button type="button" onClick={onEdit}>
            Edit
          </button>
          <button
            type="button"
            className="danger"
            disabled={remove.isPending}
            onClick={() => {
              if (window.confirm(`Delete the budget "${budget.name}"?`)) remove.mutate()
            }}
          >
            Delete
          </button>
        </div>
      ) : null}
      {mayWrite && isConfig ? <p className="hint">Declared in the config file: change it there.</p> : null}
      {remove.isError ? <FormError error={remove.error} /> : null}
    </li>
  )
}
