/**
 * LedgerStore on Redis (the authoritative hot counters) + PostgreSQL (the durable record).
 *
 * - reserve: one EVALSHA (RESERVE) checks every hard budget, picks the first wallet of the
 *   cascade that can pay, and records the reservation — atomically, so any number of gateway
 *   processes sharing the Redis can never together reserve more than is there.
 * - commit (settle / void with the call's usage event, or an unreserved call's spend and event):
 *   one EVALSHA (RESOLVE or RECORD). Nothing else is sent on a request's path.
 * - Every script appends what it did to the org's journal stream in the same atomic step; a
 *   JournalDrain in every process applies the streams to PostgreSQL (journal-drain.ts). A
 *   resolved reservation's hash stays in Redis (7 days) until its resolution reached PostgreSQL;
 *   only then is its TTL shortened.
 * - Redis holds nothing that cannot be rebuilt: when an org's `loaded` marker is missing, a script
 *   answers NEEDS_LOAD and the org is rebuilt from PostgreSQL under a lock before it is retried.
 *
 * Redis unreachable: reservations of `fail_mode: open` consumers are served against an
 * emergency allowance (fail-open.ts); a commit of a reservation this process made is deferred
 * and retried, and its usage event is written to PostgreSQL directly.
 */
import type { Redis } from 'ioredis'
import { newId } from '../../lib/ids.js'
import { assert } from '../../lib/assert.js'
import { addSaturating, micros, type Micros } from '../../money/index.js'
import {
  commitIngestedEach,
  counterKey,
  type CallCommit,
  type CommitResult,
  type IngestCommit,
  type IngestCommitResult,
  type LedgerStore,
} from '../../ledger/ledger-store.js'
import { refusedScopeOf } from '../../ledger/admission.js'
import {
  pendingReservation,
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
import type { UsageEvent } from '../../usage/types.js'
import { usageRowJson } from '../sqlite/usage-store.js'
import type { Journal } from '../postgres/journal.js'
import { PostgresLedgerRows, reservationOfRow, walletOfRow, type ReservationRow } from '../postgres/ledger-rows.js'
import { hashOf, reservationOfHash, reserveEvent, resolveEvent, walletOfFields } from './codec.js'
import { Retained } from './retained.js'
import type { EmergencyLedger } from './emergency.js'
import { FailOpen } from './fail-open.js'
import { JournalDrain, JOURNAL_DRAIN_DEFAULTS, type JournalDrainOptions, type UsageSink } from './journal-drain.js'
import { RedisKeys } from './keys.js'
import { ALLOCATE, READ_COUNTERS, READ_WALLETS, RECORD, RESERVE, RESOLVE } from './lua.js'
import { OrgLoader, parseScope } from './org-loader.js'
import { isUnavailable, ScriptRunner, type Reply } from './scripts.js'
import { redisReady } from './client.js'

/** How long the journal drain waits for its own connection before a listing fails (and is retried). */
const DRAIN_CONNECT_WAIT_MS = 5_000

export { isUnavailable } from './scripts.js'

export interface RedisLedgerOptions {
  readonly keyPrefix: string
  /** A pending reservation's hash is kept this long past its deadline (the sweeper resolves it long before). */
  readonly pendingRetentionMs: number
  /** A resolved reservation's hash is kept this long until its resolution reached PostgreSQL… */
  readonly resolvedRetentionMs: number
  /**
   * …and this long after: a repeated settle within it is answered from Redis, one after it from
   * PostgreSQL. Short, because every call leaves one hash (about 550 bytes of Redis memory): at
   * 3,000 calls/s, the ten minutes this used to be held about 1 GB.
   */
  readonly confirmedRetentionMs: number
  /** Budget counters outlive their period by this much (periods reset by key, not by a job). */
  readonly counterGraceMs: number
  readonly lockTtlMs: number
  /** How long a request waits for another process's rebuild of the same org. */
  readonly loadWaitMs: number
  /** A reservation pending in PostgreSQL this long past its deadline is swept from there (Redis lost it). */
  readonly durableSweepGraceMs: number
  /** Reservations of this process remembered for a deferred commit (Redis unreachable). */
  readonly ownReservationsMax: number
  /** Journal entries an org's stream may hold (PostgreSQL unreachable): past it, new reservations are refused. */
  readonly journalBacklogMax: number
  /** An ingested event's external id is remembered in Redis this long (PostgreSQL's unique index decides after). */
  readonly externalIdRetentionMs: number
  /** Journal entries of this process kept until the drain applied them (replayed if Redis loses them). */
  readonly retainedEntriesMax: number
  /** How often this process checks the drain's progress and Redis's generations (retained.ts). */
  readonly retainCheckMs: number
  /**
   * Before rebuilding an org that was active within the last minute, wait this long: other
   * processes notice the loss within `retainCheckMs` and write what they journaled to PostgreSQL
   * first, so their latest moves are part of the rebuild.
   */
  readonly rebuildQuietMs: number
  readonly drain: Partial<JournalDrainOptions>
}

export const REDIS_LEDGER_DEFAULTS: RedisLedgerOptions = {
  keyPrefix: '',
  pendingRetentionMs: 7 * 86_400_000,
  resolvedRetentionMs: 7 * 86_400_000,
  confirmedRetentionMs: 60_000,
  counterGraceMs: 86_400_000,
  lockTtlMs: 15_000,
  loadWaitMs: 10_000,
  durableSweepGraceMs: 60_000,
  ownReservationsMax: 100_000,
  journalBacklogMax: 1_000_000,
  externalIdRetentionMs: 7 * 86_400_000,
  retainedEntriesMax: 200_000,
  retainCheckMs: 100,
  rebuildQuietMs: 300,
  drain: {},
}

/** Wallets read from Redis by one script when listing many (the start-up pass for lost wallet alerts). */
const READ_WALLETS_CHUNK = 500

/** A wallet or counter that differs between Redis and PostgreSQL (reported by reconcile()). */
export interface LedgerDrift {
  readonly orgId: string
  readonly walletId: string
  readonly field: 'allocated' | 'reserved' | 'spent' | 'missing'
  readonly redisMicros: number
  readonly postgresMicros: number
}

type Mode = 'settled' | 'voided' | 'expired'

/**
 * Where usage reaches PostgreSQL: `insertRowBytes` for the drain's journaled rows (passed through
 * unparsed, as bytes), `insertRows` for rows this process kept in memory, `insertBatch` for
 * events written straight there (while Redis is unreachable, or replayed after Redis lost them).
 */
export interface UsageWriter {
  insertRows(rows: readonly string[]): Promise<unknown>
  insertRowBytes: UsageSink
  insertBatch(events: readonly UsageEvent[]): Promise<void>
}

export class RedisLedgerStore implements LedgerStore {
  /** Redis round trips awaited by this store on request paths (scripts, reads). */
  get redisRoundTrips(): number {
    return this.runner.roundTrips
  }
  /** Every Redis command sent by this store: request paths, the sweeper, and the journal drain. */
  get redisCommands(): number {
    return this.requestCommands + this.drain.commands
  }
  /** Redis commands sent on the request-path connection (requests and the sweeper; not the drain). */
  get redisRequestCommands(): number {
    return this.requestCommands
  }
  readonly emergency: EmergencyLedger
  readonly drain: JournalDrain
  private requestCommands = 0
  private readonly keys: RedisKeys
  private readonly rows: PostgresLedgerRows
  private readonly options: RedisLedgerOptions
  private readonly runner: ScriptRunner
  private readonly loader: OrgLoader
  private readonly failOpen: FailOpen
  /** Reservations made by this process and not yet resolved (bounded): a commit deferred while Redis is unreachable needs them. */
  private readonly ownReservations = new Map<string, Reservation>()
  /** Resolutions that could not reach Redis (unreachable): retried by retryDeferred(). */
  private readonly deferred: { id: string; orgId: string; mode: Mode; actual: number; atMs: number }[] = []
  private readonly retained: Retained
  private retainTimer: NodeJS.Timeout | undefined
  private retaining: Promise<void> | undefined

  constructor(
    private readonly redis: Redis,
    pool: ConstructorParameters<typeof PostgresLedgerRows>[0],
    /** Events made while Redis is unreachable (emergency reservations) go to PostgreSQL through this. */
    private readonly journal: Journal,
    private readonly usage: UsageWriter,
    options: Partial<RedisLedgerOptions> = {},
    onDrainError: (error: unknown) => void = () => {},
  ) {
    this.options = { ...REDIS_LEDGER_DEFAULTS, ...options }
    this.retained = new Retained(this.options.retainedEntriesMax)
    this.keys = new RedisKeys(this.options.keyPrefix)
    this.rows = new PostgresLedgerRows(pool)
    this.countCommands(redis)
    this.runner = new ScriptRunner(redis)
    this.loader = new OrgLoader(redis, this.runner, this.keys, this.rows, journal, this.options)
    this.failOpen = new FailOpen(this.loader, this.keys, journal, this.options)
    this.emergency = this.failOpen.ledger
    // The drain has its own connection: its commands are never on a request's path.
    const drainRedis = redis.duplicate()
    // Connection errors surface on the commands that fail; an unhandled 'error' event would crash the process.
    drainRedis.on('error', () => {})
    this.drain = new JournalDrain(
      drainRedis,
      pool,
      this.keys,
      (rows) => usage.insertRowBytes(rows),
      // Listed on the drain's own connection and counted as the drain's: not a request's round trip.
      async () => {
        // Its own connection may still be connecting (the first drain runs at start-up).
        if (drainRedis.status !== 'ready') await redisReady(drainRedis, DRAIN_CONNECT_WAIT_MS)
        this.drain.commands++
        return drainRedis.smembers(this.keys.orgs())
      },
      { ...JOURNAL_DRAIN_DEFAULTS, confirmedRetentionMs: this.options.confirmedRetentionMs, ...this.options.drain },
      onDrainError,
    )
    // Before an org is rebuilt from PostgreSQL: what is still in its Redis journal is applied, what
    // this process journaled for it and Redis lost is written, and other processes get a moment
    // to do the same.
    this.loader.beforeRebuild = async (orgId) => {
      await this.drain.flush()
      await this.replayLost([orgId])
      if (await this.rows.recentlyActive(orgId, Date.now() - 60_000)) await sleep(this.options.rebuildQuietMs)
    }
  }

  /** Starts the background work: the journal drain and the check of retained entries. */
  startBackground(): void {
    this.drain.start()
    this.retainTimer = setInterval(() => void this.checkRetained(), this.options.retainCheckMs)
    this.retainTimer.unref()
  }

  async stopBackground(): Promise<void> {
    if (this.retainTimer) clearInterval(this.retainTimer)
    this.retainTimer = undefined
    await this.retaining
    await this.drain.close()
  }

  /** Entries this process journaled and the drain has not applied yet (kept to replay if Redis loses them). */
  get retainedCount(): number {
    return this.retained.size
  }

  /** One check: drops retained entries the drain applied, replays those Redis lost. Never throws. */
  async checkRetained(): Promise<void> {
    if (this.retaining) return this.retaining
    this.retaining = this.replayLost(this.retained.orgs())
      .catch(() => {
        // Redis or PostgreSQL unreachable: the entries stay retained; the next check tries again.
      })
      .finally(() => {
        this.retaining = undefined
      })
    return this.retaining
  }

  private async replayLost(orgs: readonly string[]): Promise<void> {
    if (orgs.length === 0) return
    const progress = await this.drain.progress(orgs)
    const usageRows: string[] = []
    for (const org of orgs) {
      const state = progress.get(org)
      if (!state) continue
      for (const entry of this.retained.settle(org, state)) {
        if (entry.journal) this.journal.append(entry.journal())
        if (entry.usageRow) usageRows.push(entry.usageRow)
      }
    }
    if (usageRows.length > 0) await this.usage.insertRows(usageRows)
    await this.journal.flush()
  }

  /** Counts every command this store's connection sends, pipelined or not. */
  private countCommands(redis: Redis): void {
    const send = redis.sendCommand.bind(redis)
    redis.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
      this.requestCommands++
      return send(...args)
    }) as Redis['sendCommand']
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
      const args = (amount: string) => [row.id, amount, String(row.created_at_ms), row.team_id ?? '']
      let reply = await this.runner.eval(ALLOCATE, keys, args(String(request.amountMicros)))
      if (reply[0] === 'NEEDS_LOAD') {
        // The rebuild reads this allocation from PostgreSQL; an allocation of 0 then records the
        // wallet's spend at it. Spend another process settles in between would make that figure
        // too high, which can only keep a lost alert from being recovered, never send a false one.
        await this.loader.rebuild(orgId)
        reply = await this.runner.eval(ALLOCATE, keys, args('0'))
      }
      const wallet = (reply[0] === 'OK' ? walletOfFields(orgId, request.wallet, reply[1]) : undefined) ?? walletOfRow(row)
      if (wallet.spentAtAllocationMicros !== undefined) {
        // Redis holds the figure (the allocation's script wrote it); PostgreSQL keeps it for a
        // rebuild. The allocation is made either way: a failure here must not report it failed
        // (a retry would allocate twice), and it leaves PostgreSQL's figure stale, which a
        // rebuild reads as not known (spentAtAllocationOf).
        await this.rows.recordSpentAtAllocation(wallet.id, wallet.spentAtAllocationMicros, wallet.allocatedMicros).catch(() => {})
      }
      return wallet
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
    const wallets = await this.readWallets(
      orgId,
      rows.map((r) => ({ scopeKind: r.scope_kind, scopeId: r.scope_id })),
    )
    return rows.map((row, i) => wallets[i] ?? walletOfRow(row))
  }

  async walletsSpentSinceAllocation(): Promise<Wallet[]> {
    // PostgreSQL names the wallets with a recorded figure; Redis decides with the current ones.
    // PostgreSQL's spend is not asked: what a killed process settled may sit in the journal for
    // a while yet (its drain read the entries and died holding them).
    const byOrg = new Map<string, WalletRef[]>()
    for (const row of await this.rows.walletsWithSpentAtAllocation()) {
      const refs = byOrg.get(row.org_id) ?? []
      refs.push({ scopeKind: row.scope_kind, scopeId: row.scope_id })
      byOrg.set(row.org_id, refs)
    }
    const wallets: Wallet[] = []
    for (const [orgId, refs] of byOrg) {
      for (let i = 0; i < refs.length; i += READ_WALLETS_CHUNK) {
        for (const wallet of await this.readWallets(orgId, refs.slice(i, i + READ_WALLETS_CHUNK))) {
          if (wallet?.spentAtAllocationMicros !== undefined && wallet.spentMicros > wallet.spentAtAllocationMicros) wallets.push(wallet)
        }
      }
    }
    return wallets
  }

  async ledgerEntries(walletId: string, limit: number): Promise<LedgerEntry[]> {
    // Read your own writes: the journal reaches PostgreSQL first.
    await this.drain.flush()
    await this.journal.flush()
    return this.rows.entries(walletId, limit)
  }

  // --- reservations ----------------------------------------------------------------------------

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    if (!(Number.isSafeInteger(request.amountMicros) && request.amountMicros >= 0)) assert(false, `reserve amount: ${request.amountMicros}`)
    const entryId = newId('led', request.atMs)
    let reply: Reply
    try {
      reply = await this.loader.evalLoaded(request.orgId, RESERVE, ...this.reserveArgs(request, entryId))
    } catch (error) {
      if (!isUnavailable(error)) throw error
      return this.reserveUnavailable(request, error)
    }
    switch (reply[0]) {
      case 'EXISTS':
        return { kind: 'already_exists', reservation: reservationOfHash(hashOf(reply[1])) }
      case 'BACKLOG':
        return { kind: 'store_unavailable', message: 'the ledger journal is full (PostgreSQL unreachable for too long)' }
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
        const payer = Number(reply[1])
        const walletId = String(reply[3])
        const reservation = pendingReservation(request, walletId === '' ? undefined : { walletId, scope: scopeName(request.cascade[payer - 1]!) })
        this.remember(reservation)
        this.retained.add(request.orgId, {
          entryId: String(reply[4]),
          generation: String(reply[5]),
          journal: () => reserveEvent(reservation, { entryId }),
          usageRow: undefined,
        })
        const available = Number(reply[2])
        return { kind: 'reserved', reservation, walletAvailableMicros: available >= 0 ? micros(available) : undefined }
      }
      default:
        throw new Error(`reserve script: unexpected reply ${String(reply[0])}`)
    }
  }

  private reserveArgs(request: ReserveRequest, entryId: string): [string[], string[]] {
    const { orgId } = request
    const walletKeys = request.cascade.map((ref) => this.keys.wallet(orgId, ref))
    const counterKeys = request.budgets.map((b) => this.keys.counter(orgId, b.budgetId, b.periodKey))
    const keys = [
      this.keys.loaded(orgId),
      this.keys.reservation(orgId, request.reservationId),
      this.keys.pending(orgId),
      this.keys.journal(orgId),
      ...walletKeys,
      ...counterKeys,
    ]
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
      String(this.options.journalBacklogMax),
      entryId,
      request.context ?? '',
      ...request.cascade.map(scopeName),
      ...request.cascade.map((step) => step.teamOf ?? '*'),
      ...request.budgets.flatMap((b) => [String(b.limitMicros ?? -1), String(b.periodEndMs)]),
    ]
    return [keys, args]
  }

  private reserveUnavailable(request: ReserveRequest, error: unknown): ReserveResult {
    const message = `counter store unreachable: ${error instanceof Error ? error.message : String(error)}`
    if (request.failMode?.mode !== 'open') return { kind: 'store_unavailable', message }
    if (this.journal.isFull()) return { kind: 'store_unavailable', message: `${message}; the emergency journal is full` }
    const reservation = this.emergency.reserve(request, request.failMode.emergencyAllowanceMicros)
    if (!reservation) return { kind: 'store_unavailable', message: `${message}; emergency allowance spent` }
    this.journal.append(reserveEvent(reservation, { emergency: true, cascade: request.cascade }))
    return { kind: 'reserved', reservation, walletAvailableMicros: undefined }
  }

  /** The reservation is this process's until resolved: a commit deferred while Redis is unreachable needs it. */
  private remember(reservation: Reservation): void {
    this.ownReservations.set(reservation.id, reservation)
    if (this.ownReservations.size > this.options.ownReservationsMax) {
      const oldest = this.ownReservations.keys().next().value
      if (oldest !== undefined) this.ownReservations.delete(oldest)
    }
  }

  async commit(commit: CallCommit): Promise<CommitResult> {
    // The row PostgreSQL inserts, journaled with the money move and passed through by the drain.
    const usageJson = commit.event === undefined ? '' : usageRowJson(commit.event)
    if (commit.resolve) {
      const { reservationId, outcome, actualMicros, alsoCount = NO_COUNTERS } = commit.resolve
      if (!(Number.isSafeInteger(actualMicros) && actualMicros >= 0)) assert(false, `actual: ${actualMicros}`)
      // Only a settlement with a charge counts toward budgets that joined the call.
      const joined = outcome === 'settled' && actualMicros > 0 ? alsoCount : NO_COUNTERS
      const resolution = await this.resolve(commit.orgId, reservationId, outcome, actualMicros, commit.atMs, usageJson, commit.event, joined)
      const budgetCrossings = resolution.kind === 'settled' || resolution.kind === 'voided' ? resolution.budgetCrossings : []
      return { kind: 'committed', resolution, budgetCrossings }
    }
    return this.record(commit, usageJson)
  }

  /** One RECORD script per event: already one round trip each, pipelined together by the client. */
  async commitIngested(batch: IngestCommit): Promise<IngestCommitResult> {
    return commitIngestedEach(this, batch)
  }

  async settle(orgId: string, reservationId: string, actualMicros: Micros, atMs: number): Promise<ResolveResult> {
    if (!(Number.isSafeInteger(actualMicros) && actualMicros >= 0)) assert(false, `actual: ${actualMicros}`)
    return this.resolve(orgId, reservationId, 'settled', actualMicros, atMs, '', undefined)
  }

  async void(orgId: string, reservationId: string, atMs: number): Promise<ResolveResult> {
    return this.resolve(orgId, reservationId, 'voided', 0, atMs, '', undefined)
  }

  private async resolve(
    orgId: string,
    id: string,
    mode: Mode,
    actual: number,
    atMs: number,
    usageJson: string,
    event: UsageEvent | undefined,
    /** Budgets that joined the call (see RESOLVE); not counted while Redis is unreachable. */
    joined: readonly BudgetCounterRef[] = NO_COUNTERS,
  ): Promise<ResolveResult> {
    if (this.emergency.has(id)) {
      const result = this.failOpen.resolve(id, mode, actual, atMs)
      if (event && (result.kind === 'settled' || result.kind === 'voided')) await this.usage.insertBatch([event])
      return result
    }
    try {
      return await this.resolveIn(orgId, id, mode, actual, atMs, undefined, usageJson, event, joined)
    } catch (error) {
      const own = this.ownReservations.get(id)
      if (!isUnavailable(error) || !own || this.deferred.length >= this.options.ownReservationsMax) throw error
      // The event is made durable in PostgreSQL at once; the money move waits for Redis.
      if (event) await this.usage.insertBatch([event])
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
        await this.resolveIn(next.orgId, next.id, next.mode, next.actual, next.atMs, undefined, '')
      } catch (error) {
        if (isUnavailable(error)) return this.deferred.length
        throw error
      }
      this.deferred.shift()
    }
    return 0
  }

  private async resolveIn(
    orgId: string,
    id: string,
    mode: Mode,
    actual: number,
    atMs: number,
    adopt: ReservationRow | undefined,
    usageJson: string,
    event?: UsageEvent,
    joined: readonly BudgetCounterRef[] = NO_COUNTERS,
  ): Promise<ResolveResult> {
    const keys = [this.keys.loaded(orgId), this.keys.reservation(orgId, id), this.keys.pending(orgId), this.keys.journal(orgId)]
    const entryIds = { entryId: newId('led', atMs), entryId2: newId('led', atMs) }
    // A reservation this process made needs no hash back: its resolved state follows from the reply.
    const own = adopt ? undefined : this.ownReservations.get(id)
    const args = [
      mode,
      String(actual),
      String(atMs),
      String(this.options.resolvedRetentionMs),
      String(this.options.counterGraceMs),
      adopt ? '1' : own ? 'own' : '0',
      entryIds.entryId,
      entryIds.entryId2,
      usageJson,
    ]
    if (adopt) args.push(...this.adoptArgs(adopt))
    // Counted only by a settlement with a charge; journaled as spend, applied once per event id.
    const joinedSpend = joined.length > 0 ? { kind: 'spend' as const, eventId: newId('evt', atMs), orgId, amount: actual, atMs, budgets: joined } : undefined
    if (joinedSpend) {
      keys.push(...joined.map((b) => this.keys.counter(orgId, b.budgetId, b.periodKey)))
      args.push(JSON.stringify(joinedSpend), ...joined.map((b) => String(b.periodEndMs)))
    }
    const reply = await this.loader.evalLoaded(orgId, RESOLVE, keys, args)
    switch (reply[0]) {
      case 'NOT_FOUND':
        return adopt ? { kind: 'not_found' } : this.resolveFromDurable(orgId, id, mode, actual, atMs, usageJson, event, joined)
      case 'ALREADY': {
        const reservation = reservationOfHash(hashOf(reply[1]))
        return { kind: alreadyKind(reservation), reservation }
      }
      case 'OK': {
        const result = this.resolved(mode, reply, own, atMs)
        const wanted = Number(reply[2])
        if (result.kind === mode) {
          const resolvedReservation = result.reservation
          this.retained.add(orgId, {
            entryId: String(reply[9]),
            generation: String(reply[10]),
            journal: () => resolveEvent(resolvedReservation, wanted, entryIds),
            usageRow: usageJson || undefined,
          })
        }
        const joinedEntryId = String(reply[13] ?? '')
        if (joinedSpend === undefined || joinedEntryId === '' || result.kind !== 'settled') return result
        this.retained.add(orgId, { entryId: joinedEntryId, generation: String(reply[10]), journal: () => joinedSpend, usageRow: undefined })
        return Object.assign({}, result, { budgetCrossings: [...result.budgetCrossings, ...crossingsOf(joined, reply[12] as string[], wanted)] })
      }
      default:
        throw new Error(`resolve script: unexpected reply ${String(reply[0])}`)
    }
  }

  private resolved(mode: Mode, reply: Reply, own: Reservation | undefined, atMs: number): ResolveResult {
    const [, charged, wanted, wAllocated, wSpentBefore, wAvailable, spentBefore, hash, wTeam, , , wAtAllocation] = reply as [
      string,
      string,
      string,
      string,
      string,
      string,
      string[],
      unknown,
      string,
      unknown,
      unknown,
      string | undefined,
    ]
    // The hash as the script left it, or (reply without one) the same fields from our own reservation.
    const reservation: Reservation = own
      ? { ...own, status: mode, settledMicros: micros(Number(charged)), unbilledMicros: micros(Number(wanted) - Number(charged)), resolvedAtMs: atMs }
      : reservationOfHash(hashOf(hash))
    this.ownReservations.delete(reservation.id)
    const budgetCrossings = Number(wanted) > 0 ? crossingsOf(reservation.budgets, spentBefore, Number(wanted)) : []
    const hasWallet = reservation.walletId !== undefined && Number(wAllocated) >= 0
    const scope = reservation.scope ?? ''
    return {
      kind: mode,
      reservation,
      releasedMicros: micros(reservation.amountMicros - Number(charged)),
      walletCrossing: hasWallet
        ? {
            walletId: reservation.walletId!,
            scope,
            teamId: scope.startsWith('team:') ? scope.slice('team:'.length) : wTeam || undefined,
            allocatedMicros: micros(Number(wAllocated)),
            spentBeforeMicros: micros(Number(wSpentBefore)),
            spentAfterMicros: micros(Number(wSpentBefore) + Number(charged)),
            spentAtAllocationMicros: wAtAllocation === undefined || wAtAllocation === '' ? undefined : micros(Number(wAtAllocation)),
          }
        : undefined,
      budgetCrossings,
      walletAvailableMicros: hasWallet ? micros(Number(wAvailable)) : undefined,
    }
  }

  /**
   * Redis does not know the reservation. PostgreSQL decides (after the journal is applied):
   * unknown → not_found; resolved → already_*; pending → Redis lost it (flush, failover):
   * re-create it there and resolve it.
   */
  private async resolveFromDurable(
    orgId: string,
    id: string,
    mode: Mode,
    actual: number,
    atMs: number,
    usageJson: string,
    event: UsageEvent | undefined,
    joined: readonly BudgetCounterRef[],
  ): Promise<ResolveResult> {
    await this.drain.flush()
    await this.journal.flush()
    const row = await this.rows.reservation(id)
    if (!row || row.org_id !== orgId) return { kind: 'not_found' }
    const reservation = reservationOfRow(row)
    if (row.status !== 'pending') return { kind: alreadyKind(reservation), reservation }
    if (row.emergency) return this.failOpen.resolveRow(row, mode, actual, atMs)
    return this.resolveIn(orgId, id, mode, actual, atMs, row, usageJson, event, joined)
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

  /** An unreserved call: its spend on budget counters and its usage event, one script. */
  private async record(commit: CallCommit, usageJson: string): Promise<CommitResult> {
    const { orgId } = commit
    const budgets = commit.spend?.budgets ?? []
    const amount = commit.spend?.amountMicros ?? 0
    // Unique per team: the event's own team (none for a key of no team), never the org's other teams.
    const externalId = commit.dedupeExternalId ? commit.event?.externalRequestId : undefined
    const teamId = commit.event?.attribution.teamId
    if (externalId !== undefined && (await this.rows.hasExternalEvent(orgId, teamId, externalId))) return { kind: 'duplicate' }
    const keys = [
      this.keys.loaded(orgId),
      this.keys.journal(orgId),
      this.keys.externalId(orgId, teamId, externalId ?? ''),
      ...budgets.map((b) => this.keys.counter(orgId, b.budgetId, b.periodKey)),
    ]
    const spendEventId = newId('evt', commit.atMs)
    const args = [
      String(budgets.length),
      String(amount),
      String(this.options.counterGraceMs),
      spendEventId,
      orgId,
      String(commit.atMs),
      JSON.stringify(budgets),
      usageJson,
      String(externalId === undefined ? 0 : this.options.externalIdRetentionMs),
      ...budgets.map((b) => String(b.periodEndMs)),
    ]
    let reply: Reply
    try {
      reply = await this.loader.evalLoaded(orgId, RECORD, keys, args)
    } catch (error) {
      if (!isUnavailable(error) || commit.event === undefined) throw error
      // Redis unreachable: the event goes to PostgreSQL directly; budget counters catch up at the
      // next rebuild. Its unique index decides a repeated external id that got past the check
      // above (the same event sent twice at once): that one is a duplicate, not a second "created".
      const inserted = await this.usage.insertRows([usageJson])
      if (inserted === 0 && externalId !== undefined) return { kind: 'duplicate' }
      return { kind: 'committed', resolution: undefined, budgetCrossings: [] }
    }
    if (reply[0] === 'DUPLICATE') return { kind: 'duplicate' }
    const entryId = String(reply[2])
    if (entryId !== '') {
      const spendEvent =
        amount > 0 && budgets.length > 0 ? () => ({ kind: 'spend' as const, eventId: spendEventId, orgId, amount, atMs: commit.atMs, budgets }) : undefined
      this.retained.add(orgId, { entryId, generation: String(reply[3]), journal: spendEvent, usageRow: usageJson || undefined })
    }
    const budgetCrossings = amount > 0 ? crossingsOf(budgets, reply[1] as string[], amount) : []
    return { kind: 'committed', resolution: undefined, budgetCrossings }
  }

  async expireOverdue(nowMs: number, limit: number): Promise<ResolveResult[]> {
    const results: ResolveResult[] = []
    for (const id of this.emergency.overdue(nowMs).slice(0, limit)) {
      const r = this.failOpen.resolve(id, 'expired', 0, nowMs)
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
          if (r?.kind === 'expired') results.push(r)
        }
      }
    }
    if (results.length < limit) results.push(...(await this.expireDurable(nowMs, limit - results.length)))
    return results
  }

  /**
   * An overdue reservation is expired — unless PostgreSQL already has its resolution (Redis was
   * rebuilt from PostgreSQL while that resolution was not yet there): then Redis takes
   * PostgreSQL's outcome instead of charging the full reservation a second time. When
   * PostgreSQL cannot be asked, nothing is decided now: the next sweep tries again.
   */
  private async expireOne(orgId: string, id: string, nowMs: number): Promise<ResolveResult | undefined> {
    const row = await this.rows.reservation(id)
    if (row && row.status !== 'pending' && !row.emergency) {
      const wanted = (row.settled_micros ?? 0) + row.unbilled_micros
      return this.resolveIn(orgId, id, row.status, wanted, row.resolved_at_ms ?? nowMs, undefined, '')
    }
    return this.resolveIn(orgId, id, 'expired', 0, nowMs, undefined, '')
  }

  /** Reservations pending in PostgreSQL long past their deadline that Redis no longer holds. */
  private async expireDurable(nowMs: number, limit: number): Promise<ResolveResult[]> {
    const results: ResolveResult[] = []
    const rows = await this.rows.overdue(nowMs - this.options.durableSweepGraceMs, limit)
    for (const row of rows) {
      if (this.emergency.has(row.id)) continue
      const r = row.emergency
        ? await this.failOpen.resolveRow(row, 'expired', 0, nowMs)
        : await this.resolveIn(row.org_id, row.id, 'expired', 0, nowMs, row, '')
      if (r.kind === 'expired') results.push(r)
    }
    return results
  }

  async getReservation(orgId: string, reservationId: string): Promise<Reservation | undefined> {
    const local = this.emergency.get(reservationId)
    if (local) return local.orgId === orgId ? local : undefined
    this.runner.roundTrips++
    const hash = await this.redis.hgetall(this.keys.reservation(orgId, reservationId))
    if (hash.id !== undefined) return reservationOfHash(hash)
    await this.drain.flush()
    const row = await this.rows.reservation(reservationId)
    return row && row.org_id === orgId ? reservationOfRow(row) : undefined
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

  async recordSpend(orgId: string, budgets: readonly BudgetCounterRef[], amountMicros: Micros): Promise<BudgetCrossing[]> {
    if (budgets.length === 0 || amountMicros === 0) return []
    const result = await this.record({ orgId, atMs: Date.now(), event: undefined, spend: { budgets, amountMicros } }, '')
    return result.kind === 'committed' ? [...result.budgetCrossings] : []
  }

  async budgetSpend(orgId: string, budgets: readonly BudgetCounterRef[]): Promise<Map<string, { spentMicros: Micros; reservedMicros: Micros }>> {
    const spend = new Map<string, { spentMicros: Micros; reservedMicros: Micros }>()
    if (budgets.length === 0) return spend
    const keys = [this.keys.loaded(orgId), ...budgets.map((b) => this.keys.counter(orgId, b.budgetId, b.periodKey))]
    const reply = await this.loader.evalLoaded(orgId, READ_COUNTERS, keys, [])
    const values = reply[1] as (string | null)[][]
    budgets.forEach((b, i) => {
      const [reserved, spent] = values[i] ?? []
      spend.set(counterKey(b.budgetId, b.periodKey), { spentMicros: micros(Number(spent ?? 0)), reservedMicros: micros(Number(reserved ?? 0)) })
    })
    return spend
  }

  // --- fail open -------------------------------------------------------------------------------

  /**
   * Charges every emergency reservation settled while Redis was down into Redis and PostgreSQL.
   * Returns how many are still waiting (Redis still unreachable).
   */
  chargeEmergencySpend(): Promise<number> {
    return this.failOpen.chargeSettled()
  }

  // --- rebuild and reconciliation ------------------------------------------------------------

  /** Orgs Redis currently holds (the set is rebuilt with each org). */
  loadedOrgs(): Promise<string[]> {
    return this.loader.loadedOrgs()
  }

  /**
   * Compares each loaded org's wallets in Redis with PostgreSQL (after the journal is applied)
   * and returns the differences. Drift that persists means a lost write.
   */
  async reconcile(): Promise<LedgerDrift[]> {
    await this.drain.flush()
    await this.journal.flush()
    const drift: LedgerDrift[] = []
    for (const orgId of await this.loadedOrgs()) {
      const rows = await this.rows.walletsOfOrg(orgId)
      if (rows.length === 0) continue
      const wallets = await this.readWallets(
        orgId,
        rows.map((r) => ({ scopeKind: r.scope_kind, scopeId: r.scope_id })),
      )
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
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function alreadyKind(reservation: Reservation): 'already_settled' | 'already_voided' | 'already_expired' {
  return reservation.status === 'settled' ? 'already_settled' : reservation.status === 'voided' ? 'already_voided' : 'already_expired'
}

/** Same rule as the SQLite store and replay (`refusedScopeOf`). */
function refusedScope(request: ReserveRequest, firstFunded: WalletRef | undefined): string {
  return refusedScopeOf(request.cascade, request.orgId, firstFunded)
}

const NO_COUNTERS: readonly BudgetCounterRef[] = []

/** Each counter's move by `amount` from the spend a script read before it (`before`, in the same order). */
function crossingsOf(budgets: readonly BudgetCounterRef[], before: readonly string[], amount: number): BudgetCrossing[] {
  return budgets.map((b, i) => {
    const spentBefore = Number(before[i] ?? 0)
    return {
      budgetId: b.budgetId,
      periodKey: b.periodKey,
      spentBeforeMicros: micros(spentBefore),
      spentAfterMicros: micros(addSaturating(spentBefore, amount)),
    }
  })
}
