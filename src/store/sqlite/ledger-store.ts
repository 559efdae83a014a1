/**
 * LedgerStore on SQLite. Every money move is one `BEGIN IMMEDIATE` transaction, so any number of
 * gateway processes sharing the file serialise on the write lock and can never reserve more than
 * a wallet holds. The same invariants are enforced twice: in TypeScript before the
 * write and by CHECK constraints in the schema (pair the assertions).
 */
import { newId } from '../../lib/ids.js'
import { assert } from '../../lib/assert.js'
import { addSaturating, micros, type Micros } from '../../money/index.js'
import { choosePayer, hardCapRefusal, refusedScopeOf } from '../../ledger/admission.js'
import { counterKey, type CallCommit, type CommitResult, type IngestCommit, type IngestCommitResult, type LedgerStore } from '../../ledger/ledger-store.js'
import type { UsageEvent } from '../../usage/types.js'
import {
  pendingReservation,
  type AllocateRequest,
  type CascadeStep,
  type BudgetCounterRef,
  type BudgetCrossing,
  type LedgerEntry,
  type LedgerEntryKind,
  type Reservation,
  type ReserveRequest,
  type ReserveResult,
  type ResolveResult,
  type Wallet,
  type WalletCrossing,
  type WalletRef,
} from '../../ledger/types.js'
import type Database from 'better-sqlite3'
import type { SqliteDatabase, SqliteMigration } from './db.js'
import { MoneyRows } from './money-rows.js'
import { checkAllocation, ledgerEntryOf, reservationOf, spentAtAllocationOf, walletOf, type ReservationColumns, type WalletRow } from '../rows/ledger.js'

export const ledgerMigrations: readonly SqliteMigration[] = [
  {
    id: 'ledger-0001',
    sql: `
      CREATE TABLE wallets (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        scope_kind TEXT NOT NULL CHECK (scope_kind IN ('user', 'team', 'org')),
        scope_id TEXT NOT NULL,
        currency TEXT NOT NULL DEFAULT 'USD',
        allocated_micros INTEGER NOT NULL CHECK (allocated_micros >= 0),
        reserved_micros INTEGER NOT NULL CHECK (reserved_micros >= 0),
        spent_micros INTEGER NOT NULL CHECK (spent_micros >= 0),
        created_at_ms INTEGER NOT NULL,
        CHECK (allocated_micros - reserved_micros - spent_micros >= 0),
        UNIQUE (org_id, scope_kind, scope_id)
      );
      CREATE TABLE reservations (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        wallet_id TEXT REFERENCES wallets (id),
        scope TEXT,
        amount_micros INTEGER NOT NULL CHECK (amount_micros >= 0),
        status TEXT NOT NULL CHECK (status IN ('pending', 'settled', 'voided', 'expired')),
        settled_micros INTEGER CHECK (settled_micros >= 0),
        unbilled_micros INTEGER NOT NULL DEFAULT 0 CHECK (unbilled_micros >= 0),
        budgets_json TEXT NOT NULL,
        request_id TEXT,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        resolved_at_ms INTEGER,
        CHECK (status <> 'expired' OR settled_micros = amount_micros),
        CHECK (status <> 'voided' OR settled_micros = 0)
      ) WITHOUT ROWID;
      CREATE INDEX reservations_pending ON reservations (expires_at_ms) WHERE status = 'pending';
      CREATE TABLE ledger_entries (
        seq INTEGER PRIMARY KEY,
        wallet_id TEXT NOT NULL REFERENCES wallets (id),
        kind TEXT NOT NULL,
        amount_micros INTEGER NOT NULL,
        reservation_id TEXT,
        description TEXT,
        at_ms INTEGER NOT NULL
      );
      CREATE INDEX ledger_entries_wallet ON ledger_entries (wallet_id, seq);
      CREATE TABLE budget_counters (
        budget_id TEXT NOT NULL,
        period_key TEXT NOT NULL,
        reserved_micros INTEGER NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
        spent_micros INTEGER NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
        period_end_ms INTEGER NOT NULL,
        PRIMARY KEY (budget_id, period_key)
      );
    `,
  },
  {
    // A user wallet may belong to a team: a user named by a call only spends its team's wallet.
    id: 'ledger-0002-wallet-team',
    sql: `ALTER TABLE wallets ADD COLUMN team_id TEXT`,
  },
  {
    // Direct reservations (POST /v1/reservations) keep their caller's attribution for the usage event at settle.
    id: 'ledger-0003-reservation-context',
    sql: `ALTER TABLE reservations ADD COLUMN context_json TEXT`,
  },
  {
    // Spend at the last allocation, written with it: a wallet alert reached by spend since then and
    // unmarked was lost by a crash; one the allocation's new total jumped over was never crossed.
    // NULL for wallets allocated before this: nothing is recovered for them until their next allocation.
    id: 'ledger-0004-spent-at-allocation',
    sql: `
      ALTER TABLE wallets ADD COLUMN spent_at_allocation_micros INTEGER;
      ALTER TABLE wallets ADD COLUMN allocation_total_micros INTEGER;
    `,
  },
]

