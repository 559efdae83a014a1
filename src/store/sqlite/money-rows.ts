/**
 * The wallet and budget-counter rows a money move reads and changes, for SqliteLedgerStore.
 *
 * Alone (a savepoint per move, the expiry sweeper, an allocation) every read and every change is
 * its own statement. In a group commit's transaction the rows are read once, changed in memory
 * by each move in turn, and written back once just before COMMIT (`batched`): under load a
 * commit holds dozens of moves against the same wallet and budget, and each of them used to read
 * and update those rows again — four statements of a reservation's seven, three of a settle's.
 *
 * This is exact because the transaction is `BEGIN IMMEDIATE`: no other process can change a row
 * between the read and the write-back, and the next transaction reads the rows afresh. Every
 * change is applied in memory with the arithmetic of the statements it replaces (the same
 * clamping of counters), and a wallet is checked after each move as the schema's CHECK
 * constraints would check its UPDATE (they still judge the rows written back). A violation
 * throws before COMMIT, the whole transaction rolls back, and the moves run again each in its
 * own savepoint without the cache (SqliteLedgerStore.commitMoves), where the failing one is
 * rejected alone.
 */
import { AssertionFailed } from '../../lib/assert.js'
import type { SqliteDatabase } from './db.js'
import type { WalletRow } from '../rows/ledger.js'

export interface CounterValues {
  readonly reservedMicros: number
  readonly spentMicros: number
}

/** A budget counter as the moves see it: where it stood before the move, and after. */
export interface CounterMoved {
  readonly spentBeforeMicros: number
  readonly spentAfterMicros: number
}

interface CounterState {
  readonly budgetId: string
  readonly periodKey: string
  reserved: number
  spent: number
  /** For creating the row; unknown while the counter was only read (a cap check). */
  periodEndMs: number | undefined
  dirty: boolean
}

interface CounterRow {
  reserved_micros: number
  spent_micros: number
}

/** Counters never pass this (SQLite could count further; JS numbers are exact up to here). */
const SPENT_MAX = Number.MAX_SAFE_INTEGER

export class MoneyRows {
  private readonly sql
  private batching = false
  /** Batched: wallets read in this transaction, by id; changed ones are written back. */
  private readonly wallets = new Map<string, WalletRow>()
  /** Batched: wallet ids by `org \0 kind \0 scope id` (null: no such wallet). */
  private readonly walletIdsByScope = new Map<string, string | null>()
  private readonly dirtyWallets = new Set<WalletRow>()
  private readonly counters = new Map<string, CounterState>()

  constructor(db: SqliteDatabase) {
    this.sql = {
      walletById: db.prepare<[string], WalletRow>('SELECT * FROM wallets WHERE id = ?'),
      walletByScope: db.prepare<[string, string, string], WalletRow>('SELECT * FROM wallets WHERE org_id = ? AND scope_kind = ? AND scope_id = ?'),
      addReserved: db.prepare<[number, string]>('UPDATE wallets SET reserved_micros = reserved_micros + ? WHERE id = ?'),
      moveReservedToSpent: db.prepare<[number, number, string]>(
        'UPDATE wallets SET reserved_micros = reserved_micros - ?, spent_micros = spent_micros + ? WHERE id = ?',
      ),
      writeWallet: db.prepare<[number, number, string]>('UPDATE wallets SET reserved_micros = ?, spent_micros = ? WHERE id = ?'),
      counter: db.prepare<[string, string], CounterRow>('SELECT reserved_micros, spent_micros FROM budget_counters WHERE budget_id = ? AND period_key = ?'),
      bumpCounter: db.prepare<[{ budgetId: string; periodKey: string; reserved: number; spent: number; periodEndMs: number }], { spent_micros: number }>(
        `INSERT INTO budget_counters (budget_id, period_key, reserved_micros, spent_micros, period_end_ms)
         VALUES (@budgetId, @periodKey, max(@reserved, 0), max(@spent, 0), @periodEndMs)
         ON CONFLICT (budget_id, period_key) DO UPDATE SET
           reserved_micros = max(0, reserved_micros + @reserved),
           spent_micros = min(spent_micros + @spent, ${SPENT_MAX})
         RETURNING spent_micros`,
      ),
      writeCounter: db.prepare<[string, string, number, number, number]>(
        `INSERT INTO budget_counters (budget_id, period_key, reserved_micros, spent_micros, period_end_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (budget_id, period_key) DO UPDATE SET reserved_micros = excluded.reserved_micros, spent_micros = excluded.spent_micros`,
      ),
    }
  }

  /** Runs `body` with the rows cached, and writes the changed ones back at its end (inside the caller's transaction). */
  batched<R>(body: () => R): R {
    this.batching = true
    try {
      const result = body()
      this.writeBack()
      return result
    } finally {
      this.batching = false
      this.forget()
    }
  }

  /** Writes back what changed and forgets the cache: a statement that touches these rows directly (an allocation) comes next. */
  settleCache(): void {
    if (!this.batching) return
    this.writeBack()
    this.forget()
  }

