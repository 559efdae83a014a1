/**
 * LedgerStore on Redis (the authoritative hot counters) + PostgreSQL (the durable record).
 *
 * - reserve: one EVALSHA (RESERVE) checks every hard budget, picks the first wallet of the
 *   cascade that can pay, and records the reservation — atomically, so any number of gateway
 *   processes sharing the Redis can never together reserve more than is there (SPEC §4.2).
 * - settle / void / expire: one EVALSHA (RESOLVE).
 * - Every money move is appended to the PostgreSQL journal (journal.ts) off the request path. A
 *   resolved reservation's hash stays in Redis (7 days) until the journal confirms its
 *   resolution reached PostgreSQL; only then is its TTL shortened.
 * - Redis holds nothing that cannot be rebuilt: when an org's `loaded` marker is missing, a script
 *   answers NEEDS_LOAD and the org is rebuilt from PostgreSQL under a lock before it is retried.
 *
 * How settle(reservationId) finds the org (the port passes no org): an in-process map filled by
 * reserve (the proxy settles in the process that reserved), then `tg:rsvorg:<id>` in Redis
 * (written right after a reservation, for another process's API call or sweeper), then the
 * reservations table in PostgreSQL.
 */
import type { Redis } from 'ioredis'
import { newId } from '../../lib/ids.js'
import { assert } from '../../lib/assert.js'
import { micros, type Micros } from '../../money/index.js'
import { counterKey, type LedgerStore } from '../../ledger/ledger-store.js'
import {
  scopeName,
  type AllocateRequest,
  type BudgetCounterRef,
  type BudgetCrossing,
  type LedgerEntry,
  type Reservation,
  type ReserveRequest,
  type ReserveResult,
  type ResolveResult,
  type Wallet,
  type WalletRef,
} from '../../ledger/types.js'
import type { Journal } from '../postgres/journal.js'
import { PostgresLedgerRows, reservationOfRow, walletOfRow, type ReservationRow } from '../postgres/ledger-rows.js'
import { hashOf, reservationOfHash, reserveEvent, resolveEvent, spendEvent, walletOfFields } from './codec.js'
import type { EmergencyLedger } from './emergency.js'
import { FailOpen } from './fail-open.js'
import { RedisKeys } from './keys.js'
import { ALLOCATE, READ_COUNTERS, READ_WALLETS, RESERVE, RESOLVE, SPEND } from './lua.js'
import { OrgLoader, parseScope } from './org-loader.js'
import { isUnavailable, ScriptRunner, type Reply } from './scripts.js'

export { isUnavailable } from './scripts.js'

export interface RedisLedgerOptions {
  readonly keyPrefix: string
  /** A pending reservation's hash is kept this long past its deadline (the sweeper resolves it long before). */
  readonly pendingRetentionMs: number
  /** A resolved reservation's hash is kept this long until the journal confirms it reached PostgreSQL… */
  readonly resolvedRetentionMs: number
  /** …and this long after (answers already_settled without a PostgreSQL read). */
  readonly confirmedRetentionMs: number
  /** Budget counters outlive their period by this much (periods reset by key, not by a job). */
  readonly counterGraceMs: number
  readonly lockTtlMs: number
  /** How long a request waits for another process's rebuild of the same org. */
  readonly loadWaitMs: number
  /** A reservation pending in PostgreSQL this long past its deadline is swept from there (Redis lost it). */
  readonly durableSweepGraceMs: number
  /** Entries of the reservation → org map kept in process. */
  readonly orgCacheMax: number
  /**
   * The shared reservation → org key outlives the reservation's deadline by this much. One such
   * key is written per call, so it must not linger: after the deadline the sweeper has resolved
   * the reservation, and a late settle from another process finds the org in PostgreSQL.
   */
  readonly reservationOrgGraceMs: number
  /**
   * Before rebuilding an org that was active within the last minute, wait this long: other
   * processes' journals (flushed every ~50 ms) then reach PostgreSQL first, so their latest
   * reservations are part of the rebuild. Their scripts answer NEEDS_LOAD meanwhile, so nothing
   * new is added behind our back.
   */
  readonly rebuildQuietMs: number
}

