/**
 * A cost ticket records a request refused for money (SPEC §1, §4). An owner approves it — with a
 * top-up, or as a one-off grant of the request's estimate — or denies it; unanswered, it expires.
 */
import type { Micros } from '../money/index.js'

export type TicketStatus = 'pending' | 'approved' | 'denied' | 'expired'

export interface CostTicket {
  readonly id: string
  readonly orgId: string
  readonly scope: string
  readonly teamId: string | undefined
  readonly requestId: string
  readonly consumerName: string
  readonly model: string
  readonly estimateMicros: Micros
  readonly reason: 'insufficient_quota' | 'budget_cap_exceeded'
  readonly status: TicketStatus
  readonly createdAtMs: number
  readonly expiresAtMs: number
  readonly resolvedAtMs: number | undefined
  readonly resolvedBy: string | undefined
  /** Funds added to the scope's wallet on approval. */
  readonly grantMicros: Micros | undefined
  readonly note: string | undefined
}

export type TicketResolution =
  | { readonly kind: 'approved' | 'denied'; readonly ticket: CostTicket }
  | { readonly kind: 'already_resolved'; readonly ticket: CostTicket }
  | { readonly kind: 'not_found' }

export interface TicketStore {
  create(ticket: CostTicket): Promise<void>
  get(id: string): Promise<CostTicket | undefined>
  list(orgId: string, filter: { status: TicketStatus | undefined; teamId: string | undefined; limit: number }): Promise<CostTicket[]>
  /** Moves a pending ticket to approved/denied; a ticket no longer pending is left as it is. */
  resolve(
    id: string,
    change: { status: 'approved' | 'denied'; atMs: number; by: string; grantMicros: Micros | undefined; note: string | undefined },
  ): Promise<TicketResolution>
  expireOverdue(nowMs: number, limit: number): Promise<number>
}
