/** Notifications (/notifications): the in-app inbox — budget thresholds, forecasts, spikes, blocks, escalations, tickets — with mark-as-read and acknowledge (which stops an escalation). */
import { useState } from 'react'
import { Link } from 'react-router'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import type { ListOf, NotificationView } from '../../../src/api/contract/wire'
import { api, get, query } from '../api'
import { FormError } from '../components/field'
import { formatDateTime, formatPercent, formatUsd } from '../format'
import { UNREAD_COUNT_MAX, useUnreadCount } from '../app'
import { useSession } from '../session'

const PAGE_SIZE = 100

export function NotificationsPage() {
  const [unreadOnly, setUnreadOnly] = useState(false)
  const unread = useUnreadCount()
  const inbox = useQuery({
    queryKey: ['notifications', 'list', unreadOnly],
    queryFn: () => get<ListOf<NotificationView>>(`/v1/notifications${query({ unread: unreadOnly ? 'true' : undefined, limit: PAGE_SIZE })}`),
    refetchInterval: 15_000,
  })
  const count = unread.data ?? 0
  return (
    <section aria-labelledby="notifications-title">
      <div className="page-head">
        <h1 id="notifications-title">Notifications</h1>
        <span className="muted" data-testid="unread-summary">
          {count === 0 ? 'All read' : `${count >= UNREAD_COUNT_MAX ? `${UNREAD_COUNT_MAX}+` : count} unread`}
        </span>
      </div>
      <p className="hint">
        Who gets which kind on which channel: <Link to="/settings/notification-preferences">notification preferences</Link>.
      </p>
      {/* biome-ignore lint/a11y/useSemanticElements: a row of toggle buttons, not a form section; a fieldset would bring its own layout */}
      <div className="segmented" role="group" aria-label="Show notifications">
        <button type="button" aria-pressed={!unreadOnly} onClick={() => setUnreadOnly(false)}>
          All
        </button>
        <button type="button" aria-pressed={unreadOnly} onClick={() => setUnreadOnly(true)}>
          Unread
        </button>
      </div>
      {inbox.isError ? <FormError error={inbox.error} /> : null}
      {inbox.data && inbox.data.data.length === 0 ? <p className="card empty">Nothing here.</p> : null}
      <ul className="inbox">
        {(inbox.data?.data ?? []).map((n) => (
          <NotificationItem key={n.id} notification={n} />
        ))}
      </ul>
    </section>
  )
}

function NotificationItem({ notification }: { notification: NotificationView }) {
  const client = useQueryClient()
  // Marking read and acknowledging are writes: a viewer only reads (the API refuses it both).
  const mayWrite = useSession().role !== 'viewer'
  const markRead = useMutation({
    mutationFn: () => api<{ id: string; read: boolean }>('POST', `/v1/notifications/${notification.id}/read`),
    onSuccess: () => client.invalidateQueries({ queryKey: ['notifications'] }),
  })
  const acknowledge = useMutation({
    mutationFn: () => api<NotificationView>('POST', `/v1/notifications/${notification.id}/ack`),
    onSuccess: () => client.invalidateQueries({ queryKey: ['notifications'] }),
  })
  const isUnread = notification.read_at === null
  const d = notification.data
  // At or past its amount the notice's exhaustion time is the moment it was written, not a forecast.
  const spentInFull = typeof d['spend_usd'] === 'number' && typeof d['amount_usd'] === 'number' && d['spend_usd'] >= d['amount_usd']
  const facts = [
    typeof d['spend_usd'] === 'number' && typeof d['amount_usd'] === 'number' ? `${formatUsd(d['spend_usd'])} of ${formatUsd(d['amount_usd'])}` : null,
    typeof d['percent'] === 'number' ? formatPercent(d['percent']) : null,
    spentInFull ? 'spent in full' : typeof d['forecast_exhaustion_at'] === 'string' ? `runs out ${formatDateTime(d['forecast_exhaustion_at'])}` : null,
    typeof d['last_hour_spend_usd'] === 'number' ? `last hour ${formatUsd(d['last_hour_spend_usd'])}` : null,
    typeof d['estimate_usd'] === 'number' ? `estimate ${formatUsd(d['estimate_usd'])}` : null,
    d['decision'] === 'would_block' ? 'shadow: would have blocked' : null,
    typeof d['owner'] === 'string' ? `owner ${d['owner']}` : null,
    typeof d['forecast_note'] === 'string' ? d['forecast_note'] : null,
  ].filter((f): f is string => f !== null)
  return (
    <li className={isUnread ? 'card notification unread' : 'card notification'} data-testid={`notification-${notification.id}`}>
      <div className="notification-head">
        <span className={`tag tag-${notification.type.split('.')[1] ?? 'info'}`}>{notification.type}</span>
        <time dateTime={notification.created_at}>{formatDateTime(notification.created_at)}</time>
      </div>
      <p className="notification-title">
        {isUnread ? <span className="visually-hidden">Unread: </span> : null}
        {notification.title}
      </p>
      {facts.length > 0 ? <p className="muted">{facts.join(' · ')}</p> : null}
      <div className="notification-action">
        {!isUnread ? (
          <span className="muted small">Read {formatDateTime(notification.read_at)}</span>
        ) : mayWrite ? (
          <button type="button" onClick={() => markRead.mutate()} disabled={markRead.isPending} aria-label={`Mark read: ${notification.title}`}>
            Mark read
          </button>
        ) : (
          <span className="muted small">Unread</span>
        )}
        <Acknowledgement notification={notification} pending={acknowledge.isPending} onAcknowledge={mayWrite ? () => acknowledge.mutate() : undefined} />
      </div>
      {markRead.isError ? <FormError error={markRead.error} /> : null}
      {acknowledge.isError ? <FormError error={acknowledge.error} /> : null}
    </li>
  )
}

/**
 * A notice that escalates shows when, and an Acknowledge button until someone owns it; after
 * that, who acknowledged when (or that it already escalated).
 */
function Acknowledgement({
  notification,
  pending,
  onAcknowledge,
}: {
  notification: NotificationView
  pending: boolean
  /** Undefined for a reader who may not acknowledge: the escalation is shown without the button. */
  onAcknowledge: (() => void) | undefined
}) {
  if (notification.acknowledged_at !== null) {
    return <span className="muted small">Acknowledged {formatDateTime(notification.acknowledged_at)}</span>
  }
  if (notification.escalate_at === null) return null
  return (
    <>
      <span className="muted small">
        {notification.escalated_at !== null
          ? `Escalated ${formatDateTime(notification.escalated_at)}`
          : `Escalates ${formatDateTime(notification.escalate_at)} unless acknowledged`}
      </span>
      {onAcknowledge ? (
        <button type="button" onClick={onAcknowledge} disabled={pending} aria-label={`Acknowledge: ${notification.title}`}>
          Acknowledge
        </button>
      ) : null}
    </>
  )
}