export const REDIS_LEDGER_DEFAULTS: RedisLedgerOptions = {
  keyPrefix: '',
  pendingRetentionMs: 7 * 86_400_000,
  resolvedRetentionMs: 7 * 86_400_000,
  confirmedRetentionMs: 10 * 60_000,
  reservationOrgGraceMs: 10 * 60_000,
  counterGraceMs: 86_400_000,
  lockTtlMs: 15_000,
  loadWaitMs: 10_000,
  durableSweepGraceMs: 60_000,
  orgCacheMax: 100_000,
  rebuildQuietMs: 300,
}

/** A wallet or counter that differs between Redis and PostgreSQL (reported by reconcile()). */
export interface LedgerDrift {
  readonly orgId: string
  readonly walletId: string
  readonly field: 'allocated' | 'reserved' | 'spent' | 'missing'
  readonly redisMicros: number
  readonly postgresMicros: number
}

type Mode = 'settled' | 'voided' | 'expired'

export class RedisLedgerStore implements LedgerStore {
  /** Redis round trips made by this store (the benchmark reports it per request). */
  get redisRoundTrips(): number {
    return this.runner.roundTrips
  }
  readonly emergency: EmergencyLedger
  private readonly keys: RedisKeys
  private readonly rows: PostgresLedgerRows
  private readonly options: RedisLedgerOptions
  private readonly runner: ScriptRunner
  private readonly loader: OrgLoader
  private readonly failOpen: FailOpen
  /** Reservations made by this process and not yet resolved (bounded): settle finds their org here. */
  private readonly ownReservations = new Map<string, Reservation>()
  /** Resolutions that could not reach Redis (unreachable): retried by retryDeferred(). */
  private readonly deferred: { id: string; orgId: string; mode: Mode; actual: number; atMs: number }[] = []
  private readonly orgOfBudget = new Map<string, string>()

  constructor(
    private readonly redis: Redis,
    pool: ConstructorParameters<typeof PostgresLedgerRows>[0],
    private readonly journal: Journal,
    options: Partial<RedisLedgerOptions> = {},
  ) {
    this.options = { ...REDIS_LEDGER_DEFAULTS, ...options }
    this.keys = new RedisKeys(this.options.keyPrefix)
    this.rows = new PostgresLedgerRows(pool)
    this.runner = new ScriptRunner(redis)
    this.loader = new OrgLoader(redis, this.runner, this.keys, this.rows, journal, this.options)
    this.failOpen = new FailOpen(this.loader, this.keys, journal, this.options)
    this.emergency = this.failOpen.ledger
  }

  // --- wallets ---------------------------------------------------------------------------------

  async allocate(request: AllocateRequest): Promise<Wallet> {
    assert(Number.isSafeInteger(request.amountMicros) && request.amountMicros > 0, 'allocation must be positive')
    const { orgId } = request
    // Under the org lock: a concurrent rebuild must not read this allocation from PostgreSQL and
    // then see it added to Redis a second time.
    return this.loader.withOrgLock(orgId, async () => {
      const row = await this.rows.allocate(request, newId('wal', request.atMs), newId('led', request.atMs))
      const keys = [this.keys.loaded(orgId), this.keys.wallet(orgId, request.wallet)]
      let reply = await this.runner.eval(ALLOCATE, keys, [row.id, String(request.amountMicros), String(row.created_at_ms)])
      if (reply[0] === 'NEEDS_LOAD') {
        await this.loader.rebuild(orgId)
        reply = await this.runner.eval(READ_WALLETS, keys, [])
        const wallet = walletOfFields(orgId, request.wallet, (reply[1] as Reply)[0])
        return wallet ?? walletOfRow(row)
      }
      return walletOfFields(orgId, request.wallet, reply[1]) ?? walletOfRow(row)
    })
  }

