/**
 * Cost tickets: list (with what became of each ticket's first request: held, released,
 * completed), approve (a top-up, or a one-off grant of the largest refused estimate), deny. The
 * ticket is resolved first, atomically, so two approvers cannot both add funds; held requests of
 * the org are woken at once.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { usdAmount } from './contract/money.js'
import { canRead, principalOf, requireWrite, teamFilter } from './principal.js'
import { AMOUNT_MICROS_MAX } from '../money/index.js'
import { ConflictError, ForbiddenError, InvalidRequestError, NotFoundError } from './errors.js'
import { presentTicket } from './present.js'
import { teamOfWallet, type WalletRef } from '../ledger/index.js'
import type { CostTicket } from '../tickets/index.js'
import type { Principal } from '../auth/index.js'
import type { RequestOutcome } from '../usage/index.js'
import { toUsd } from '../money/index.js'
import type { TicketRequestView } from './contract/wire.js'
import { doc } from './openapi.js'
import { printable } from '../lib/text.js'

/** What the approver or denier says; shown with the ticket and in its notifications. */
const note = printable(z.string().max(1000), 'free')
/** How much earlier than its ticket a refused request's event may be stamped (another process's clock). */
const TICKET_EVENTS_SLACK_MS = 10 * 60_000
const ApproveBody = z.strictObject({ amount: usdAmount.optional(), note: note.optional() })
const DenyBody = z.strictObject({ note: note.optional() })
const STATUSES = ['pending', 'approved', 'denied', 'expired'] as const
const TICKETS_PAGE_MAX = 500
const TicketsQuery = z.object({
  status: z.enum(STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(TICKETS_PAGE_MAX).default(TICKETS_PAGE_MAX),
})

export async function ticketRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.get(
    '/v1/cost-tickets',
    doc({
      summary: 'List cost tickets',
      auth: 'admin',
      query: TicketsQuery,
      responses: {
        200: '`data`: tickets, newest first, each with `request`: what became of its first refused request (waiting, released, completed, refused, failed).',
      },
    }),
    async (request) => {
      const principal = principalOf(request)
      const q = parseBody(TicketsQuery, request.query, 'query')
      await deps.tickets.expireOverdue(500)
      const tickets = await deps.tickets.list(principal.orgId, { status: q.status, teamId: teamFilter(principal), limit: q.limit })
      // The held request's own event is written when it finishes: flush so a finished one shows.
      await deps.usage.flush()
      const outcomes = await deps.stores.usage.requestOutcomes(
        principal.orgId,
        tickets.map((t) => t.requestId),
        // A ticket's request was refused when the ticket opened; slack for other processes' clocks.
        Math.min(...tickets.map((t) => t.createdAtMs)) - TICKET_EVENTS_SLACK_MS,
      )
      return { data: tickets.map((t) => ({ ...presentTicket(t), request: requestOutcomeView(t, outcomes.get(t.requestId)) })) }
    },
  )

  app.post<{ Params: { id: string } }>(
    '/v1/cost-tickets/:id/approve',
    doc({
      summary: 'Approve a refused request: grant its estimate or top the wallet up',
      auth: 'admin',
      body: ApproveBody,
      responses: { 200: 'The approved ticket.' },
      errors: [404, 409],
    }),
    async (request) => {
      const principal = principalOf(request)
      const body = parseBody(ApproveBody, request.body)
      const ticket = await ticketFor(deps, principal, request.params.id)
      requireWrite(principal, ticket.teamId)
      const grantMicros = body.amount ?? ticket.estimateMicros
      const wallet = walletOfScope(ticket.scope)
      const current = await deps.stores.ledger.findWallet(ticket.orgId, wallet)
      // Approving funds the ticket's wallet, which need not be the ticket's team's: a team with no
      // wallet of its own is refused against the org's. Funding it takes what allocating it takes.
      const fundedTeam = teamOfWallet(current ?? { ...wallet, teamId: undefined })
      if (principal.role !== 'admin' && fundedTeam !== principal.teamId) {
        throw new ForbiddenError(`approving this ticket funds ${ticket.scope}, which is not team ${principal.teamId}'s: it needs an admin`)
      }
      if ((current?.allocatedMicros ?? 0) + grantMicros > AMOUNT_MICROS_MAX) {
        throw new InvalidRequestError(`amount: the wallet would hold more than $${AMOUNT_MICROS_MAX / 1_000_000}`, [
          { path: 'amount', message: 'over the wallet limit' },
        ])
      }
      const result = await deps.tickets.resolve(ticket.id, 'approved', principal.tokenId, grantMicros, body.note)
      if (result.kind === 'not_found') throw new NotFoundError('cost ticket', ticket.id)
      if (result.kind === 'already_resolved') {
        throw new ConflictError(`cost ticket ${ticket.id} is already ${result.ticket.status}`, { status: result.ticket.status })
      }
      if (grantMicros > 0) {
        await deps.stores.ledger.allocate({
          orgId: ticket.orgId,
          wallet,
          amountMicros: grantMicros,
          description: `cost ticket ${ticket.id} approved${body.note ? `: ${body.note}` : ''}`,
          atMs: deps.clock.nowMs(),
        })
        deps.funds.added(ticket.orgId)
      }
      return presentTicket(result.ticket)
    },
  )

  app.post<{ Params: { id: string } }>(
    '/v1/cost-tickets/:id/deny',
    doc({ summary: 'Deny a cost ticket', auth: 'admin', body: DenyBody, responses: { 200: 'The denied ticket.' }, errors: [404, 409] }),
    async (request) => {
      const principal = principalOf(request)
      const body = parseBody(DenyBody, request.body)
      const ticket = await ticketFor(deps, principal, request.params.id)
      requireWrite(principal, ticket.teamId)
      const result = await deps.tickets.resolve(ticket.id, 'denied', principal.tokenId, undefined, body.note)
      if (result.kind === 'not_found') throw new NotFoundError('cost ticket', ticket.id)
      if (result.kind === 'already_resolved') {
        throw new ConflictError(`cost ticket ${ticket.id} is already ${result.ticket.status}`, { status: result.ticket.status })
      }
      return presentTicket(result.ticket)
    },
  )
}

/**
 * What became of the ticket's first refused request. A request that holds writes its usage event
 * only when it finishes, so a pending ticket without an event is a request still waiting on the
 * decision, and an approved one without an event has been released and is running.
 */
export function requestOutcomeView(ticket: CostTicket, outcome: RequestOutcome | undefined): TicketRequestView {
  if (outcome === undefined) {
    const state = ticket.status === 'pending' ? 'waiting' : ticket.status === 'approved' ? 'released' : 'refused'
    return { state, http_status: null, cost_usd: null, finished_at: null }
  }
  const state = outcome.status === 'ok' ? 'completed' : outcome.status === 'refused' ? 'refused' : 'failed'
  return { state, http_status: outcome.httpStatus, cost_usd: toUsd(outcome.costMicros), finished_at: new Date(outcome.atMs).toISOString() }
}

async function ticketFor(deps: AdminDeps, principal: Principal, id: string): Promise<CostTicket> {
  const ticket = await deps.tickets.get(id)
  if (!ticket || ticket.orgId !== principal.orgId || !canRead(principal, ticket.teamId)) throw new NotFoundError('cost ticket', id)
  return ticket
}

function walletOfScope(scope: string): WalletRef {
  const [kind, ...rest] = scope.split(':')
  return { scopeKind: kind as WalletRef['scopeKind'], scopeId: rest.join(':') }
}
