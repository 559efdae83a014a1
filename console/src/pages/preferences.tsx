/**
 * Notification preferences (/settings/notification-preferences): for a role or a user, which
 * channels each kind of notification goes to. A kind left empty falls back to the budget's own
 * channels. Org admins change them; everyone else reads.
 */
import { useState, type FormEvent } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { NOTIFICATION_KIND_NAMES, type NotificationKindName, type NotificationPreferenceView, type NotificationPreferencesList } from '../../../src/api/contract/wire'
import { ApiError, api, get } from '../api'
import { Field, FormError } from '../components/field'
import { formatDateTime } from '../format'
import { useSession } from '../session'

const KIND_LABELS: Record<NotificationKindName, string> = {
  threshold: 'Budget thresholds',
  forecast: 'Forecast: will run out',
  spike: 'Spend spikes',
  ticket: 'Cost tickets',
  blocked: 'Blocked calls and dry wallets',
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
        {isAdmin && editing === null ? (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            Add preference
          </button>
        ) : null}
      </div>
      <p className="hint">
        Configured channels: {channels.length === 0 ? 'none (the in-app inbox only)' : channels.map((c) => `${c.id} (${c.type})`).join(', ')}. Every notification also lands in the inbox.
      </p>
      {prefs.isError ? <FormError error={prefs.error} /> : null}
      {editing !== null ? <PreferenceForm key={editing === 'new' ? 'new' : `${editing.subject.type}:${editing.subject.id}`} preference={editing === 'new' ? undefined : editing} onDone={() => setEditing(null)} /> : null}
      {prefs.data && prefs.data.data.length === 0 ? <p className="card empty">No preferences: every notification goes to the channels its budget names.</p> : null}
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
              {NOTIFICATION_KIND_NAMES.map((kind) => (
                <div key={kind}>
                  <dt>{KIND_LABELS[kind]}</dt>
                  <dd>{p.kinds[kind] === undefined ? 'budget defaults' : p.kinds[kind]!.length === 0 ? 'off' : p.kinds[kind]!.join(', ')}</dd>
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

function PreferenceForm({ preference, onDone }: { preference: NotificationPreferenceView | undefined; onDone: () => void }) {
  const client = useQueryClient()
  const [subjectType, setSubjectType] = useState<'role' | 'user'>(preference?.subject.type ?? 'role')
  const [subjectId, setSubjectId] = useState(preference?.subject.id ?? 'admin')
  const [kinds, setKinds] = useState<Record<NotificationKindName, string>>(() =>
    Object.fromEntries(NOTIFICATION_KIND_NAMES.map((k) => [k, preference?.kinds[k]?.join(', ') ?? ''])) as Record<NotificationKindName, string>,
  )
  const [defaults, setDefaults] = useState<Record<NotificationKindName, boolean>>(() =>
    Object.fromEntries(NOTIFICATION_KIND_NAMES.map((k) => [k, preference ? preference.kinds[k] === undefined : true])) as Record<NotificationKindName, boolean>,
  )
  const save = useMutation({
    mutationFn: () =>
      api<NotificationPreferenceView>('PUT', '/v1/notification-preferences', {
        subject: { type: subjectType, id: subjectId.trim() },
        kinds: Object.fromEntries(
          NOTIFICATION_KIND_NAMES.filter((k) => !defaults[k]).map((k) => [
            k,
            kinds[k]
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean),
          ]),
        ),
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
      <fieldset>
        <legend>Channels per kind</legend>
        {NOTIFICATION_KIND_NAMES.map((kind) => (
          <div className="pref-row" key={kind}>
            <label className="inline">
              <input type="checkbox" checked={defaults[kind]} onChange={(e) => setDefaults((d) => ({ ...d, [kind]: e.target.checked }))} /> {KIND_LABELS[kind]}: budget defaults
            </label>
            {!defaults[kind] ? (
              <Field label={`${KIND_LABELS[kind]} channels`} error={error?.issueAt(`kinds.${kind}`)} hint="Comma-separated channel ids; empty turns this kind off.">
                {(p) => <input {...p} value={kinds[kind]} onChange={(e) => setKinds((k) => ({ ...k, [kind]: e.target.value }))} />}
              </Field>
            ) : null}
          </div>
        ))}
        {error?.issueAt('kinds') && !NOTIFICATION_KIND_NAMES.some((k) => error.issueAt(`kinds.${k}`)) ? (
          <small className="error" role="alert">
            {error.message} ({error.issueAt('kinds')})
          </small>
        ) : null}
      </fieldset>
      {error && error.issues.length === 0 ? <FormError error={error} /> : null}
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
