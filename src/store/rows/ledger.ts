/**
 * Ledger rows → domain, shared by the PostgreSQL ledger rows (src/store/postgres/ledger-rows.ts,
 * read by the Redis ledger) and the SQLite LedgerStore. Both schemas declare the same snake_case
 * columns for `wallets`, `reservations` and `ledger_entries` (src/store/postgres/schema.ts,
 * src/store/sqlite/ledger-store.ts). PostgreSQL's BIGINT columns arrive as JS numbers (the pool's
 * type parser, src/store/postgres/db.ts) and SQLite's INTEGER columns are numbers already.
 *
 * Where the dialects do differ, the adapter supplies the value: `reservations.budgets_json` is
 * JSONB in PostgreSQL (the driver parses it) and TEXT in SQLite (parsed by the adapter), and a
 * ledger entry's id is the `id` column in PostgreSQL but derived from `seq` in SQLite.
 */
import { AMOUNT_MICROS_MAX, micros, type Micros } from '../../money/index.js'
import { AllocationRefused } from '../../ledger/errors.js'
import type {
  AllocateRequest,
  BudgetCounterRef,
  LedgerEntry,
  LedgerEntryKind,
  Reservation,
  ReservationStatus,
  Wallet,
  WalletScopeKind,
} from '../../ledger/types.js'

export interface WalletRow {
  id: string
  org_id: string
  scope_kind: WalletScopeKind
  scope_id: string
  team_id: string | null
  allocated_micros: number
  reserved_micros: number
  spent_micros: number
  created_at_ms: number
  /** Spend when the last allocation was recorded; null for a wallet last allocated before it was (a migration added it). */
  spent_at_allocation_micros: number | null
  /** The allocated total that allocation left; the figure above holds only while `allocated_micros` still equals it. */
  allocation_total_micros: number | null
}

/** The `reservations` columns both schemas share (`budgets_json` is typed by each adapter). */
export interface ReservationColumns {
  id: string
  org_id: string
  wallet_id: string | null
  scope: string | null
  amount_micros: number
  status: ReservationStatus
  settled_micros: number | null
  unbilled_micros: number
  request_id: string | null
  created_at_ms: number
  expires_at_ms: number
  resolved_at_ms: number | null
  context_json?: string | null
}

export function walletOf(row: WalletRow): Wallet {
  return {
    id: row.id,
    orgId: row.org_id,
    scopeKind: row.scope_kind,
    scopeId: row.scope_id,
    teamId: row.team_id ?? undefined,
    currency: 'USD',
    allocatedMicros: micros(row.allocated_micros),
    reservedMicros: micros(row.reserved_micros),
    spentMicros: micros(row.spent_micros),
    availableMicros: micros(row.allocated_micros - row.reserved_micros - row.spent_micros),
    createdAtMs: row.created_at_ms,
    spentAtAllocationMicros: spentAtAllocationOf(row.allocated_micros, row.spent_at_allocation_micros, row.allocation_total_micros),
  }
}

/**
 * The spend recorded with the wallet's last allocation, if it belongs to the wallet's current
 * allocated total. Recorded with a different total, it is stale: the total changed without it (a
 * process of an older version allocated, or one died between the two writes of a Redis +
 * PostgreSQL allocation), and a stale figure could make a threshold that the new total "jumped
 * over" look crossed by spend. Then nothing is known, and nothing is recovered for the wallet.
 */
export function spentAtAllocationOf(allocatedMicros: number, spentAtAllocationMicros: number | null, allocationTotalMicros: number | null): Micros | undefined {
  if (spentAtAllocationMicros === null || allocationTotalMicros === null || allocationTotalMicros !== allocatedMicros) return undefined
  return micros(spentAtAllocationMicros)
}

/** `budgets` is the row's `budgets_json`, already parsed by the adapter. */
export function reservationOf(row: ReservationColumns, budgets: readonly BudgetCounterRef[]): Reservation {
  return {
    id: row.id,
    orgId: row.org_id,
    walletId: row.wallet_id ?? undefined,
    scope: row.scope ?? undefined,
    amountMicros: micros(row.amount_micros),
    status: row.status,
    settledMicros: row.settled_micros === null ? undefined : micros(row.settled_micros),
    unbilledMicros: micros(row.unbilled_micros),
    budgets,
    requestId: row.request_id ?? undefined,
    createdAtMs: row.created_at_ms,
    expiresAtMs: row.expires_at_ms,
    resolvedAtMs: row.resolved_at_ms ?? undefined,
    context: row.context_json ?? undefined,
  }
}

/** A `ledger_entries` row; `id` is the entry's public id, which each schema keeps differently. */
export function ledgerEntryOf(row: Record<string, unknown>, id: string): LedgerEntry {
  return {
    id,
    walletId: row.wallet_id as string,
    kind: row.kind as LedgerEntryKind,
    amountMicros: micros(row.amount_micros as number),
    reservationId: (row.reservation_id as string | null) ?? undefined,
    description: (row.description as string | null) ?? undefined,
    atMs: row.at_ms as number,
  }
}

/** Refuses an allocation that would pass the money bound, or fund a user wallet of another team. */
export function checkAllocation(wallet: { allocated_micros: number; team_id: string | null; scope_kind: string }, request: AllocateRequest): void {
  if (wallet.allocated_micros + request.amountMicros > AMOUNT_MICROS_MAX) {
    throw new AllocationRefused(
      'amount_limit',
      `a wallet holds at most $${AMOUNT_MICROS_MAX / 1_000_000} in total; it has $${wallet.allocated_micros / 1_000_000} allocated`,
    )
  }
  if (wallet.scope_kind === 'user' && request.teamId !== undefined && (wallet.team_id ?? undefined) !== request.teamId) {
    throw new AllocationRefused(
      'team_mismatch',
      `this user wallet belongs to ${wallet.team_id === null ? 'no team' : `team ${wallet.team_id}`}, not team ${request.teamId}`,
    )
  }
}
