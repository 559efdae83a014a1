/**
 * Notification preferences (/settings/notification-preferences): for a role or a user, which
 * configured channels each notification type goes to. A channel no preference mentions gets
 * every type (the budget's channels decide); once a preference mentions a channel, that channel
 * gets only the types turned on for it. The in-app inbox always gets everything. Org admins
 * change preferences; everyone else reads them.
 */
import { useState, type FormEvent } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import {
  NOTIFICATION_TYPE_NAMES,
  type NotificationPreferenceView,
  type NotificationPreferencesList,
  type NotificationTypeName,
} from '../../../src/api/contract/wire'
import { ApiError, api, get } from '../api'
import { Field, FormError } from '../components/field'
import { formatDateTime } from '../format'
import { useSession } from '../session'

const TYPE_LABELS: Record<NotificationTypeName, string> = {
  'budget.threshold': 'Budget threshold reached',
  'budget.forecast': 'Budget on course to run out',
  'budget.spike': 'Spend spike',
  'budget.blocked': 'Budget blocking calls',
  'budget.escalated': 'Budget notice escalated (unacknowledged)',
  'wallet.threshold': 'Wallet threshold reached',
  'wallet.exhausted': 'Wallet exhausted',
  'ticket.created': 'Cost ticket opened',
  'ticket.digest': 'More refusals on a ticket',
  'ticket.resolved': 'Cost ticket resolved',
}

export function PreferencesPage() {
  const session = useSession()
  const prefs = useQuery({ queryKey: ['preferences'], queryFn: () => get<NotificationPreferencesList>('/v1/notification-preferences') })
  const [editing, setEditing] = useState<NotificationPreferenceView | 'new' | null>(null)
  const channels = prefs.data?.channels ?? []
  const isAdmin = session.role === 'admin'
  return (
    <section aria-labelledby="prefs-title">
      <div className="page-head">
        <h1 id="prefs-title">Notification preferences</h1>
        {isAdmin && editing === null && channels.length > 0 ? (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            Add preference
          </button>
        ) : null}
      </div>
      <p className="hint">
        Configured channels:{' '}
        {channels.length === 0 ? 'none — notifications reach the in-app inbox only' : channels.map((c) => `${c.id} (${c.type})`).join(', ')}. The inbox always
        gets every notification. A channel no preference mentions gets every type its budgets send.
      </p>
      {prefs.isError ? <FormError error={prefs.error} /> : null}
      {editing !== null ? (
        <PreferenceForm
          key={editing === 'new' ? 'new' : `${editing.subject.type}:${editing.subject.id}`}
          preference={editing === 'new' ? undefined : editing}
          channels={channels.map((c) => c.id)}
          onDone={() => setEditing(null)}
        />
      ) : null}
      {prefs.data && prefs.data.data.length === 0 ? <p className="card empty">No preferences yet.</p> : null}
      <ul className="prefs">
        {(prefs.data?.data ?? []).map((p) => (
          <li key={`${p.subject.type}:${p.subject.id}`} className="card">
            <div className="page-head">
              <h2>
                {p.subject.type} {p.subject.id}
              </h2>
              {isAdmin ? (
                <button type="button" onClick={() => setEditing(p)}>
                  Edit
                </button>
              ) : null}
            </div>
            <dl className="pref-kinds">
              {NOTIFICATION_TYPE_NAMES.map((type) => (
                <div key={type}>
                  <dt>{TYPE_LABELS[type]}</dt>
                  <dd>{p.types[type]?.length ? p.types[type]!.join(', ') : 'inbox only'}</dd>
                </div>
              ))}
            </dl>
            <p className="muted small">Updated {formatDateTime(p.updated_at)}</p>
          </li>
        ))}
      </ul>
    </section>
  )
}

function PreferenceForm({ preference, channels, onDone }: { preference: NotificationPreferenceView | undefined; channels: string[]; onDone: () => void }) {
  const client = useQueryClient()
  const [subjectType, setSubjectType] = useState<'role' | 'user'>(preference?.subject.type ?? 'role')
  const [subjectId, setSubjectId] = useState(preference?.subject.id ?? 'admin')
  const [chosen, setChosen] = useState<Record<NotificationTypeName, Set<string>>>(
    () => Object.fromEntries(NOTIFICATION_TYPE_NAMES.map((t) => [t, new Set(preference?.types[t] ?? [])])) as Record<NotificationTypeName, Set<string>>,
  )
  const toggle = (type: NotificationTypeName, channel: string) =>
    setChosen((current) => {
      const next = new Set(current[type])
      if (next.has(channel)) next.delete(channel)
      else next.add(channel)
      return { ...current, [type]: next }
    })
  const save = useMutation({
    mutationFn: () =>
      api<NotificationPreferenceView>('PUT', '/v1/notification-preferences', {
        subject: { type: subjectType, id: subjectId.trim() },
        types: Object.fromEntries(NOTIFICATION_TYPE_NAMES.filter((t) => chosen[t].size > 0).map((t) => [t, [...chosen[t]]])),
      }),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ['preferences'] })
      onDone()
    },
  })
  const error = save.error instanceof ApiError ? save.error : undefined
  const submit = (event: FormEvent) => {
    event.preventDefault()
    save.mutate()
  }
  return (
    <form className="card" onSubmit={submit} aria-labelledby="pref-form-title" noValidate>
      <h2 id="pref-form-title">{preference ? 'Edit preference' : 'New preference'}</h2>
      <div className="form-grid">
        <Field label="For" error={error?.issueAt('subject.type')}>
          {(p) => (
            <select {...p} value={subjectType} onChange={(e) => setSubjectType(e.target.value as 'role' | 'user')} disabled={preference !== undefined}>
              <option value="role">a role</option>
              <option value="user">a user</option>
            </select>
          )}
        </Field>
        <Field label={subjectType === 'role' ? 'Role' : 'User id'} error={error?.issueAt('subject.id') ?? error?.issueAt('subject')}>
          {(p) => <input {...p} value={subjectId} readOnly={preference !== undefined} onChange={(e) => setSubjectId(e.target.value)} />}
        </Field>
      </div>
      <div className="table-frame">
        <table>
          <caption className="visually-hidden">Channels per notification type</caption>
          <thead>
            <tr>
              <th scope="col">Notification</th>
              {channels.map((c) => (
                <th key={c} scope="col">
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {NOTIFICATION_TYPE_NAMES.map((type) => (
              <tr key={type}>
                <th scope="row">{TYPE_LABELS[type]}</th>
                {channels.map((c) => (
                  <td key={c}>
                    <input type="checkbox" aria-label={`${TYPE_LABELS[type]} to ${c}`} checked={chosen[type].has(c)} onChange={() => toggle(type, c)} />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {error ? <FormError error={error.issueAt('types') ? `${error.message} (${error.issueAt('types')})` : error} /> : null}
      <div className="buttons">
        <button type="submit" className="primary" disabled={save.isPending}>
          Save
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  )
}
