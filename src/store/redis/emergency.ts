/**
 * Fail open: while Redis is unreachable, a consumer configured `open` is served against
 * a per-process emergency allowance. Reservations made here live in this process only; they are
 * journaled to PostgreSQL flagged `emergency` (recorded without moving money there), and once
 * Redis answers again each settled one is charged into Redis (CHARGE script) and PostgreSQL (a
 * `charge` journal event) — the first wallet of its cascade pays, as far as it can.
 */
import { micros, type Micros } from '../../money/index.js'
import { pendingReservation, scopeName, type Reservation, type ReserveRequest, type ResolveResult, type WalletRef } from '../../ledger/types.js'

export interface EmergencyCharge {
  readonly reservation: Reservation
  readonly cascade: readonly WalletRef[]
  readonly wantedMicros: number
}

interface Held {
  readonly reservation: Reservation
  readonly cascade: readonly WalletRef[]
  readonly allowanceKey: string
}

export class EmergencyLedger {
  /** Allowance used per consumer shape (org + cascade): reserved and settled amounts since the outage began. */
  private readonly used = new Map<string, number>()
  private readonly pending = new Map<string, Held>()
  private readonly resolved = new Map<string, Reservation>()
  /** Settled while Redis was down; charged into Redis once it is back. */
  readonly toCharge: EmergencyCharge[] = []

  reserve(request: ReserveRequest, allowanceMicros: Micros): Reservation | undefined {
    const key = `${request.orgId}|${request.cascade.map(scopeName).join(',')}`
    const used = this.used.get(key) ?? 0
    if (used + request.amountMicros > allowanceMicros) return undefined
    this.used.set(key, used + request.amountMicros)
    const reservation = pendingReservation(request, undefined)
    this.pending.set(reservation.id, { reservation, cascade: request.cascade, allowanceKey: key })
    return reservation
  }

  has(id: string): boolean {
    return this.pending.has(id) || this.resolved.has(id)
  }

  get(id: string): Reservation | undefined {
    return this.pending.get(id)?.reservation ?? this.resolved.get(id)
  }

  get pendingCount(): number {
    return this.pending.size
  }

  overdue(nowMs: number): string[] {
    return [...this.pending.values()].filter((h) => h.reservation.expiresAtMs <= nowMs).map((h) => h.reservation.id)
  }

  /** Resolves locally; the wallet is charged later, when Redis is back. */
  resolve(id: string, mode: 'settled' | 'voided' | 'expired', actualMicros: number, atMs: number): { result: ResolveResult; wanted: number } | undefined {
    const done = this.resolved.get(id)
    if (done) {
      const kind = done.status === 'settled' ? 'already_settled' : done.status === 'voided' ? 'already_voided' : 'already_expired'
      return { result: { kind, reservation: done }, wanted: 0 }
    }
    const held = this.pending.get(id)
    if (!held) return undefined
    const amount = held.reservation.amountMicros
    const wanted = mode === 'voided' ? 0 : mode === 'expired' ? amount : actualMicros
    const reservation: Reservation = {
      ...held.reservation,
      status: mode,
      settledMicros: micros(wanted),
      resolvedAtMs: atMs,
    }
    this.pending.delete(id)
    this.resolved.set(id, reservation)
    this.used.set(held.allowanceKey, Math.max(0, (this.used.get(held.allowanceKey) ?? 0) - amount + wanted))
    if (wanted > 0) this.toCharge.push({ reservation, cascade: held.cascade, wantedMicros: wanted })
    return {
      result: {
        kind: mode,
        reservation,
        releasedMicros: micros(Math.max(0, amount - wanted)),
        walletCrossing: undefined,
        budgetCrossings: [],
        walletAvailableMicros: undefined,
      },
      wanted,
    }
  }

  /** Called once every settled emergency reservation was charged into Redis: the allowance starts over. */
  resetIfDrained(): void {
    if (this.toCharge.length > 0 || this.pending.size > 0) return
    this.used.clear()
    this.resolved.clear()
  }
}