/** `budgets_json` is TEXT here (JSONB in PostgreSQL). */
interface ReservationRow extends ReservationColumns {
  budgets_json: string
}

function reservationOfRow(row: ReservationRow): Reservation {
  return reservationOf(row, budgetsOf(row.budgets_json))
}

/**
 * `budgets_json` parsed, remembered by its text: the reservations of one team carry the same few
 * texts, so a settle reuses the parsed refs instead of parsing again. The refs are read-only
 * (`readonly` all the way down), so sharing them between reservations is safe.
 */
const parsedBudgets = new Map<string, readonly BudgetCounterRef[]>()
const PARSED_BUDGETS_MAX = 256

function budgetsOf(json: string): readonly BudgetCounterRef[] {
  let budgets = parsedBudgets.get(json)
  if (budgets === undefined) {
    budgets = JSON.parse(json) as BudgetCounterRef[]
    if (parsedBudgets.size >= PARSED_BUDGETS_MAX) parsedBudgets.clear()
    parsedBudgets.set(json, budgets)
  }
  return budgets
}

/**
 * How the ledger writes usage events: `insertSync` inside a transaction made by `transaction`
 * (SqliteUsageStore's), so an event commits with its money move. Its rollups follow with the
 * usage store's next fold.
 */
export interface UsageWriter {
  /** False when an event with its external id exists. */
  insertSync(event: UsageEvent): boolean
  transaction<A extends unknown[], R>(body: (...args: A) => R): Database.Transaction<(...args: A) => R>
}

interface QueuedMove {
  readonly run: () => unknown
  readonly resolve: (value: never) => void
  readonly reject: (error: unknown) => void
}

export class SqliteLedgerStore implements LedgerStore {
  private readonly sql
  private readonly resolveTx
  /** Money moves waiting for the next group commit. */
  private queue: QueuedMove[] = []
  /** Resolves once the moves queued so far have committed: reads wait for it (read-your-writes). */
  private queueCommitted: Promise<void> | undefined
  private markQueueCommitted: () => void = () => {}
  private readonly commitQueued
  private readonly commitQueuedAtOnce
  private readonly inSavepoint
  /** Wallets and budget counters: cached for the length of a group commit (money-rows.ts). */
  private readonly rows: MoneyRows
  /**
   * Reservations this process inserted, committed and has not resolved yet, as inserted: a
   * settle trusts them instead of reading the row back (resolveInTx). A reservation row is never
   * deleted and only its resolution columns change, so a committed one stays as remembered.
   * Bounded: entries this process never resolves (a direct reservation resolved by another
   * process) are dropped with the rest when the map is full, which costs only the read.
   */
  private readonly inserted = new Map<string, ReservationRow>()
  /** Reservations inserted by the group commit now running: remembered once it commits. */
  private insertedUncommitted: ReservationRow[] = []