  async getWallet(walletId: string): Promise<Wallet | undefined> {
    const row = await this.rows.walletById(walletId)
    if (!row) return undefined
    const [wallet] = await this.readWallets(row.org_id, [{ scopeKind: row.scope_kind, scopeId: row.scope_id }])
    return wallet ?? walletOfRow(row)
  }

  async findWallet(orgId: string, ref: WalletRef): Promise<Wallet | undefined> {
    const [wallet] = await this.readWallets(orgId, [ref])
    return wallet
  }

  async listWallets(orgId: string): Promise<Wallet[]> {
    const rows = await this.rows.walletsOfOrg(orgId)
    if (rows.length === 0) return []
    const wallets = await this.readWallets(orgId, rows.map((r) => ({ scopeKind: r.scope_kind, scopeId: r.scope_id })))
    return rows.map((row, i) => wallets[i] ?? walletOfRow(row))
  }

  async ledgerEntries(walletId: string, limit: number): Promise<LedgerEntry[]> {
    // Read your own writes: this process's queued journal reaches PostgreSQL first.
    await this.journal.flush()
    return this.rows.entries(walletId, limit)
  }

  // --- reservations ----------------------------------------------------------------------------

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    assert(Number.isSafeInteger(request.amountMicros) && request.amountMicros >= 0, `reserve amount: ${request.amountMicros}`)
    if (this.journal.isFull()) {
      return { kind: 'store_unavailable', message: 'the durable journal is full (PostgreSQL unreachable)' }
    }
    let reply: Reply
    try {
      reply = await this.loader.evalLoaded(request.orgId, RESERVE, ...this.reserveArgs(request))
    } catch (error) {
      if (!isUnavailable(error)) throw error
      return this.reserveUnavailable(request, error)
    }
    switch (reply[0]) {
      case 'EXISTS':
        return { kind: 'already_exists', reservation: reservationOfHash(hashOf(reply[1])) }
      case 'BUDGET': {
        const budget = request.budgets[Number(reply[1]) - 1]!
        return { kind: 'budget_cap_exceeded', budgetId: budget.budgetId, periodKey: budget.periodKey, remainingMicros: micros(Number(reply[2])) }
      }
      case 'INSUFFICIENT':
        return {
          kind: 'insufficient_quota',
          scope: refusedScope(request, request.cascade[Number(reply[1]) - 1]),
          availableMicrosMax: micros(Number(reply[2])),
        }
      case 'OK': {
        const reservation = reservationOfHash(hashOf(reply[3]))
        this.remember(request, reservation)
        this.journal.append(reserveEvent(reservation))
        const available = Number(reply[2])
        return { kind: 'reserved', reservation, walletAvailableMicros: available >= 0 ? micros(available) : undefined }
      }
      default:
        throw new Error(`reserve script: unexpected reply ${String(reply[0])}`)
    }
  }

  private reserveArgs(request: ReserveRequest): [string[], string[]] {
    const { orgId } = request
    const walletKeys = request.cascade.map((ref) => this.keys.wallet(orgId, ref))
    const counterKeys = request.budgets.map((b) => this.keys.counter(orgId, b.budgetId, b.periodKey))
    const keys = [this.keys.loaded(orgId), this.keys.reservation(orgId, request.reservationId), this.keys.pending(orgId), ...walletKeys, ...counterKeys]
    const args = [
      String(request.cascade.length),
      String(request.budgets.length),
      String(request.amountMicros),
      String(request.walletCapPercent),
      request.walletRequired ? '1' : '0',
      request.reservationId,
      orgId,
      JSON.stringify(request.budgets),
      request.requestId ?? '',
      String(request.atMs),
      String(request.expiresAtMs),
      String(this.options.pendingRetentionMs),
      String(this.options.counterGraceMs),
      ...request.cascade.map(scopeName),
      ...request.budgets.flatMap((b) => [String(b.limitMicros ?? -1), String(b.periodEndMs)]),
    ]
    return [keys, args]
  }

  private reserveUnavailable(request: ReserveRequest, error: unknown): ReserveResult {
    const message = `counter store unreachable: ${error instanceof Error ? error.message : String(error)}`
    if (request.failMode?.mode !== 'open') return { kind: 'store_unavailable', message }
    const reservation = this.emergency.reserve(request, request.failMode.emergencyAllowanceMicros)
    if (!reservation) return { kind: 'store_unavailable', message: `${message}; emergency allowance spent` }
    this.journal.append(reserveEvent(reservation, { emergency: true, cascade: request.cascade }))
    return { kind: 'reserved', reservation, walletAvailableMicros: undefined }
  }

  /** After a reservation: who owns it (for settle from elsewhere) and which org its budgets live in. */
  private remember(request: ReserveRequest, reservation: Reservation): void {
    this.ownReservations.set(reservation.id, reservation)
    if (this.ownReservations.size > this.options.orgCacheMax) {
      const oldest = this.ownReservations.keys().next().value
      if (oldest !== undefined) this.ownReservations.delete(oldest)
    }
    const pipeline = this.redis.pipeline()
    pipeline.set(this.keys.reservationOrg(reservation.id), request.orgId, 'PX', Math.max(0, request.expiresAtMs - request.atMs) + this.options.reservationOrgGraceMs)
    for (const b of request.budgets) {
      if (this.orgOfBudget.get(b.budgetId) === request.orgId) continue
      this.orgOfBudget.set(b.budgetId, request.orgId)
      pipeline.hsetnx(this.keys.budgetOrgs(), b.budgetId, request.orgId)
    }
    // Not awaited: it rides with the next write; if it is lost, PostgreSQL still knows the org.
    void pipeline.exec().catch(() => {})
  }

  async settle(reservationId: string, actualMicros: Micros, atMs: number): Promise<ResolveResult> {
    assert(Number.isSafeInteger(actualMicros) && actualMicros >= 0, `actual: ${actualMicros}`)
    return this.resolve(reservationId, 'settled', actualMicros, atMs)
  }

  async void(reservationId: string, atMs: number): Promise<ResolveResult> {
    return this.resolve(reservationId, 'voided', 0, atMs)
  }

  private async resolve(id: string, mode: Mode, actual: number, atMs: number): Promise<ResolveResult> {
    if (this.emergency.has(id)) return this.resolveEmergency(id, mode, actual, atMs)
    try {
      const orgId = await this.orgOf(id)
      if (orgId === undefined) return { kind: 'not_found' }
      return await this.resolveIn(orgId, id, mode, actual, atMs, undefined)
    } catch (error) {
      const own = this.ownReservations.get(id)
      if (!isUnavailable(error) || !own || this.deferred.length >= this.options.orgCacheMax) throw error
      return this.defer(own, mode, actual, atMs)
    }
  }

  /**
   * Redis is unreachable while settling a reservation this process made: the resolution is kept
   * and retried (retryDeferred) — the caller gets the outcome it asked for. If this process dies
   * first, the reservation expires at its reserved amount (never under-charged). Threshold
   * crossings of such a call are not reported.
   */
  private defer(own: Reservation, mode: Mode, actual: number, atMs: number): ResolveResult {
    this.deferred.push({ id: own.id, orgId: own.orgId, mode, actual, atMs })
    const wanted = mode === 'voided' ? 0 : mode === 'expired' ? own.amountMicros : actual
    return {
      kind: mode,
      reservation: { ...own, status: mode, settledMicros: micros(wanted), resolvedAtMs: atMs },
      releasedMicros: micros(Math.max(0, own.amountMicros - wanted)),
      walletCrossing: undefined,
      budgetCrossings: [],
      walletAvailableMicros: undefined,
    }
  }

  /** Resolutions waiting for Redis. */
  get deferredCount(): number {
    return this.deferred.length
  }

  /** Applies deferred resolutions now that Redis answers; returns how many still wait. */
  async retryDeferred(): Promise<number> {
    while (this.deferred.length > 0) {
      const next = this.deferred[0]!
      try {
        await this.resolveIn(next.orgId, next.id, next.mode, next.actual, next.atMs, undefined)
      } catch (error) {
        if (isUnavailable(error)) return this.deferred.length
        throw error
      }
      this.deferred.shift()
    }
    return 0
  }

  private async resolveIn(orgId: string, id: string, mode: Mode, actual: number, atMs: number, adopt: ReservationRow | undefined): Promise<ResolveResult> {
    const keys = [this.keys.loaded(orgId), this.keys.reservation(orgId, id), this.keys.pending(orgId)]
    const args = [mode, String(actual), String(atMs), String(this.options.resolvedRetentionMs), String(this.options.counterGraceMs), adopt ? '1' : '0']
    if (adopt) args.push(...this.adoptArgs(adopt))
    const reply = await this.loader.evalLoaded(orgId, RESOLVE, keys, args)
    switch (reply[0]) {
      case 'NOT_FOUND':
        return adopt ? { kind: 'not_found' } : this.resolveFromDurable(orgId, id, mode, actual, atMs)
      case 'ALREADY': {
        const reservation = reservationOfHash(hashOf(reply[1]))
        return { kind: alreadyKind(reservation), reservation }
      }
      case 'OK':
        return this.resolved(orgId, mode, reply)
      default:
        throw new Error(`resolve script: unexpected reply ${String(reply[0])}`)
    }
  }

  private resolved(orgId: string, mode: Mode, reply: Reply): ResolveResult {
    const [, charged, wanted, wAllocated, wSpentBefore, wAvailable, spentBefore, hash] = reply as [string, number, number, number, number, number, number[], unknown]
    const reservation = reservationOfHash(hashOf(hash))
    const reservationKey = this.keys.reservation(orgId, reservation.id)
    this.journal.append(resolveEvent(reservation, Number(wanted)), () => {
      // Its resolution is durable now: Redis may forget the reservation soon.
      void this.redis.pexpire(reservationKey, this.options.confirmedRetentionMs).catch(() => {})
    })
    this.ownReservations.delete(reservation.id)
    const budgetCrossings: BudgetCrossing[] =
      Number(wanted) > 0
        ? reservation.budgets.map((b, i) => ({
            budgetId: b.budgetId,
            periodKey: b.periodKey,
            spentBeforeMicros: micros(Number(spentBefore[i] ?? 0)),
            spentAfterMicros: micros(Number(spentBefore[i] ?? 0) + Number(wanted)),
          }))
        : []
    const hasWallet = reservation.walletId !== undefined && Number(wAllocated) >= 0
    return {
      kind: mode,
      reservation,
      releasedMicros: micros(reservation.amountMicros - Number(charged)),
      walletCrossing: hasWallet
        ? {
            walletId: reservation.walletId!,
            scope: reservation.scope ?? '',
            allocatedMicros: micros(Number(wAllocated)),
            spentBeforeMicros: micros(Number(wSpentBefore)),
            spentAfterMicros: micros(Number(wSpentBefore) + Number(charged)),
          }
        : undefined,
      budgetCrossings,
      walletAvailableMicros: hasWallet ? micros(Number(wAvailable)) : undefined,
    }
  }

  /**
   * Redis does not know the reservation. PostgreSQL decides: unknown → not_found; resolved →
   * already_*; pending → Redis lost it (flush, failover): re-create it there and resolve it.
   */
  private async resolveFromDurable(orgId: string, id: string, mode: Mode, actual: number, atMs: number): Promise<ResolveResult> {
    await this.journal.flush()
    const row = await this.rows.reservation(id)
    if (!row) return { kind: 'not_found' }
    const reservation = reservationOfRow(row)
    if (row.status !== 'pending') return { kind: alreadyKind(reservation), reservation }
    if (row.emergency) return this.chargeEmergencyRow(row, mode, actual, atMs)
    return this.resolveIn(orgId, id, mode, actual, atMs, row)
  }

  private adoptArgs(row: ReservationRow): string[] {
    const budgets = row.budgets_json
    const walletRef = row.scope ? parseScope(row.scope) : undefined
    return [
      row.id,
      row.org_id,
      String(row.amount_micros),
      walletRef ? this.keys.wallet(row.org_id, walletRef) : '',
      row.wallet_id ?? '',
      row.scope ?? '',
      JSON.stringify(budgets),
      budgets.map((b) => this.keys.counter(row.org_id, b.budgetId, b.periodKey)).join('\n'),
      row.request_id ?? '',
      String(row.created_at_ms),
      String(row.expires_at_ms),
    ]
  }

  async expireOverdue(nowMs: number, limit: number): Promise<ResolveResult[]> {
    const results: ResolveResult[] = []
    for (const id of this.emergency.overdue(nowMs).slice(0, limit)) {
      const r = await this.resolveEmergency(id, 'expired', 0, nowMs)
      if (r.kind === 'expired') results.push(r)
    }
    const orgs = await this.loadedOrgs()
    for (let i = 0; i < orgs.length && results.length < limit; i += 100) {
      const batch = orgs.slice(i, i + 100)
      const pipeline = this.redis.pipeline()
      for (const org of batch) pipeline.zrangebyscore(this.keys.pending(org), '-inf', nowMs, 'LIMIT', 0, limit)
      this.runner.roundTrips++
      const replies = (await pipeline.exec()) ?? []
      for (const [j, org] of batch.entries()) {
        const ids = (replies[j]?.[1] as string[] | undefined) ?? []
        for (const id of ids) {
          if (results.length >= limit) break
          const r = await this.expireOne(org, id, nowMs)
          if (r.kind === 'expired') results.push(r)
        }
      }
    }
    if (results.length < limit) results.push(...(await this.expireDurable(nowMs, limit - results.length)))
    return results
  }

  /**
   * An overdue reservation is expired — unless PostgreSQL already has its resolution (Redis was
   * rebuilt from PostgreSQL while that resolution was still in another process's journal): then
   * Redis takes PostgreSQL's outcome instead of charging the full reservation a second time.
   */
  private async expireOne(orgId: string, id: string, nowMs: number): Promise<ResolveResult> {
    const row = await this.rows.reservation(id).catch(() => undefined)
    if (row && row.status !== 'pending' && !row.emergency) {
      const wanted = (row.settled_micros ?? 0) + row.unbilled_micros
      return this.resolveIn(orgId, id, row.status, wanted, row.resolved_at_ms ?? nowMs, undefined)
    }
    return this.resolveIn(orgId, id, 'expired', 0, nowMs, undefined)
  }

  /** Reservations pending in PostgreSQL long past their deadline that Redis no longer holds. */
  private async expireDurable(nowMs: number, limit: number): Promise<ResolveResult[]> {
    const results: ResolveResult[] = []
    const rows = await this.rows.overdue(nowMs - this.options.durableSweepGraceMs, limit).catch(() => [])
    for (const row of rows) {
      if (this.emergency.has(row.id)) continue
      const r = row.emergency
        ? await this.chargeEmergencyRow(row, 'expired', 0, nowMs)
        : await this.resolveIn(row.org_id, row.id, 'expired', 0, nowMs, row)
      if (r.kind === 'expired') results.push(r)
    }
    return results
  }

  async getReservation(reservationId: string): Promise<Reservation | undefined> {
    const local = this.emergency.get(reservationId)
    if (local) return local
    const orgId = await this.orgOf(reservationId)
    if (orgId === undefined) return undefined
    this.runner.roundTrips++
    const hash = await this.redis.hgetall(this.keys.reservation(orgId, reservationId))
    if (hash.id !== undefined) return reservationOfHash(hash)
    const row = await this.rows.reservation(reservationId)
    return row && reservationOfRow(row)
  }

  async countPending(): Promise<number> {
    const orgs = await this.loadedOrgs()
    if (orgs.length === 0) return this.emergency.pendingCount
    const pipeline = this.redis.pipeline()
    for (const org of orgs) pipeline.zcard(this.keys.pending(org))
    this.runner.roundTrips++
    const replies = (await pipeline.exec()) ?? []
    return replies.reduce((sum, [, n]) => sum + Number(n ?? 0), this.emergency.pendingCount)
  }

  // --- budget counters -------------------------------------------------------------------------

  async recordSpend(budgets: readonly BudgetCounterRef[], amountMicros: Micros): Promise<BudgetCrossing[]> {
    if (budgets.length === 0 || amountMicros === 0) return []
    const crossings: BudgetCrossing[] = []
    for (const [orgId, group] of await this.byOrg(budgets)) {
      const keys = [this.keys.loaded(orgId), ...group.map((b) => this.keys.counter(orgId, b.budgetId, b.periodKey))]
      const args = [String(amountMicros), String(this.options.counterGraceMs), ...group.map((b) => String(b.periodEndMs))]
      const reply = await this.loader.evalLoaded(orgId, SPEND, keys, args)
      const before = reply[1] as number[]
      group.forEach((b, i) => {
        const spentBefore = Number(before[i] ?? 0)
        crossings.push({ budgetId: b.budgetId, periodKey: b.periodKey, spentBeforeMicros: micros(spentBefore), spentAfterMicros: micros(spentBefore + amountMicros) })
      })
      this.journal.append(spendEvent(orgId, group, amountMicros, Date.now()))
    }
    return crossings
  }

  async budgetSpend(budgets: readonly BudgetCounterRef[]): Promise<Map<string, { spentMicros: Micros; reservedMicros: Micros }>> {
    const spend = new Map<string, { spentMicros: Micros; reservedMicros: Micros }>()
    for (const [orgId, group] of await this.byOrg(budgets)) {
      const keys = [this.keys.loaded(orgId), ...group.map((b) => this.keys.counter(orgId, b.budgetId, b.periodKey))]
      const reply = await this.loader.evalLoaded(orgId, READ_COUNTERS, keys, [])
      const values = reply[1] as (string | null)[][]
      group.forEach((b, i) => {
        const [reserved, spent] = values[i] ?? []
        spend.set(counterKey(b.budgetId, b.periodKey), { spentMicros: micros(Number(spent ?? 0)), reservedMicros: micros(Number(reserved ?? 0)) })
      })
    }
    return spend
  }

  /**
   * The org whose slot holds a budget's counters: learned from reservations (which carry the
   * org), shared through `tg:budget-org`, else from PostgreSQL. A budget never reserved against
   * anywhere (soft, enforcement off) is kept under the org `_`.
   */
  private async byOrg(budgets: readonly BudgetCounterRef[]): Promise<Map<string, BudgetCounterRef[]>> {
    const unknown = [...new Set(budgets.map((b) => b.budgetId).filter((id) => !this.orgOfBudget.has(id)))]
    if (unknown.length > 0) {
      this.runner.roundTrips++
      const orgs = await this.redis.hmget(this.keys.budgetOrgs(), ...unknown)
      for (const [i, id] of unknown.entries()) {
        let org = orgs[i] ?? (await this.rows.counterOrg(id))
        if (org === undefined) {
          org = '_'
          await this.redis.hsetnx(this.keys.budgetOrgs(), id, org)
        }
        this.orgOfBudget.set(id, org)
      }
    }
    const groups = new Map<string, BudgetCounterRef[]>()
    for (const b of budgets) {
      const org = this.orgOfBudget.get(b.budgetId)!
      groups.set(org, [...(groups.get(org) ?? []), b])
    }
    return groups
  }

  // --- fail open -------------------------------------------------------------------------------

  private async resolveEmergency(id: string, mode: Mode, actual: number, atMs: number): Promise<ResolveResult> {
    return this.failOpen.resolve(id, mode, actual, atMs)
  }

  /**
   * Charges every emergency reservation settled while Redis was down into Redis and PostgreSQL.
   * Returns how many are still waiting (Redis still unreachable).
   */
  chargeEmergencySpend(): Promise<number> {
    return this.failOpen.chargeSettled()
  }

  private chargeEmergencyRow(row: ReservationRow, mode: Mode, actual: number, atMs: number): Promise<ResolveResult> {
    return this.failOpen.resolveRow(row, mode, actual, atMs)
  }

  // --- rebuild and reconciliation ------------------------------------------------------------

  /** Orgs Redis currently holds (the set is rebuilt with each org). */
  loadedOrgs(): Promise<string[]> {
    return this.loader.loadedOrgs()
  }

  /**
   * Compares each loaded org's wallets in Redis with PostgreSQL (after this process's journal is
   * flushed) and returns the differences. Other processes' unflushed journals show up as
   * transient drift; drift that persists means a lost write.
   */
  async reconcile(): Promise<LedgerDrift[]> {
    await this.journal.flush()
    const drift: LedgerDrift[] = []
    for (const orgId of await this.loadedOrgs()) {
      const rows = await this.rows.walletsOfOrg(orgId)
      if (rows.length === 0) continue
      const wallets = await this.readWallets(orgId, rows.map((r) => ({ scopeKind: r.scope_kind, scopeId: r.scope_id })))
      rows.forEach((row, i) => {
        const w = wallets[i]
        if (!w) {
          drift.push({ orgId, walletId: row.id, field: 'missing', redisMicros: 0, postgresMicros: row.allocated_micros })
          return
        }
        const pairs = [
          ['allocated', w.allocatedMicros, row.allocated_micros],
          ['reserved', w.reservedMicros, row.reserved_micros],
          ['spent', w.spentMicros, row.spent_micros],
        ] as const
        for (const [field, redisMicros, postgresMicros] of pairs) {
          if (redisMicros !== postgresMicros) drift.push({ orgId, walletId: row.id, field, redisMicros, postgresMicros })
        }
      })
    }
    return drift
  }

  private async readWallets(orgId: string, refs: readonly WalletRef[]): Promise<(Wallet | undefined)[]> {
    const keys = [this.keys.loaded(orgId), ...refs.map((ref) => this.keys.wallet(orgId, ref))]
    const reply = await this.loader.evalLoaded(orgId, READ_WALLETS, keys, [])
    const values = reply[1] as unknown[]
    return refs.map((ref, i) => walletOfFields(orgId, ref, values[i]))
  }

  private async orgOf(reservationId: string): Promise<string | undefined> {
    const own = this.ownReservations.get(reservationId)
    if (own !== undefined) return own.orgId
    this.runner.roundTrips++
    const fromRedis = await this.redis.get(this.keys.reservationOrg(reservationId))
    if (fromRedis !== null) return fromRedis
    await this.journal.flush()
    return (await this.rows.reservation(reservationId))?.org_id
  }
}

function alreadyKind(reservation: Reservation): 'already_settled' | 'already_voided' | 'already_expired' {
  return reservation.status === 'settled' ? 'already_settled' : reservation.status === 'voided' ? 'already_voided' : 'already_expired'
}

/** Same rule as the SQLite store: the first wallet of the cascade that exists, else the team. */
function refusedScope(request: ReserveRequest, firstFunded: WalletRef | undefined): string {
  const scope = firstFunded ?? request.cascade.find((ref) => ref.scopeKind === 'team') ?? request.cascade[request.cascade.length - 1]
  return scope ? scopeName(scope) : `org:${request.orgId}`
}
