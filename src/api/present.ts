/** Domain records → JSON for the admin API: USD numbers at the edge, exact micros beside them. */
import { toUsd, type Micros } from '../money/index.js'
import type { LedgerEntry, Reservation, Wallet } from '../ledger/index.js'
import type { CostTicket } from '../tickets/index.js'

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())
const usd = (m: Micros | undefined) => (m === undefined ? null : toUsd(m))

export function presentWallet(w: Wallet) {
  return {
    id: w.id,
    scope: `${w.scopeKind}:${w.scopeId}`,
    scope_kind: w.scopeKind,
    scope_id: w.scopeId,
    team_id: w.teamId ?? (w.scopeKind === 'team' ? w.scopeId : null),
    currency: w.currency,
    allocated_usd: usd(w.allocatedMicros),
    spent_usd: usd(w.spentMicros),
    reserved_usd: usd(w.reservedMicros),
    available_usd: usd(w.availableMicros),
    allocated_micros: w.allocatedMicros,
    spent_micros: w.spentMicros,
    reserved_micros: w.reservedMicros,
    available_micros: w.availableMicros,
    created_at: iso(w.createdAtMs),
  }
}

export function presentEntry(e: LedgerEntry) {
  return {
    id: e.id,
    kind: e.kind,
    amount_usd: usd(e.amountMicros),
    amount_micros: e.amountMicros,
    reservation_id: e.reservationId ?? null,
    description: e.description ?? null,
    at: iso(e.atMs),
  }
}

export function presentReservation(r: Reservation) {
  return {
    id: r.id,
    status: r.status,
    scope: r.scope ?? null,
    wallet_id: r.walletId ?? null,
    amount_usd: usd(r.amountMicros),
    amount_micros: r.amountMicros,
    settled_usd: usd(r.settledMicros),
    unbilled_usd: usd(r.unbilledMicros),
    created_at: iso(r.createdAtMs),
    expires_at: iso(r.expiresAtMs),
    resolved_at: iso(r.resolvedAtMs),
  }
}

export function presentTicket(t: CostTicket) {
  return {
    id: t.id,
    status: t.status,
    reason: t.reason,
    scope: t.scope,
    team_id: t.teamId ?? null,
    request_id: t.requestId,
    consumer: t.consumerName,
    model: t.model,
    estimate_usd: usd(t.estimateMicros),
    grant_usd: usd(t.grantMicros),
    note: t.note ?? null,
    resolved_by: t.resolvedBy ?? null,
    created_at: iso(t.createdAtMs),
    expires_at: iso(t.expiresAtMs),
    resolved_at: iso(t.resolvedAtMs),
    refused_count: t.refusedCount,
    first_seen_at: iso(t.createdAtMs),
    last_seen_at: iso(t.lastSeenAtMs),
  }
}
