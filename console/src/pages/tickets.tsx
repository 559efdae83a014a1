/**
 * Cost tickets (/cost-tickets): requests refused for money. An owner approves — with a top-up of
 * the scope's wallet, or by default a grant of the request's estimate — or denies. A request that
 * holds is shown waiting while its caller waits, and released and completed live once approved
 * (the list is polled).
 */
import { useState } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import type { ListOf, TicketStatus, TicketView } from '../../../src/api/contract/wire'
import { ApiError, api, get, query } from '../api'
import { Field, FormError } from '../components/field'
import { formatDateTime, formatRelative, formatUsd } from '../format'
import { canWrite, useSession } from '../session'

/** How often the list is re-read, so a held request's release shows without a reload. */
const POLL_MS = 2_000
const FILTERS: Array<{ value: '' | TicketStatus; label: string }> = [
  { value: 'pending', label: 'Open' },
  { value: 'approved', label: 'Approved' },
  { value: 'denied', label: 'Denied' },
  { value: 'expired', label: 'Expired' },
  { value: '', label: 'All' },
]

export function TicketsPage() {
  const [status, setStatus] = useState<'' | TicketStatus>('pending')
  const tickets = useQuery({
    queryKey: ['tickets', status],
    queryFn: () => get<ListOf<TicketView>>(`/v1/cost-tickets${query({ status })}`),
    refetchInterval: POLL_MS,
  })
  return (
    <section aria-labelledby="tickets-title">
      <h1 id="tickets-title">Cost tickets</h1>
      <p className="hint">
        A call no wallet in its cascade can pay is refused with a ticket. Consumers set to hold keep the request open until an owner decides or the hold times
        out.
      </p>
      {/* biome-ignore lint/a11y/useSemanticElements: a row of toggle buttons, not a form section; a fieldset would bring its own layout */}
      <div className="segmented" role="group" aria-label="Show tickets">
        {FILTERS.map((f) => (
          <button key={f.label} type="button" aria-pressed={status === f.value} onClick={() => setStatus(f.value)}>
            {f.label}
          </button>
        ))}
      </div>
      {tickets.isError ? <FormError error={tickets.error} /> : null}
      {tickets.data && tickets.data.data.length === 0 ? (
        <p className="card empty">No {status === '' ? '' : FILTERS.find((f) => f.value === status)?.label.toLowerCase()} tickets.</p>
      ) : null}
      <ul className="tickets">
        {(tickets.data?.data ?? []).map((ticket) => (
          <TicketCard key={ticket.id} ticket={ticket} />
        ))}
      </ul>
    </section>
  )
}

const STATE_TEXT: Record<NonNullable<TicketView['request']>['state'], string> = {
  waiting: 'Held request waiting for a decision',
  released: 'Released — the request is running',
  completed: 'Request completed',
  refused: 'Request refused',
  failed: 'Request failed upstream',
}

function TicketCard({ ticket }: { ticket: TicketView }) {
  const session = useSession()
  const client = useQueryClient()
  const [amount, setAmount] = useState('')
  const [note, setNote] = useState('')
  const resolve = useMutation({
    mutationFn: (decision: 'approve' | 'deny') =>
      api<TicketView>('POST', `/v1/cost-tickets/${ticket.id}/${decision}`, {
        ...(decision === 'approve' && amount.trim() ? { amount: amount.trim() } : {}),
        ...(note.trim() ? { note: note.trim() } : {}),
      }),
    onSettled: async () => {
      await client.invalidateQueries({ queryKey: ['tickets'] })
      await client.invalidateQueries({ queryKey: ['wallets'] })
    },
  })
  const error = resolve.error instanceof ApiError ? resolve.error : undefined
  const request = ticket.request
  const mayResolve = ticket.status === 'pending' && canWrite(session, ticket.team_id)
  // Approving funds the ticket's wallet: a team_admin may fund its own team's only, not the org's.
  const mayApprove = mayResolve && canWrite(session, fundedTeamOf(ticket.scope, ticket.team_id))
  return (
    <li className={`card ticket ticket-${ticket.status}`} data-testid={`ticket-${ticket.id}`} aria-labelledby={`${ticket.id}-title`}>
      <div className="ticket-head">
        <h2 id={`${ticket.id}-title`}>
          {ticket.scope} · {formatUsd(ticket.estimate_usd)}
        </h2>
        <span className={`tag tag-${ticket.status}`}>{ticket.status}</span>
      </div>
      <dl className="ticket-facts">
        <div>
          <dt>Who</dt>
          <dd>{ticket.consumer}</dd>
        </div>
        <div>
          <dt>Model</dt>
          <dd>{ticket.model}</dd>
        </div>
        <div>
          <dt>Estimate</dt>
          <dd>{formatUsd(ticket.estimate_usd)}</dd>
        </div>
        <div>
          <dt>Reason</dt>
          <dd>{ticket.reason === 'insufficient_quota' ? 'no wallet could cover it' : 'budget cap reached'}</dd>
        </div>
        <div>
          <dt>Opened</dt>
          <dd>{formatDateTime(ticket.created_at)}</dd>
        </div>
        <div>
          <dt>{ticket.status === 'pending' ? 'Expires' : 'Resolved'}</dt>
          <dd>{ticket.status === 'pending' ? formatRelative(ticket.expires_at, Date.now()) : formatDateTime(ticket.resolved_at)}</dd>
        </div>
        {ticket.grant_usd !== null ? (
          <div>
            <dt>Granted</dt>
            <dd>{formatUsd(ticket.grant_usd)}</dd>
          </div>
        ) : null}
      </dl>
      {request ? (
        <p className={`request request-${request.state}`} data-testid="request-state" role="status">
          <span className="dot" aria-hidden="true" />
          {STATE_TEXT[request.state]}
          {request.http_status !== null ? ` · HTTP ${request.http_status}` : ''}
          {request.cost_usd !== null && request.state === 'completed' ? ` · cost ${formatUsd(request.cost_usd)}` : ''}
          <code className="request-id">{ticket.request_id}</code>
        </p>
      ) : null}
      {mayResolve ? (
        <form className="ticket-actions" onSubmit={(e) => e.preventDefault()}>
          {mayApprove ? (
            <Field label="Top-up (USD, optional)" error={error?.issueAt('amount')} hint={`Empty: grant the estimate, ${formatUsd(ticket.estimate_usd)}.`}>
              {(p) => (
                <input {...p} inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} placeholder={String(ticket.estimate_usd ?? '')} />
              )}
            </Field>
          ) : (
            <p className="hint">Approving funds {ticket.scope}, which an org admin funds: you may deny it.</p>
          )}
          <Field label="Note (optional)" error={error?.issueAt('note')}>
            {(p) => <input {...p} value={note} onChange={(e) => setNote(e.target.value)} />}
          </Field>
          <div className="buttons">
            {mayApprove ? (
              <button type="button" className="primary" disabled={resolve.isPending} onClick={() => resolve.mutate('approve')}>
                Approve
              </button>
            ) : null}
            <button type="button" className="danger" disabled={resolve.isPending} onClick={() => resolve.mutate('deny')}>
              Deny
            </button>
          </div>
        </form>
      ) : null}
      {error && error.issues.length === 0 ? <FormError error={error} /> : null}
    </li>
  )
}

/** The team whose wallet an approval funds: a team wallet's team, the org's none; a user wallet's is checked by the API. */
function fundedTeamOf(scope: string, ticketTeam: string | null): string | null {
  if (scope.startsWith('team:')) return scope.slice('team:'.length)
  if (scope.startsWith('user:')) return ticketTeam
  return null
}