  constructor(
    db: SqliteDatabase,
    private readonly usage: UsageWriter,
  ) {
    this.rows = new MoneyRows(db)
    this.sql = {
      walletById: db.prepare<[string], WalletRow>('SELECT * FROM wallets WHERE id = ?'),
      walletByScope: db.prepare<[string, string, string], WalletRow>('SELECT * FROM wallets WHERE org_id = ? AND scope_kind = ? AND scope_id = ?'),
      walletsByOrg: db.prepare<[string], WalletRow>('SELECT * FROM wallets WHERE org_id = ? ORDER BY scope_kind, scope_id'),
      walletsSpentSinceAllocation: db.prepare<[], WalletRow>(
        `SELECT * FROM wallets WHERE allocation_total_micros = allocated_micros AND spent_micros > spent_at_allocation_micros
         ORDER BY org_id, scope_kind, scope_id`,
      ),
      insertWallet: db.prepare(
        `INSERT INTO wallets (id, org_id, scope_kind, scope_id, team_id, allocated_micros, reserved_micros, spent_micros, created_at_ms)
         VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?)`,
      ),
      // The spend at this allocation is recorded with it (right-hand sides read the row before the update).
      addAllocated: db.prepare<[number, number, string]>(
        `UPDATE wallets SET allocated_micros = allocated_micros + ?, allocation_total_micros = allocated_micros + ?,
           spent_at_allocation_micros = spent_micros WHERE id = ?`,
      ),
      insertEntry: db.prepare(
        `INSERT INTO ledger_entries (wallet_id, kind, amount_micros, reservation_id, description, at_ms)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      entries: db.prepare<[string, number], Record<string, unknown>>('SELECT * FROM ledger_entries WHERE wallet_id = ? ORDER BY seq DESC LIMIT ?'),
      reservationById: db.prepare<[string], ReservationRow>('SELECT * FROM reservations WHERE id = ?'),
      reservationExists: db.prepare<[string], number>('SELECT 1 FROM reservations WHERE id = ?').pluck(),
      insertReservation: db.prepare(
        `INSERT INTO reservations (id, org_id, wallet_id, scope, amount_micros, status, unbilled_micros, budgets_json,
           request_id, created_at_ms, expires_at_ms, context_json)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)`,
      ),
      resolveReservation: db.prepare<[string, number, number, number, string]>(
        `UPDATE reservations SET status = ?, settled_micros = ?, unbilled_micros = ?, resolved_at_ms = ?
         WHERE id = ? AND status = 'pending'`,
      ),
      overdue: db.prepare<[number, number], { id: string }>(
        `SELECT id FROM reservations WHERE status = 'pending' AND expires_at_ms <= ? ORDER BY expires_at_ms LIMIT ?`,
      ),
      countPending: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM reservations WHERE status = 'pending'`),
    }
    this.resolveTx = db.transaction((id: string, outcome: 'settled' | 'voided' | 'expired', actual: number, atMs: number) =>
      this.resolveInTx(id, outcome, actual, atMs),
    )
    // Both through the usage store: a move's events are stored exactly when the move committed.
    this.inSavepoint = usage.transaction((run: () => unknown) => run())
    this.commitQueued = usage.transaction((moves: readonly QueuedMove[], outcomes: Array<{ value?: unknown; error?: unknown }>) => {
      for (const move of moves) {
        try {
          // Nested: a savepoint per move, so one failing move rolls back alone.
          outcomes.push({ value: this.inSavepoint(move.run) })
        } catch (error) {
          outcomes.push({ error })
        }
      }
    })
    // No savepoints, and the wallet and counter rows read and written once: if any move throws,
    // the whole transaction rolls back and commitMoves runs the moves again through commitQueued,
    // each in its own savepoint and with every row change its own statement.
    this.commitQueuedAtOnce = usage.transaction((moves: readonly QueuedMove[], outcomes: Array<{ value?: unknown; error?: unknown }>) => {
      this.rows.batched(() => {
        for (const move of moves) outcomes.push({ value: move.run() })
      })
    })
  }

  /**
   * Group commit: every money move requested during one turn of the event loop runs in one
   * BEGIN IMMEDIATE transaction, in arrival order (commitMoves: how one failing move is rolled
   * back alone). Under load this turns dozens of commits into one; alone, a move waits only for
   * the current turn to end. Atomicity per move and serialisation across processes are unchanged.
   */
  private enqueue<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.queue.length === 0) {
        this.queueCommitted = new Promise((done) => (this.markQueueCommitted = done))
        setImmediate(() => this.commitQueue())
      }
      this.queue.push({ run, resolve: resolve as (value: never) => void, reject })
    })
  }

  private commitQueue(): void {
    const moves = this.queue
    const markCommitted = this.markQueueCommitted
    this.queue = []
    this.queueCommitted = undefined
    try {
      this.commitMoves(moves)
    } finally {
      markCommitted()
    }
  }

  /**
   * A read issued after a move was requested sees that move: a call's settle is requested before
   * its response is sent, so the caller's next request reads the settled balance.
   */
  private async afterQueuedMoves(): Promise<void> {
    if (this.queueCommitted) await this.queueCommitted
  }

  /**
   * Moves almost never throw (each checks before it writes), so they first run together without
   * a savepoint each: the two statements a savepoint costs per move were a measurable part of
   * every call. Should one throw, that transaction rolled back whole and nothing happened; then a
   * lone move is rejected, and several run again each in its own savepoint, so only the failing
   * one is rejected. A move is a function of the database alone, so running it again is safe.
   */
  private commitMoves(moves: readonly QueuedMove[]): void {
    let outcomes: Array<{ value?: unknown; error?: unknown }> = []
    this.insertedUncommitted = []
    try {
      this.commitQueuedAtOnce.immediate(moves, outcomes)
    } catch (error) {
      // The lock could not be had, or a lone move threw: none of the moves happened.
      if (moves.length === 1 || isBusy(error)) {
        for (const move of moves) move.reject(error)
        return
      }
      outcomes = []
      this.insertedUncommitted = []
      try {
        this.commitQueued.immediate(moves, outcomes)
      } catch (again) {
        for (const move of moves) move.reject(again)
        return
      }
    }
    this.rememberInserted()
    moves.forEach((move, index) => {
      const outcome = outcomes[index]!
      if ('error' in outcome) move.reject(outcome.error)
      else move.resolve(outcome.value as never)
    })
  }

  private rememberInserted(): void {
    if (this.inserted.size + this.insertedUncommitted.length > INSERTED_MAX) this.inserted.clear()
    for (const row of this.insertedUncommitted) this.inserted.set(row.id, row)
    this.insertedUncommitted = []
  }

  async allocate(request: AllocateRequest): Promise<Wallet> {
    return this.enqueue(() => this.allocateInTx(request))
  }

  async getWallet(walletId: string): Promise<Wallet | undefined> {
    await this.afterQueuedMoves()
    const row = this.sql.walletById.get(walletId)
    return row && walletOf(row)
  }

  async findWallet(orgId: string, ref: WalletRef): Promise<Wallet | undefined> {
    await this.afterQueuedMoves()
    const row = this.sql.walletByScope.get(orgId, ref.scopeKind, ref.scopeId)
    return row && walletOf(row)
  }

  async listWallets(orgId: string): Promise<Wallet[]> {
    await this.afterQueuedMoves()
    return this.sql.walletsByOrg.all(orgId).map(walletOf)
  }

  async walletsSpentSinceAllocation(): Promise<Wallet[]> {
    await this.afterQueuedMoves()
    return this.sql.walletsSpentSinceAllocation.all().map(walletOf)
  }

  async ledgerEntries(walletId: string, limit: number): Promise<LedgerEntry[]> {
    await this.afterQueuedMoves()
    return this.sql.entries.all(walletId, limit).map((row) => ledgerEntryOf(row, `led_${row.seq as number}`))
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    return this.enqueue(() => this.reserveInTx(request))
  }

  async settle(_orgId: string, reservationId: string, actualMicros: Micros, atMs: number): Promise<ResolveResult> {
    if (!(Number.isSafeInteger(actualMicros) && actualMicros >= 0)) assert(false, `actual: ${actualMicros}`)
    return this.enqueue(() => this.resolveInTx(reservationId, 'settled', actualMicros, atMs))
  }

  async void(_orgId: string, reservationId: string, atMs: number): Promise<ResolveResult> {
    return this.enqueue(() => this.resolveInTx(reservationId, 'voided', 0, atMs))
  }

  /**
   * One group-committed transaction: the reservation resolved (or the spend counted) and the usage
   * event inserted together. With WAL and synchronous=NORMAL a commit survives the process being
   * killed the moment after (only an OS crash can lose the last commits), so a call whose commit
   * resolved is in the store for good.
   */
  async commit(commit: CallCommit): Promise<CommitResult> {
    if (commit.resolve && !(Number.isSafeInteger(commit.resolve.actualMicros) && commit.resolve.actualMicros >= 0))
      assert(false, `actual: ${commit.resolve.actualMicros}`)
    return this.enqueue(() => this.commitInTx(commit))
  }

  /**
   * One move of the group commit for a whole ingestion request: no savepoint per event (nothing in
   * an event's step can fail alone: it was validated, and a duplicate is an ignored insert), and
   * one counter upsert per budget counter for the batch's summed spend.
   */
  async commitIngested(batch: IngestCommit): Promise<IngestCommitResult> {
    return this.enqueue(() => this.commitIngestedInTx(batch))
  }

  async expireOverdue(nowMs: number, limit: number): Promise<ResolveResult[]> {
    const ids = this.sql.overdue.all(nowMs, limit)
    const results: ResolveResult[] = []
    // One transaction per reservation keeps the write lock short for concurrent requests.
    for (const { id } of ids) results.push(this.resolveTx.immediate(id, 'expired', -1, nowMs))
    return results.filter((r) => r.kind === 'expired')
  }

  async getReservation(_orgId: string, reservationId: string): Promise<Reservation | undefined> {
    await this.afterQueuedMoves()
    const row = this.sql.reservationById.get(reservationId)
    return row && reservationOfRow(row)
  }

  async countPending(): Promise<number> {
    await this.afterQueuedMoves()
    return this.sql.countPending.get()!.n
  }

  async recordSpend(_orgId: string, budgets: readonly BudgetCounterRef[], amountMicros: Micros): Promise<BudgetCrossing[]> {
    if (budgets.length === 0 || amountMicros === 0) return []
    return this.enqueue(() => this.bumpCounters(budgets, 0, amountMicros))
  }

  async budgetSpend(_orgId: string, budgets: readonly BudgetCounterRef[]): Promise<Map<string, { spentMicros: Micros; reservedMicros: Micros }>> {
    await this.afterQueuedMoves()
    const spend = new Map<string, { spentMicros: Micros; reservedMicros: Micros }>()
    for (const b of budgets) {
      const counter = this.rows.counter(b.budgetId, b.periodKey)
      spend.set(counterKey(b.budgetId, b.periodKey), { spentMicros: micros(counter.spentMicros), reservedMicros: micros(counter.reservedMicros) })
    }
    return spend
  }

  // --- inside transactions -------------------------------------------------------------------

  private allocateInTx(request: AllocateRequest): Wallet {
    assert(request.amountMicros > 0, 'allocation must be positive')
    // Changes the wallet row by its own statements: moves before it in this commit are written first.
    this.rows.settleCache()
    let row = this.sql.walletByScope.get(request.orgId, request.wallet.scopeKind, request.wallet.scopeId)
    if (!row) {
      const id = newId('wal', request.atMs)
      this.sql.insertWallet.run(id, request.orgId, request.wallet.scopeKind, request.wallet.scopeId, request.teamId ?? null, request.atMs)
      row = this.sql.walletById.get(id)!
    }
    checkAllocation(row, request)
    this.sql.addAllocated.run(request.amountMicros, request.amountMicros, row.id)
    this.entry(row.id, 'allocation', request.amountMicros, undefined, request.description, request.atMs)
    return walletOf(this.sql.walletById.get(row.id)!)
  }

  private reserveInTx(request: ReserveRequest): ReserveResult {
    // Almost never there (ids are new): asking only whether it is costs less than reading the row.
    if (this.sql.reservationExists.get(request.reservationId) !== undefined) {
      return { kind: 'already_exists', reservation: reservationOfRow(this.sql.reservationById.get(request.reservationId)!) }
    }
    const amount = request.amountMicros
    if (!(Number.isSafeInteger(amount) && amount >= 0)) assert(false, `reserve amount: ${amount}`)

    const capped = hardCapRefusal(
      request.budgets,
      (budget) => {
        const counter = this.rows.counter(budget.budgetId, budget.periodKey)
        return counter.reservedMicros + counter.spentMicros
      },
      amount,
    )
    if (capped) return capped

    let payer: WalletRow | undefined
    let walletAvailable: Micros | undefined
    if (request.walletRequired) {
      const walletOf = (step: CascadeStep) => {
        const row = this.rows.walletByScope(request.orgId, step.scopeKind, step.scopeId)
        return (
          row && {
            row,
            teamId: row.team_id ?? undefined,
            allocatedMicros: row.allocated_micros,
            reservedMicros: row.reserved_micros,
            spentMicros: row.spent_micros,
          }
        )
      }
      const choice = choosePayer(request.cascade, walletOf, amount, request.walletCapPercent)
      if (choice.kind === 'insufficient_quota') {
        return { kind: 'insufficient_quota', scope: refusedScope(request, choice.firstFunded), availableMicrosMax: choice.availableMicrosMax }
      }
      payer = choice.wallet.row
      walletAvailable = micros(payer.allocated_micros - payer.reserved_micros - amount - payer.spent_micros)
      this.rows.addReserved(payer, amount)
      this.entry(payer.id, 'reservation', -amount, request.reservationId, undefined, request.atMs)
    }
    this.bumpCounters(request.budgets, amount, 0)
    const row: ReservationRow = {
      id: request.reservationId,
      org_id: request.orgId,
      wallet_id: payer?.id ?? null,
      scope: payer ? `${payer.scope_kind}:${payer.scope_id}` : null,
      amount_micros: amount,
      status: 'pending',
      settled_micros: null,
      unbilled_micros: 0,
      budgets_json: JSON.stringify(request.budgets),
      request_id: request.requestId ?? null,
      created_at_ms: request.atMs,
      expires_at_ms: request.expiresAtMs,
      resolved_at_ms: null,
      context_json: request.context ?? null,
    }
    this.sql.insertReservation.run(
      row.id,
      row.org_id,
      row.wallet_id,
      row.scope,
      amount,
      row.budgets_json,
      row.request_id,
      row.created_at_ms,
      row.expires_at_ms,
      row.context_json,
    )
    this.insertedUncommitted.push(row)
    const reservation = pendingReservation(request, payer ? { walletId: payer.id, scope: `${payer.scope_kind}:${payer.scope_id}` } : undefined)
    return {
      kind: 'reserved',
      reservation,
      walletAvailableMicros: walletAvailable,
    }
  }

  /** `actual` is ignored for void (0) and expiry (the reserved amount). */
  private resolveInTx(id: string, outcome: 'settled' | 'voided' | 'expired', actual: number, atMs: number): ResolveResult {
    // Inserted by this process: its columns but the resolution never change, so only whether it
    // is still pending must come from the store, and the guarded UPDATE below answers that.
    const known = this.inserted.get(id)
    if (known !== undefined) {
      this.inserted.delete(id)
      const resolved = this.resolveRow(known, outcome, actual, atMs)
      if (resolved !== undefined) return resolved
    }
    const row = this.sql.reservationById.get(id)
    if (!row) return { kind: 'not_found' }
    if (row.status !== 'pending') {
      const kind = row.status === 'settled' ? 'already_settled' : row.status === 'voided' ? 'already_voided' : 'already_expired'
      return { kind, reservation: reservationOfRow(row) }
    }
    const resolved = this.resolveRow(row, outcome, actual, atMs)
    assert(resolved !== undefined, `reservation ${id} read pending but not resolved`)
    return resolved
  }

  /**
   * Resolves `row` (a pending reservation as read or inserted) if the store still holds it
   * pending, and undefined when it does not (nothing was written then). The UPDATE comes first,
   * guarded by the status; the wallet row is only read before it.
   */
  private resolveRow(row: ReservationRow, outcome: 'settled' | 'voided' | 'expired', actual: number, atMs: number): ResolveResult | undefined {
    const amount = row.amount_micros
    const wanted = outcome === 'voided' ? 0 : outcome === 'expired' ? amount : actual
    let charged = wanted
    const wallet = row.wallet_id === null ? undefined : this.rows.walletById(row.wallet_id)!
    let availableOthers = 0
    if (wallet !== undefined) {
      availableOthers = wallet.allocated_micros - wallet.reserved_micros - wallet.spent_micros
      assert(availableOthers >= 0, 'wallet available below zero')
      // The wallet never pays what it cannot cover: anything above reserved + what is
      // still free is recorded as unbilled for reconciliation, not debited.
      charged = Math.min(wanted, amount + availableOthers)
    }
    if (this.sql.resolveReservation.run(outcome, charged, wanted - charged, atMs, row.id).changes !== 1) return undefined
    let walletCrossing: WalletCrossing | undefined
    let walletAvailable: Micros | undefined
    if (wallet !== undefined) {
      // Read before the move changes the row (a cached row is the same object).
      walletCrossing = {
        walletId: wallet.id,
        scope: `${wallet.scope_kind}:${wallet.scope_id}`,
        teamId: wallet.scope_kind === 'team' ? wallet.scope_id : (wallet.team_id ?? undefined),
        allocatedMicros: micros(wallet.allocated_micros),
        spentBeforeMicros: micros(wallet.spent_micros),
        spentAfterMicros: micros(wallet.spent_micros + charged),
        spentAtAllocationMicros: spentAtAllocationOf(wallet.allocated_micros, wallet.spent_at_allocation_micros, wallet.allocation_total_micros),
      }
      walletAvailable = micros(availableOthers + amount - charged)
      this.rows.moveReservedToSpent(wallet, amount, charged)
      this.entry(wallet.id, ENTRY_KIND[outcome], amount - charged, row.id, undefined, atMs)
    }
    const budgets = budgetsOf(row.budgets_json)
    const budgetCrossings = this.bumpCounters(budgets, -amount, wanted)
    row.status = outcome
    row.settled_micros = charged
    row.unbilled_micros = wanted - charged
    row.resolved_at_ms = atMs
    return {
      kind: outcome,
      reservation: reservationOf(row, budgets),
      releasedMicros: micros(amount - charged),
      walletCrossing,
      budgetCrossings,
      walletAvailableMicros: walletAvailable,
    }
  }

  /**
   * Resolve first: a reservation already resolved (a second settle) records no second event. Then
   * the event: an ingested duplicate stops here, before any counter moved.
   */
  private commitInTx(commit: CallCommit): CommitResult {
    let resolution: ResolveResult | undefined
    let budgetCrossings: readonly BudgetCrossing[] = []
    if (commit.resolve) {
      const { reservationId, outcome, actualMicros } = commit.resolve
      resolution = this.resolveInTx(reservationId, outcome, actualMicros, commit.atMs)
      if (resolution.kind !== 'settled' && resolution.kind !== 'voided') return { kind: 'committed', resolution, budgetCrossings }
      budgetCrossings = resolution.budgetCrossings
      const joined = commit.resolve.alsoCount
      if (resolution.kind === 'settled' && actualMicros > 0 && joined !== undefined && joined.length > 0) {
        budgetCrossings = [...budgetCrossings, ...this.bumpCounters(joined, 0, actualMicros)]
        resolution = Object.assign({}, resolution, { budgetCrossings })
      }
    }
    if (commit.event !== undefined && !this.usage.insertSync(commit.event)) {
      assert(commit.dedupeExternalId === true && !commit.resolve, `usage event ${commit.event.id} already stored`)
      return { kind: 'duplicate' }
    }
    if (!commit.resolve && commit.spend && commit.spend.amountMicros > 0) {
      budgetCrossings = this.bumpCounters(commit.spend.budgets, 0, commit.spend.amountMicros)
    }
    return { kind: 'committed', resolution, budgetCrossings }
  }

  private commitIngestedInTx(batch: IngestCommit): IngestCommitResult {
    const stored: boolean[] = []
    const spend = new Map<string, { ref: BudgetCounterRef; amount: number }>()
    for (const { event, budgets } of batch.events) {
      const inserted = this.usage.insertSync(event)
      stored.push(inserted)
      if (!inserted || event.costMicros <= 0) continue
      for (const ref of budgets) {
        const key = counterKey(ref.budgetId, ref.periodKey)
        const sum = spend.get(key)
        if (sum === undefined) spend.set(key, { ref, amount: event.costMicros })
        else sum.amount = addSaturating(sum.amount, event.costMicros)
      }
    }
    const budgetCrossings: BudgetCrossing[] = []
    for (const { ref, amount } of spend.values()) budgetCrossings.push(...this.bumpCounters([ref], 0, amount))
    return { stored, budgetCrossings }
  }

  private bumpCounters(budgets: readonly BudgetCounterRef[], reserved: number, spent: number): BudgetCrossing[] {
    const crossings: BudgetCrossing[] = []
    for (const b of budgets) {
      const moved = this.rows.bumpCounter(b.budgetId, b.periodKey, b.periodEndMs, reserved, spent)
      if (spent > 0) {
        crossings.push({
          budgetId: b.budgetId,
          periodKey: b.periodKey,
          spentBeforeMicros: micros(moved.spentBeforeMicros),
          spentAfterMicros: micros(moved.spentAfterMicros),
        })
      }
    }
    return crossings
  }

  private entry(
    walletId: string,
    kind: LedgerEntryKind,
    amount: number,
    reservationId: string | undefined,
    description: string | undefined,
    atMs: number,
  ): void {
    this.sql.insertEntry.run(walletId, kind, amount, reservationId ?? null, description ?? null, atMs)
  }
}

/** Reservations a process remembers having inserted (SqliteLedgerStore.inserted). */
const INSERTED_MAX = 16_384

const ENTRY_KIND = { settled: 'settlement', voided: 'void', expired: 'expiry' } as const

/** The scope a refusal names (`refusedScopeOf`, shared with replay). */
export function refusedScope(request: ReserveRequest, firstFunded: WalletRef | undefined): string {
  return refusedScopeOf(request.cascade, request.orgId, firstFunded)
}

/** SQLite could not take the write lock within busy_timeout: running the moves again would wait as long. */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY')
}
