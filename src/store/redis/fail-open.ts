/**
 * Fail open, the Redis side: reservations served against the emergency allowance while
 * Redis was unreachable are resolved locally (emergency.ts), journaled flagged `emergency`, and
 * charged into Redis (CHARGE script) and PostgreSQL (a `charge` journal event) once Redis answers.
 */
import { newId } from '../../lib/ids.js'
import { micros } from '../../money/index.js'
import { scopeName, type Reservation, type ResolveResult, type WalletRef } from '../../ledger/types.js'
import type { Journal } from '../postgres/journal.js'
import { reservationOfRow, type ReservationRow } from '../postgres/ledger-rows.js'
import { resolveEvent } from './codec.js'
import { EmergencyLedger } from './emergency.js'
import type { RedisKeys } from './keys.js'
import { CHARGE } from './lua.js'
import type { OrgLoader } from './org-loader.js'
import { isUnavailable } from './scripts.js'

type Mode = 'settled' | 'voided' | 'expired'

export class FailOpen {
  readonly ledger = new EmergencyLedger()

  constructor(
    private readonly loader: OrgLoader,
    private readonly keys: RedisKeys,
    private readonly journal: Journal,
    private readonly options: { readonly resolvedRetentionMs: number; readonly counterGraceMs: number },
  ) {}

  /** Settles / voids / expires an emergency reservation locally; the wallet is charged once Redis is back. */
  resolve(id: string, mode: Mode, actual: number, atMs: number): ResolveResult {
    const resolved = this.ledger.resolve(id, mode, actual, atMs)
    if (!resolved) return { kind: 'not_found' }
    const { result, wanted } = resolved
    if (result.kind === mode) this.journal.append(resolveEvent(result.reservation, wanted, { emergency: true }))
    return result
  }

  /**
   * Charges every emergency reservation settled while Redis was down into Redis and PostgreSQL.
   * Returns how many are still waiting (Redis still unreachable).
   */
  async chargeSettled(): Promise<number> {
    const queue = this.ledger.toCharge
    while (queue.length > 0) {
      const next = queue[0]!
      try {
        await this.charge(next.reservation, next.cascade, next.wantedMicros)
      } catch (error) {
        if (isUnavailable(error)) return queue.length
        throw error
      }
      queue.shift()
    }
    this.ledger.resetIfDrained()
    return 0
  }

  private async charge(reservation: Reservation, cascade: readonly WalletRef[], wanted: number): Promise<{ walletId: string | undefined; charged: number }> {
    const { orgId } = reservation
    const keys = [
      this.keys.loaded(orgId),
      this.keys.reservation(orgId, reservation.id),
      this.keys.journal(orgId),
      ...cascade.map((ref) => this.keys.wallet(orgId, ref)),
      ...reservation.budgets.map((b) => this.keys.counter(orgId, b.budgetId, b.periodKey)),
    ]
    const args = [
      String(cascade.length),
      String(reservation.budgets.length),
      String(wanted),
      reservation.id,
      orgId,
      JSON.stringify(reservation.budgets),
      reservation.requestId ?? '',
      String(reservation.createdAtMs),
      String(reservation.expiresAtMs),
      String(reservation.resolvedAtMs ?? reservation.createdAtMs),
      String(this.options.resolvedRetentionMs),
      String(this.options.counterGraceMs),
      `charge:${reservation.id}`,
      newId('led', reservation.resolvedAtMs ?? reservation.createdAtMs),
      ...cascade.map(scopeName),
    ]
    // The CHARGE script journals the charge itself (same atomic step as the money move).
    const reply = await this.loader.evalLoaded(orgId, CHARGE, keys, args)
    if (reply[0] !== 'OK') return { walletId: undefined, charged: 0 }
    return { walletId: String(reply[2]) || undefined, charged: Number(reply[3]) }
  }

  /** An emergency reservation whose process is gone (or Redis lost): resolve it in PostgreSQL and charge it. */
  async resolveRow(row: ReservationRow, mode: Mode, actual: number, atMs: number): Promise<ResolveResult> {
    const amount = row.amount_micros
    const wanted = mode === 'voided' ? 0 : mode === 'expired' ? amount : actual
    const reservation: Reservation = { ...reservationOfRow(row), status: mode, settledMicros: micros(wanted), resolvedAtMs: atMs }
    this.journal.append(resolveEvent(reservation, wanted, { emergency: true }))
    if (wanted > 0) await this.charge(reservation, (row.cascade_json as WalletRef[] | null) ?? [], wanted)
    return {
      kind: mode,
      reservation,
      releasedMicros: micros(amount - wanted),
      walletCrossing: undefined,
      budgetCrossings: [],
      walletAvailableMicros: undefined,
    }
  }
}
