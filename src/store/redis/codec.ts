/** Conversions between Redis script replies, domain values and journal events. */
import { newId } from '../../lib/ids.js'
import { micros } from '../../money/index.js'
import type { BudgetCounterRef, Reservation, ReservationStatus, Wallet, WalletRef } from '../../ledger/types.js'
import type { JournalEvent } from '../postgres/journal.js'
import { spentAtAllocationOf } from '../rows/ledger.js'

/** A flat HGETALL reply → record. */
export function hashOf(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!Array.isArray(flat)) return out
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1])
  return out
}

export function reservationOfHash(h: Record<string, string>): Reservation {
  const settled = h.settled ?? ''
  const resolved = h.resolved ?? ''
  return {
    id: h.id ?? '',
    orgId: h.org ?? '',
    walletId: h.wallet ? h.wallet : undefined,
    scope: h.scope ? h.scope : undefined,
    amountMicros: micros(Number(h.amount ?? 0)),
    status: (h.status ?? 'pending') as ReservationStatus,
    settledMicros: settled === '' ? undefined : micros(Number(settled)),
    unbilledMicros: micros(Number(h.unbilled ?? 0)),
    budgets: JSON.parse(h.budgets ?? '[]') as BudgetCounterRef[],
    requestId: h.req ? h.req : undefined,
    createdAtMs: Number(h.created ?? 0),
    expiresAtMs: Number(h.expires ?? 0),
    resolvedAtMs: resolved === '' ? undefined : Number(resolved),
    context: h.ctx ? h.ctx : undefined,
  }
}

/** HMGET id, allocated, reserved, spent, created, team, aspent, atotal of one wallet key → Wallet (undefined if absent). */
export function walletOfFields(orgId: string, ref: WalletRef, fields: unknown): Wallet | undefined {
  if (!Array.isArray(fields) || fields[0] === null || fields[0] === undefined) return undefined
  const team = fields[5] === null || fields[5] === undefined || fields[5] === '' ? undefined : String(fields[5])
  const optional = (f: unknown) => (f === null || f === undefined || f === '' ? null : Number(f))
  const [id, allocated, reserved, spent, created] = fields.slice(0, 5).map((f) => (f === null ? '0' : String(f)))
  const a = Number(allocated)
  const r = Number(reserved)
  const s = Number(spent)
  return {
    id: id!,
    orgId,
    scopeKind: ref.scopeKind,
    scopeId: ref.scopeId,
    teamId: team,
    currency: 'USD',
    allocatedMicros: micros(a),
    reservedMicros: micros(r),
    spentMicros: micros(s),
    availableMicros: micros(a - r - s),
    createdAtMs: Number(created),
    spentAtAllocationMicros: spentAtAllocationOf(a, optional(fields[6]), optional(fields[7])),
  }
}

export const ENTRY_KIND = { settled: 'settlement', voided: 'void', expired: 'expiry' } as const

interface JournalReservation {
  readonly emergency?: boolean
  readonly cascade?: readonly WalletRef[]
  /** The ledger entry ids the Redis journal used for the same move, so both apply once. */
  readonly entryId?: string
  readonly entryId2?: string
}

function reservationFields(r: Reservation, extra: JournalReservation) {
  return {
    id: r.id,
    orgId: r.orgId,
    walletId: r.walletId ?? null,
    scope: r.scope ?? null,
    amount: r.amountMicros,
    budgets: r.budgets,
    requestId: r.requestId ?? null,
    createdAt: r.createdAtMs,
    expiresAt: r.expiresAtMs,
    emergency: extra.emergency ?? false,
    cascade: extra.cascade ?? null,
    context: r.context ?? null,
  }
}

export function reserveEvent(r: Reservation, extra: JournalReservation = {}): JournalEvent {
  return { kind: 'reserve', entryId: extra.entryId ?? newId('led', r.createdAtMs), r: reservationFields(r, extra) }
}

export function resolveEvent(r: Reservation, wantedMicros: number, extra: JournalReservation = {}): JournalEvent {
  const status = r.status as Exclude<ReservationStatus, 'pending'>
  return {
    kind: 'resolve',
    entryId: extra.entryId ?? newId('led', r.resolvedAtMs ?? r.createdAtMs),
    entryId2: extra.entryId2 ?? newId('led', r.createdAtMs),
    entryKind: ENTRY_KIND[status],
    wanted: wantedMicros,
    r: {
      ...reservationFields(r, extra),
      status,
      settled: r.settledMicros ?? 0,
      unbilled: r.unbilledMicros,
      resolvedAt: r.resolvedAtMs ?? r.createdAtMs,
    },
  }
}