  /**
   * The wallet's current row. Batched, the same object is returned for the whole transaction and
   * the changes below update it: read the figures a result needs before changing them.
   */
  walletById(id: string): WalletRow | undefined {
    if (!this.batching) return this.sql.walletById.get(id)
    let row = this.wallets.get(id)
    if (row === undefined) {
      row = this.sql.walletById.get(id)
      if (row !== undefined) this.remember(row)
    }
    return row
  }

  walletByScope(orgId: string, scopeKind: string, scopeId: string): WalletRow | undefined {
    if (!this.batching) return this.sql.walletByScope.get(orgId, scopeKind, scopeId)
    const key = `${orgId}\0${scopeKind}\0${scopeId}`
    const id = this.walletIdsByScope.get(key)
    if (id === null) return undefined
    if (id !== undefined) return this.wallets.get(id)
    const row = this.sql.walletByScope.get(orgId, scopeKind, scopeId)
    this.walletIdsByScope.set(key, row?.id ?? null)
    if (row !== undefined) this.remember(row)
    return row
  }

  addReserved(wallet: WalletRow, amountMicros: number): void {
    if (!this.batching) {
      this.sql.addReserved.run(amountMicros, wallet.id)
      return
    }
    wallet.reserved_micros += amountMicros
    this.changed(wallet)
  }

  moveReservedToSpent(wallet: WalletRow, reservedMicros: number, spentMicros: number): void {
    if (!this.batching) {
      this.sql.moveReservedToSpent.run(reservedMicros, spentMicros, wallet.id)
      return
    }
    wallet.reserved_micros -= reservedMicros
    wallet.spent_micros += spentMicros
    this.changed(wallet)
  }

  /** The schema's CHECK constraints on a wallet, judged after each move as the UPDATE would be. */
  private changed(wallet: WalletRow): void {
    if (wallet.reserved_micros < 0 || wallet.spent_micros < 0 || wallet.allocated_micros - wallet.reserved_micros - wallet.spent_micros < 0) {
      throw new AssertionFailed(
        `wallet ${wallet.id}: a move would leave reserved ${wallet.reserved_micros}, spent ${wallet.spent_micros} of ${wallet.allocated_micros}`,
      )
    }
    this.dirtyWallets.add(wallet)
  }

  counter(budgetId: string, periodKey: string): CounterValues {
    if (!this.batching) {
      const row = this.sql.counter.get(budgetId, periodKey)
      return { reservedMicros: row?.reserved_micros ?? 0, spentMicros: row?.spent_micros ?? 0 }
    }
    const state = this.counterState(budgetId, periodKey, undefined)
    return { reservedMicros: state.reserved, spentMicros: state.spent }
  }

  /**
   * Moves a counter as the upsert does: reserved never below 0, spent saturating at SPENT_MAX, a
   * counter that does not exist yet created (with `periodEndMs`). `spent` is never negative.
   */
  bumpCounter(budgetId: string, periodKey: string, periodEndMs: number, reserved: number, spent: number): CounterMoved {
    if (!this.batching) {
      const after = this.sql.bumpCounter.get({ budgetId, periodKey, reserved, spent, periodEndMs })!.spent_micros
      // Exact below saturation, where a crossing can no longer change.
      return { spentBeforeMicros: Math.max(0, after - spent), spentAfterMicros: after }
    }
    if (!(spent >= 0)) throw new AssertionFailed(`counter spend: ${spent}`)
    const state = this.counterState(budgetId, periodKey, periodEndMs)
    const before = state.spent
    state.reserved = Math.max(0, state.reserved + reserved)
    state.spent = Math.min(state.spent + spent, SPENT_MAX)
    state.dirty = true
    return { spentBeforeMicros: before, spentAfterMicros: state.spent }
  }

  private counterState(budgetId: string, periodKey: string, periodEndMs: number | undefined): CounterState {
    const key = `${budgetId}\0${periodKey}`
    let state = this.counters.get(key)
    if (state === undefined) {
      const row = this.sql.counter.get(budgetId, periodKey)
      state = { budgetId, periodKey, reserved: row?.reserved_micros ?? 0, spent: row?.spent_micros ?? 0, periodEndMs, dirty: false }
      this.counters.set(key, state)
    }
    state.periodEndMs ??= periodEndMs
    return state
  }

  private remember(row: WalletRow): void {
    this.wallets.set(row.id, row)
    this.walletIdsByScope.set(`${row.org_id}\0${row.scope_kind}\0${row.scope_id}`, row.id)
  }

  private writeBack(): void {
    for (const wallet of this.dirtyWallets) this.sql.writeWallet.run(wallet.reserved_micros, wallet.spent_micros, wallet.id)
    for (const state of this.counters.values()) {
      if (state.dirty) this.sql.writeCounter.run(state.budgetId, state.periodKey, state.reserved, state.spent, state.periodEndMs!)
    }
    this.dirtyWallets.clear()
    for (const state of this.counters.values()) state.dirty = false
  }

  private forget(): void {
    this.wallets.clear()
    this.walletIdsByScope.clear()
    this.dirtyWallets.clear()
    this.counters.clear()
  }
}
