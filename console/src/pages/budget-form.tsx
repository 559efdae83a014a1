/**
 * Create or edit a budget. The form sends what was typed and shows the API's validation message
 * under the field it names (`issues[].path`), so the rules live in one place: the API.
 */
import { useState, type FormEvent } from 'react'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import type { BudgetPeriodName, BudgetScopeKind, BudgetWire, EndpointTierName, ThresholdActionName } from '../../../src/api/contract/wire'
import { ApiError, api } from '../api'
import { Field, FormError } from '../components/field'
import { useSession } from '../session'

const SCOPE_KINDS: BudgetScopeKind[] = ['org', 'team', 'user', 'agent', 'key', 'endpoint', 'model', 'provider']
const PERIODS: BudgetPeriodName[] = ['daily', 'weekly', 'monthly', 'quarterly', 'yearly']
const ACTIONS: ThresholdActionName[] = ['notify', 'degrade', 'block', 'block_if_forecast_exceeds']
const TIERS: EndpointTierName[] = ['critical', 'standard', 'experimental']
const TIME_ZONES: string[] = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : ['UTC']

interface Draft {
  name: string
  scopeKind: BudgetScopeKind
  scopeId: string
  environment: string
  period: BudgetPeriodName
  timezone: string
  amount: string
  thresholds: string
  actions: Array<{ percent: string; action: ThresholdActionName; channels: string }>
  hardLimit: boolean
  shadow: boolean
  channels: string
  owner: string
  escalateAfter: string
  /** '' = no tier of its own (an endpoint budget may still take its endpoint's). */
  tier: EndpointTierName | ''
}

function draftOf(budget: BudgetWire | undefined, teamId: string | null): Draft {
  if (!budget) {
    return {
      name: '',
      scopeKind: teamId ? 'team' : 'team',
      scopeId: teamId ?? '',
      environment: '',
      period: 'monthly',
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
      amount: '',
      thresholds: '50, 80, 95',
      actions: [],
      hardLimit: false,
      shadow: false,
      channels: '',
      owner: '',
      escalateAfter: '',
      tier: '',
    }
  }
  return {
    name: budget.name,
    scopeKind: budget.scope.kind,
    scopeId: budget.scope.id,
    environment: budget.scope.environment ?? '',
    period: budget.period,
    timezone: budget.timezone,
    amount: String(budget.amount_usd),
    thresholds: budget.alert_thresholds.join(', '),
    actions: budget.threshold_actions.map((a) => ({ percent: String(a.threshold_percent), action: a.action, channels: (a.channels ?? []).join(', ') })),
    hardLimit: budget.hard_limit,
    shadow: budget.shadow,
    channels: (budget.channels ?? []).join(', '),
    owner: budget.owner ?? '',
    escalateAfter: budget.escalate_after ?? '',
    tier: budget.tier ?? '',
  }
}

/** Numbers where the text is a number; anything else is sent as typed, for the API to name. */
function numberOrText(value: string): number | string {
  const trimmed = value.trim()
  return trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed
}

function list(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
}

/** An optional text field: its value, or omitted on create and cleared (null) on edit when empty. */
function optional(key: string, value: string, isEdit: boolean): Record<string, unknown> {
  const trimmed = value.trim()
  return trimmed !== '' ? { [key]: trimmed } : isEdit ? { [key]: null } : {}
}

/** The API body; empty channels mean "the defaults": omitted on create, cleared (null) on edit. */
export function bodyOf(draft: Draft, isEdit: boolean): Record<string, unknown> {
  const channels = list(draft.channels)
  return {
    name: draft.name,
    scope: { kind: draft.scopeKind, id: draft.scopeId, ...(draft.environment.trim() ? { environment: draft.environment.trim() } : {}) },
    period: draft.period,
    timezone: draft.timezone,
    amount_usd: draft.amount.trim(),
    alert_thresholds: list(draft.thresholds).map(numberOrText),
    threshold_actions: draft.actions.map((a) => ({
      threshold_percent: numberOrText(a.percent),
      action: a.action,
      ...(list(a.channels).length > 0 ? { channels: list(a.channels) } : {}),
    })),
    hard_limit: draft.hardLimit,
    shadow: draft.shadow,
    ...(channels.length > 0 ? { channels } : isEdit ? { channels: null } : {}),
    ...optional('owner', draft.owner, isEdit),
    ...optional('escalate_after', draft.escalateAfter, isEdit),
    ...optional('tier', draft.tier, isEdit),
  }
}

