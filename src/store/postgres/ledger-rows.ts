/**
 * Reads of the ledger's durable record in PostgreSQL: wallet identities, reservations, ledger
 * entries and budget counters. Balances here trail Redis by the journal's flush interval; the
 * Redis ledger uses them to rebuild an org and to reconcile.
 */
import type pg from 'pg'
import type { AllocateRequest, BudgetCounterRef, LedgerEntry, Reservation } from '../../ledger/types.js'
import { checkAllocation, ledgerEntryOf, reservationOf, type ReservationColumns, type WalletRow } from '../rows/ledger.js'

export { walletOf as walletOfRow, type WalletRow } from '../rows/ledger.js'

/** `budgets_json` is JSONB (parsed by the driver); `emergency` and `cascade_json` exist only in PostgreSQL. */
export interface ReservationRow extends ReservationColumns {
  budgets_json: BudgetCounterRef[]
  emergency: boolean
  cascade_json: unknown
}

export interface CounterRow {
  budget_id: string
  period_key: string
  org_id: string
  reserved_micros: number
  spent_micros: number
  period_end_ms: number
}

export function reservationOfRow(row: ReservationRow): Reservation {
  return reservationOf(row, row.budgets_json)
}

export class PostgresLedgerRows {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Creates the wallet if needed and adds the allocation, with its ledger entry, in one
   * transaction. Allocations are written here synchronously (not journaled): they are rare, and
   * PostgreSQL is where a wallet's identity is born.
   */
  async allocate(request: AllocateRequest, walletId: string, entryId: string): Promise<WalletRow> {
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      await client.query(
        `INSERT INTO wallets (id, org_id, scope_kind, scope_id, team_id, allocated_micros, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (org_id, scope_kind, scope_id) DO NOTHING`,
        [walletId, request.orgId, request.wallet.scopeKind, request.wallet.scopeId, request.teamId ?? null, request.atMs],
      )
      const current = (
        await client.query<WalletRow>('SELECT * FROM wallets WHERE org_id = $1 AND scope_kind = $2 AND scope_id = $3 FOR UPDATE', [
          request.orgId,
          request.wallet.scopeKind,
          request.wallet.scopeId,
        ])
      ).rows[0]!
      checkAllocation(current, request)
      const { rows } = await client.query<WalletRow>('UPDATE wallets SET allocated_micros = allocated_micros + $1 WHERE id = $2 RETURNING *', [
        request.amountMicros,
        current.id,
      ])
      const row = rows[0]!
      await client.query(
        `INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, description, at_ms)
         VALUES ($1, $2, 'allocation', $3, NULL, $4, $5)`,
        [entryId, row.id, request.amountMicros, request.description ?? null, request.atMs],
      )
      await client.query('COMMIT')
      return row
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }

  /**
   * Keeps the spend Redis recorded with an allocation (the ALLOCATE script) for a rebuild. Written
   * after that script, so it can be missing or stale (a process died in between): its total then
   * differs from `allocated_micros` and a rebuild loads nothing (spentAtAllocationOf).
   */
  async recordSpentAtAllocation(walletId: string, spentMicros: number, allocationTotalMicros: number): Promise<void> {
    await this.pool.query('UPDATE wallets SET spent_at_allocation_micros = $2, allocation_total_micros = $3 WHERE id = $1', [
      walletId,
      spentMicros,
      allocationTotalMicros,
    ])
  }

  /** Wallets of every org with a spend recorded at an allocation: the candidates for wallet alerts lost by a crash. */
  async walletsWithSpentAtAllocation(): Promise<WalletRow[]> {
    const sql = 'SELECT * FROM wallets WHERE spent_at_allocation_micros IS NOT NULL ORDER BY org_id, scope_kind, scope_id'
    return (await this.pool.query<WalletRow>(sql)).rows
  }

  async walletById(walletId: string): Promise<WalletRow | undefined> {
    return (await this.pool.query<WalletRow>('SELECT * FROM wallets WHERE id = $1', [walletId])).rows[0]
  }

  async walletsOfOrg(orgId: string): Promise<WalletRow[]> {
    return (await this.pool.query<WalletRow>('SELECT * FROM wallets WHERE org_id = $1 ORDER BY scope_kind, scope_id', [orgId])).rows
  }

  async reservation(id: string): Promise<ReservationRow | undefined> {
    return (await this.pool.query<ReservationRow>('SELECT * FROM reservations WHERE id = $1', [id])).rows[0]
  }

  async pendingOfOrg(orgId: string): Promise<ReservationRow[]> {
    return (await this.pool.query<ReservationRow>(`SELECT * FROM reservations WHERE org_id = $1 AND status = 'pending' AND NOT emergency`, [orgId])).rows
  }

  /** Pending in PostgreSQL and overdue by `beforeMs`: candidates for the durable-side sweep. */
  async overdue(beforeMs: number, limit: number): Promise<ReservationRow[]> {
    return (
      await this.pool.query<ReservationRow>(`SELECT * FROM reservations WHERE status = 'pending' AND expires_at_ms <= $1 ORDER BY expires_at_ms LIMIT $2`, [
        beforeMs,
        limit,
      ])
    ).rows
  }

  /** Whether the org made reservations since `sinceMs` (a rebuild then waits for other processes' retained entries). */
  async recentlyActive(orgId: string, sinceMs: number): Promise<boolean> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM reservations WHERE org_id = $1 AND created_at_ms > $2 LIMIT 1', [orgId, sinceMs])
    return (rowCount ?? 0) > 0
  }

  /** Whether the team (undefined: the org's keys of no team) already stored an ingested event with this external id. */
  async hasExternalEvent(orgId: string, teamId: string | undefined, externalRequestId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `SELECT 1 FROM usage_events WHERE org_id = $1 AND coalesce(team_id, '') = coalesce($2, '') AND external_request_id = $3 LIMIT 1`,
      [orgId, teamId ?? null, externalRequestId],
    )
    return (rowCount ?? 0) > 0
  }

  async countersOfOrg(orgId: string): Promise<CounterRow[]> {
    return (await this.pool.query<CounterRow>('SELECT * FROM budget_counters WHERE org_id = $1', [orgId])).rows
  }

  async entries(walletId: string, limit: number): Promise<LedgerEntry[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>(
      'SELECT * FROM ledger_entries WHERE wallet_id = $1 ORDER BY at_ms DESC, seq DESC LIMIT $2',
      [walletId, limit],
    )
    return rows.map((row) => ledgerEntryOf(row, row.id as string))
  }
}
