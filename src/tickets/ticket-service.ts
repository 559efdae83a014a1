/**
 * Tickets and held requests. Refusals of one scope, team and consumer join one pending ticket, so a
 * runaway loop opens one ticket and one `ticket.created` notice; what joins it later goes out as
 * a `ticket.digest` at most once per quiet interval. A held request waits on its ticket: in this
 * process an approval wakes it at once; an approval from another process is seen by polling.
 */
import { EventEmitter } from 'node:events'
import { newId } from '../lib/ids.js'
import type { Clock } from '../lib/clock.js'
import type { Micros } from '../money/index.js'
import type { CostTicket, TicketOpening, TicketResolution, TicketStore } from './types.js'

export interface TicketServiceOptions {
  readonly ticketTtlMs: number
  readonly holdPollIntervalMs: number
  /** A ticket's later refusals are announced at most this often (`ticket.digest`). */
  readonly digestQuietMs: number
}

export const TICKET_DEFAULTS: TicketServiceOptions = { ticketTtlMs: 24 * 3_600_000, holdPollIntervalMs: 200, digestQuietMs: 15 * 60_000 }

export type TicketEvent = 'ticket.created' | 'ticket.digest' | 'ticket.resolved'

/** Told when a ticket opens, gains refusals (digest), and is resolved or expires. Never throws. */
export type TicketListener = (event: TicketEvent, ticket: CostTicket, detail?: { newRefusals: number }) => void

/** Who resolves a ticket that a wallet top-up made moot. */
export const TOP_UP_RESOLVER = 'system:wallet-topped-up'

export class TicketService {
  private readonly resolved = new EventEmitter()

  constructor(
    private readonly store: TicketStore,
    private readonly clock: Clock,
    private readonly options: TicketServiceOptions = TICKET_DEFAULTS,
    private readonly listener: TicketListener = () => {},
  ) {
    this.resolved.setMaxListeners(0)
  }

  /** Opens a ticket for this refusal, or joins the pending one of the same scope, team and consumer. */
  async openOrJoin(opening: TicketOpening): Promise<CostTicket> {
    const now = this.clock.nowMs()
    const fresh: CostTicket = {
      ...opening,
      id: newId('ct', now),
      status: 'pending',
      createdAtMs: now,
      expiresAtMs: now + this.options.ticketTtlMs,
      resolvedAtMs: undefined,
      resolvedBy: undefined,
      grantMicros: undefined,
      note: undefined,
      refusedCount: 1,
      lastSeenAtMs: now,
      digestCount: 1,
    }
    const { ticket, joined } = await this.store.openOrJoin(fresh)
    if (!joined) this.listener('ticket.created', ticket)
    return ticket
  }

  async resolve(id: string, status: 'approved' | 'denied', by: string, grantMicros: Micros | undefined, note: string | undefined): Promise<TicketResolution> {
    const result = await this.store.resolve(id, { status, atMs: this.clock.nowMs(), by, grantMicros, note })
    if (result.kind === 'approved' || result.kind === 'denied') {
      this.resolved.emit(id, result.ticket)
      this.listener('ticket.resolved', result.ticket)
    }
    return result
  }

  /** A held request got through because its wallet was topped up: the ticket is closed as approved, with no grant. */
  async releaseByTopUp(id: string): Promise<void> {
    await this.resolve(id, 'approved', TOP_UP_RESOLVER, undefined, 'released by a wallet top-up')
  }

  /**
   * Waits until the ticket is approved or denied, `timeoutMs` passes ('timeout') or `signal` aborts
   * ('aborted'). Bounded: one timer and one poll loop per wait, both cleared on every exit.
   */
  async waitForDecision(ticketId: string, timeoutMs: number, signal?: AbortSignal): Promise<'approved' | 'denied' | 'timeout' | 'aborted'> {
    if (signal?.aborted) return 'aborted'
    return new Promise((resolve) => {
      let done = false
      const finish = (outcome: 'approved' | 'denied' | 'timeout' | 'aborted') => {
        if (done) return
        done = true
        clearTimeout(deadline)
        clearInterval(poll)
        this.resolved.off(ticketId, onResolved)
        signal?.removeEventListener('abort', onAbort)
        resolve(outcome)
      }
      const onResolved = (ticket: CostTicket) => {
        if (ticket.status === 'approved' || ticket.status === 'denied') finish(ticket.status)
      }
      const onAbort = () => finish('aborted')
      const deadline = setTimeout(() => finish('timeout'), timeoutMs)
      const poll = setInterval(() => {
        void this.store.get(ticketId).then((ticket) => ticket && onResolved(ticket))
      }, this.options.holdPollIntervalMs)
      this.resolved.on(ticketId, onResolved)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  get(id: string): Promise<CostTicket | undefined> {
    return this.store.get(id)
  }

  list(orgId: string, filter: Parameters<TicketStore['list']>[1]): Promise<CostTicket[]> {
    return this.store.list(orgId, filter)
  }

  /** Expires overdue tickets (each announced as `ticket.resolved` with status expired); returns how many. */
  async expireOverdue(limit: number): Promise<number> {
    const expired = await this.store.expireOverdue(this.clock.nowMs(), limit)
    for (const ticket of expired) this.listener('ticket.resolved', ticket)
    return expired.length
  }

  /** Announces the refusals that joined pending tickets since their last notice; returns how many tickets. */
  async sendDigests(limit: number): Promise<number> {
    const due = await this.store.claimDigests(this.clock.nowMs(), this.options.digestQuietMs, limit)
    for (const { ticket, newRefusals } of due) this.listener('ticket.digest', ticket, { newRefusals })
    return due.length
  }
}