export function BudgetForm({ budget, onDone }: { readonly budget?: BudgetWire; readonly onDone: () => void }) {
  const session = useSession()
  const client = useQueryClient()
  const teamLocked = session.role === 'team_admin'
  const [draft, setDraft] = useState<Draft>(() => draftOf(budget, teamLocked ? session.team_id : null))
  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      budget ? api<BudgetWire>('PATCH', `/v1/billing/budgets/${budget.id}`, body) : api<BudgetWire>('POST', '/v1/billing/budgets', body),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ['budgets'] })
      onDone()
    },
  })
  const error = save.error instanceof ApiError ? save.error : undefined
  const issue = (path: string) => error?.issueAt(path)
  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => setDraft((d) => ({ ...d, [key]: value }))
  const submit = (event: FormEvent) => {
    event.preventDefault()
    save.mutate(bodyOf(draft, budget !== undefined))
  }
  const fieldPaths = [
    'name',
    'scope',
    'period',
    'timezone',
    'amount_usd',
    'alert_thresholds',
    'threshold_actions',
    'hard_limit',
    'shadow',
    'channels',
    'owner',
    'escalate_after',
    'tier',
  ]
  const unplaced = error && (error.issues.length === 0 || error.issues.every((i) => !fieldPaths.some((p) => i.path === p || i.path.startsWith(`${p}.`))))

  return (
    <form className="card budget-form" onSubmit={submit} aria-labelledby="budget-form-title" noValidate>
      <h2 id="budget-form-title">{budget ? `Edit ${budget.name}` : 'New budget'}</h2>
      <div className="form-grid">
        <Field label="Name" error={issue('name')}>
          {(p) => <input {...p} value={draft.name} onChange={(e) => set('name', e.target.value)} />}
        </Field>
        <Field label="Scope" error={issue('scope.kind')}>
          {(p) => (
            <select {...p} value={draft.scopeKind} disabled={teamLocked} onChange={(e) => set('scopeKind', e.target.value as BudgetScopeKind)}>
              {SCOPE_KINDS.map((k) => (
                <option key={k} value={k}>
                  {k}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field
          label={`${draft.scopeKind[0]!.toUpperCase()}${draft.scopeKind.slice(1)} id`}
          error={issue('scope.id') ?? (issue('scope') && !issue('scope.kind') && !issue('scope.environment') ? issue('scope') : undefined)}
        >
          {(p) => <input {...p} value={draft.scopeId} readOnly={teamLocked} onChange={(e) => set('scopeId', e.target.value)} />}
        </Field>
        <Field label="Environment (optional)" error={issue('scope.environment')} hint="Only calls from this environment count.">
          {(p) => <input {...p} value={draft.environment} onChange={(e) => set('environment', e.target.value)} placeholder="any" />}
        </Field>
        <Field label="Period" error={issue('period')}>
          {(p) => (
            <select {...p} value={draft.period} onChange={(e) => set('period', e.target.value as BudgetPeriodName)}>
              {PERIODS.map((k) => (
                <option key={k} value={k}>
                  {k}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Time zone" error={issue('timezone')} hint="Periods start at local midnight here.">
          {(p) => (
            <>
              <input {...p} list="time-zones" value={draft.timezone} onChange={(e) => set('timezone', e.target.value)} />
              <datalist id="time-zones">
                {TIME_ZONES.map((tz) => (
                  <option key={tz} value={tz} />
                ))}
              </datalist>
            </>
          )}
        </Field>
        <Field label="Amount (USD)" error={issue('amount_usd')}>
          {(p) => <input {...p} inputMode="decimal" value={draft.amount} onChange={(e) => set('amount', e.target.value)} placeholder="500" />}
        </Field>
        <Field label="Alert thresholds (%)" error={issue('alert_thresholds')} hint="Comma-separated, e.g. 50, 80, 95.">
          {(p) => <input {...p} value={draft.thresholds} onChange={(e) => set('thresholds', e.target.value)} />}
        </Field>
        <Field label="Channels (optional)" error={issue('channels')} hint="Notification channel ids from the config; empty: the defaults.">
          {(p) => <input {...p} value={draft.channels} onChange={(e) => set('channels', e.target.value)} />}
        </Field>
        <Field label="Owner (optional)" error={issue('owner')} hint="A channel id to receive every notice of this budget, or a name shown on them.">
          {(p) => <input {...p} value={draft.owner} onChange={(e) => set('owner', e.target.value)} />}
        </Field>
        <Field
          label="Escalate after (optional)"
          error={issue('escalate_after')}
          hint="e.g. 2h: an unacknowledged notice then goes to the owner and the escalation channels."
        >
          {(p) => <input {...p} value={draft.escalateAfter} onChange={(e) => set('escalateAfter', e.target.value)} placeholder="never" />}
        </Field>
        <Field label="Tier (optional)" error={issue('tier')} hint="Shorthand for threshold actions; see the policy docs.">
          {(p) => (
            <select {...p} value={draft.tier} onChange={(e) => set('tier', e.target.value as Draft['tier'])}>
              <option value="">none (or the endpoint's)</option>
              {TIERS.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>

      <fieldset>
        <legend>Threshold actions</legend>
        {draft.actions.length === 0 ? <p className="hint">None: thresholds only notify.</p> : null}
        {draft.actions.map((action, index) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: a draft row has no identity but its position, and field errors are addressed by it
          <div className="action-row" key={index}>
            <Field label={`Action ${index + 1} at (%)`} error={issue(`threshold_actions.${index}.threshold_percent`) ?? issue(`threshold_actions.${index}`)}>
              {(p) => (
                <input
                  {...p}
                  inputMode="numeric"
                  value={action.percent}
                  onChange={(e) =>
                    set(
                      'actions',
                      draft.actions.map((a, i) => (i === index ? { ...a, percent: e.target.value } : a)),
                    )
                  }
                />
              )}
            </Field>
            <Field label={`Action ${index + 1}`} error={issue(`threshold_actions.${index}.action`)}>
              {(p) => (
                <select
                  {...p}
                  value={action.action}
                  onChange={(e) =>
                    set(
                      'actions',
                      draft.actions.map((a, i) => (i === index ? { ...a, action: e.target.value as ThresholdActionName } : a)),
                    )
                  }
                >
                  {ACTIONS.map((a) => (
                    <option key={a} value={a}>
                      {a}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label={`Action ${index + 1} channels`} error={issue(`threshold_actions.${index}.channels`)} hint="Empty: the budget's channels.">
              {(p) => (
                <input
                  {...p}
                  value={action.channels}
                  onChange={(e) =>
                    set(
                      'actions',
                      draft.actions.map((a, i) => (i === index ? { ...a, channels: e.target.value } : a)),
                    )
                  }
                />
              )}
            </Field>
            <button
              type="button"
              onClick={() =>
                set(
                  'actions',
                  draft.actions.filter((_, i) => i !== index),
                )
              }
              aria-label={`Remove action ${index + 1}`}
            >
              Remove
            </button>
          </div>
        ))}
        {issue('threshold_actions') && !draft.actions.some((_, i) => issue(`threshold_actions.${i}`)) ? (
          <small className="error">{issue('threshold_actions')}</small>
        ) : null}
        <button type="button" onClick={() => set('actions', [...draft.actions, { percent: '100', action: 'block', channels: '' }])}>
          Add action
        </button>
      </fieldset>

      <div className="checks">
        <label>
          <input type="checkbox" checked={draft.hardLimit} onChange={(e) => set('hardLimit', e.target.checked)} /> Hard limit — refuse calls past 100%
        </label>
        <label>
          <input type="checkbox" checked={draft.shadow} onChange={(e) => set('shadow', e.target.checked)} /> Shadow — record what would be blocked, block
          nothing
        </label>
      </div>
      {unplaced ? <FormError error={save.error} /> : null}
      {save.error && !(save.error instanceof ApiError) ? <FormError error={save.error} /> : null}
      <div className="buttons">
        <button type="submit" className="primary" disabled={save.isPending}>
          {save.isPending ? 'Saving…' : budget ? 'Save changes' : 'Create budget'}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  )
}
