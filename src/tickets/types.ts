/**
 * A cost ticket records requests refused for money. Refusals of one scope, team and consumer join one
 * pending ticket (a runaway loop is one incident): it counts them, with the first and last seen
 * and the largest estimate. An owner approves it — with a top-up, or as a one-off grant of the
 * largest estimate — or denies it; a wallet top-up also releases its held requests; unanswered, it
 * expires.
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
  /** The largest worst-case estimate among the refusals that joined. */
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
  /** Refusals that joined this ticket, the first included. */
  readonly refusedCount: number
  readonly lastSeenAtMs: number
  /** Refusals already announced (ticket.created, then ticket.digest). */
  readonly digestCount: number
}

/** What a refusal brings to `openOrJoin`. */
export type TicketOpening = Pick<CostTicket, 'orgId' | 'scope' | 'teamId' | 'requestId' | 'consumerName' | 'model' | 'estimateMicros' | 'reason'>

export type TicketResolution =
  | { readonly kind: 'approved' | 'denied'; readonly ticket: CostTicket }
  | { readonly kind: 'already_resolved'; readonly ticket: CostTicket }
  | { readonly kind: 'not_found' }

export interface TicketStore {
  /**
   * Joins the pending ticket of the same org, scope, team, consumer and reason (count + 1, last seen,
   * largest estimate), or opens `ticket` when there is none — atomically across processes.
   */
  openOrJoin(ticket: CostTicket): Promise<{ ticket: CostTicket; joined: boolean }>
  /**
   * Pending tickets that gained refusals since they were last announced and were not announced
   * within `quietMs`: each is claimed (digestCount := refusedCount) by exactly one caller.
   */
  claimDigests(nowMs: number, quietMs: number, limit: number): Promise<Array<{ ticket: CostTicket; newRefusals: number }>>
  get(id: string): Promise<CostTicket | undefined>
  list(orgId: string, filter: { status: TicketStatus | undefined; teamId: string | undefined; limit: number }): Promise<CostTicket[]>
  /** Moves a pending ticket to approved/denied; a ticket no longer pending is left as it is. */
  resolve(
    id: string,
    change: { status: 'approved' | 'denied'; atMs: number; by: string; grantMicros: Micros | undefined; note: string | undefined },
  ): Promise<TicketResolution>
  /** The tickets it expired. */
  expireOverdue(nowMs: number, limit: number): Promise<CostTicket[]>
}
