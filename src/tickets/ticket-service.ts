/**
 * Tickets and held requests. A held request waits on its ticket: in this process an approval
 * wakes it at once; an approval from another gateway process is seen by polling the store.
 */
import { EventEmitter } from 'node:events'
import { newId } from '../lib/ids.js'
import type { Clock } from '../lib/clock.js'
import type { Micros } from '../money/index.js'
import type { CostTicket, TicketResolution, TicketStore } from './types.js'

export interface TicketServiceOptions {
  readonly ticketTtlMs: number
  readonly holdPollIntervalMs: number
}

export const TICKET_DEFAULTS: TicketServiceOptions = { ticketTtlMs: 24 * 3_600_000, holdPollIntervalMs: 200 }

/** Told when a ticket opens and when an owner resolves it, so owners hear of it (SPEC §5 `ticket.*`). Never throws. */
export type TicketListener = (event: 'ticket.created' | 'ticket.resolved', ticket: CostTicket) => void

export class TicketService {
  private readonly resolved = new EventEmitter()
  /** Held requests waiting now: each entry ends its wait. */
  private readonly waiting = new Set<(outcome: 'timeout') => void>()
  private isClosing = false

  constructor(
    private readonly store: TicketStore,
    private readonly clock: Clock,
    private readonly options: TicketServiceOptions = TICKET_DEFAULTS,
    private readonly listener: TicketListener = () => {},
  ) {
    this.resolved.setMaxListeners(0)
  }

  async open(input: Omit<CostTicket, 'id' | 'status' | 'createdAtMs' | 'expiresAtMs' | 'resolvedAtMs' | 'resolvedBy' | 'grantMicros' | 'note'>): Promise<CostTicket> {
    const now = this.clock.nowMs()
    const ticket: CostTicket = {
      ...input,
      id: newId('ct', now),
      status: 'pending',
      createdAtMs: now,
      expiresAtMs: now + this.options.ticketTtlMs,
      resolvedAtMs: undefined,
      resolvedBy: undefined,
      grantMicros: undefined,
      note: undefined,
    }
    await this.store.create(ticket)
    this.listener('ticket.created', ticket)
    return ticket
  }

  async resolve(
    id: string,
    status: 'approved' | 'denied',
    by: string,
    grantMicros: Micros | undefined,
    note: string | undefined,
  ): Promise<TicketResolution> {
    const result = await this.store.resolve(id, { status, atMs: this.clock.nowMs(), by, grantMicros, note })
    if (result.kind === 'approved' || result.kind === 'denied') {
      this.resolved.emit(id, result.ticket)
      this.listener('ticket.resolved', result.ticket)
    }
    return result
  }

  /**
   * Waits until the ticket is approved or denied, or `timeoutMs` passes (then 'timeout').
   * Bounded: one timer and one poll loop per held request, both cleared on every exit.
   */
  async waitForDecision(ticketId: string, timeoutMs: number): Promise<'approved' | 'denied' | 'timeout'> {
    if (this.isClosing) return 'timeout'
    return new Promise((resolve) => {
      let done = false
      const finish = (outcome: 'approved' | 'denied' | 'timeout') => {
        if (done) return
        done = true
        clearTimeout(deadline)
        clearInterval(poll)
        this.resolved.off(ticketId, onResolved)
        this.waiting.delete(finish)
        resolve(outcome)
      }
      this.waiting.add(finish)
      const onResolved = (ticket: CostTicket) => {
        if (ticket.status === 'approved' || ticket.status === 'denied') finish(ticket.status)
      }
      const deadline = setTimeout(() => finish('timeout'), timeoutMs)
      const poll = setInterval(() => {
        void this.store.get(ticketId).then((ticket) => ticket && onResolved(ticket))
      }, this.options.holdPollIntervalMs)
      this.resolved.on(ticketId, onResolved)
    })
  }

  /**
   * Shutdown: every held request stops waiting now, as if its hold had timed out (the caller gets
   * the refusal; the ticket stays open for an owner), so closing the server does not wait out the
   * hold timeouts nor leave waits running against a closed store.
   */
  releaseHolds(): void {
    this.isClosing = true
    for (const finish of [...this.waiting]) finish('timeout')
  }

  get(id: string): Promise<CostTicket | undefined> {
    return this.store.get(id)
  }

  list(orgId: string, filter: Parameters<TicketStore['list']>[1]): Promise<CostTicket[]> {
    return this.store.list(orgId, filter)
  }

  expireOverdue(limit: number): Promise<number> {
    return this.store.expireOverdue(this.clock.nowMs(), limit)
  }
}
