/**
 * `tg_journal_apply` applies a batch as sets (which reservations are new, resolved or done, then a
 * few statements for all of them) and writes each wallet and budget counter once. A batch must
 * leave PostgreSQL exactly as the event-by-event form (`tg_journal_apply_stepwise`) applying its
 * events one at a time does: the same wallets, counters, reservations and ledger entries.
 *
 * How: random journals over two wallets and two budget counters of one org — reservations that
 * settle (above or below their amount, partly unbilled), void or expire, some paid by no wallet,
 * some fail-open (`emergency`), reservations whose record never arrived (a resolution alone),
 * resolutions journaled before their reservation, events delivered twice, and spend on counters
 * without a reservation, and now and then a fail-open charge (such a batch is applied event by
 * event). Each journal is applied three times under three id prefixes: as one batch, an event per
 * call, and an event per call of the event-by-event form; then the three orgs' rows are compared.
 * The same comparison runs on a database upgraded from the first set form (ledger-0008 as it
 * first shipped, kept in test/support) by ledger-0009.
 */
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import type pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { postgresMigrations } from '../../src/store/postgres/schema.js'
import { describeWithPostgres } from '../support/services.js'

const T0 = Date.UTC(2026, 10, 15, 12)
const ALLOCATED = 1_000_000_000_000

type Outcome = { status: 'settled'; charged: number; unbilled: number } | { status: 'voided' } | { status: 'expired' }

interface Move {
  readonly wallet: 0 | 1 | undefined
  readonly budgets: readonly (0 | 1)[]
  readonly amount: number
  readonly emergency: boolean
  readonly outcome: Outcome | undefined
  /** How the journal carries it: in order, the resolution first, or the resolution alone. */
  readonly order: 'reserve-first' | 'resolve-first' | 'resolve-only'
  readonly twice: boolean
}

interface Spend {
  readonly budgets: readonly (0 | 1)[]
  readonly amount: number
  readonly twice: boolean
}

/** A call served fail-open, charged to a wallet once Redis was back: it names its reservation. */
interface Charge {
  readonly move: number
  readonly wallet: 0 | 1
  readonly charged: number
}

const moveArbitrary: fc.Arbitrary<Move> = fc
  .record({
    wallet: fc.constantFrom(0 as const, 1 as const, undefined),
    budgets: fc.subarray([0, 1] as (0 | 1)[]),
    amount: fc.integer({ min: 0, max: 5_000 }),
    emergency: fc.integer({ min: 0, max: 6 }).map((n) => n === 0),
    outcome: fc.option(
      fc.oneof(
        fc.record({ status: fc.constant('settled' as const), charged: fc.integer({ min: 0, max: 8_000 }), unbilled: fc.integer({ min: 0, max: 500 }) }),
        fc.constant({ status: 'voided' as const }),
        fc.constant({ status: 'expired' as const }),
      ),
      { nil: undefined, freq: 4 },
    ),
    order: fc.constantFrom('reserve-first' as const, 'reserve-first' as const, 'resolve-first' as const, 'resolve-only' as const),
    twice: fc.boolean(),
  })
  // A reservation that is never resolved is journaled as a reservation.
  .map((m) => (m.outcome === undefined ? { ...m, order: 'reserve-first' as const } : m))

const spendArbitrary: fc.Arbitrary<Spend> = fc.record({
  budgets: fc.subarray([0, 1] as (0 | 1)[], { minLength: 1 }),
  amount: fc.integer({ min: 1, max: 3_000 }),
  twice: fc.boolean(),
})

const chargeArbitrary: fc.Arbitrary<Charge | undefined> = fc.option(
  fc.record({ move: fc.nat(), wallet: fc.constantFrom(0 as const, 1 as const), charged: fc.integer({ min: 0, max: 3_000 }) }),
  { nil: undefined, freq: 5 },
)

/** The journal's events for one org, ids prefixed so several copies can live side by side. */
function journalOf(prefix: string, moves: readonly Move[], spends: readonly Spend[], charge: Charge | undefined, interleave: readonly number[]): string[] {
  const org = `${prefix}org`
  const budget = (i: 0 | 1) => ({ budgetId: `${prefix}bud${i}`, periodKey: '2026-11', limitMicros: null, periodEndMs: T0 + 86_400_000 })
  const groups: string[][] = moves.map((m, i) => {
    const walletId = m.wallet === undefined ? null : `${prefix}wal${m.wallet}`
    const r = {
      id: `${prefix}rsv${i}`,
      orgId: org,
      walletId,
      scope: m.wallet === undefined ? null : `team:t${m.wallet}`,
      amount: String(m.amount),
      budgets: m.budgets.map(budget),
      requestId: `req${i}`,
      createdAt: String(T0 + i),
      expiresAt: String(T0 + 60_000),
      emergency: m.emergency,
      cascade: null,
      context: null,
    }
    const reserve = JSON.stringify({ kind: 'reserve', entryId: `${prefix}led${i}a`, r })
    const events: string[] = []
    if (m.outcome !== undefined) {
      const o = m.outcome
      const charged = o.status === 'settled' ? o.charged : o.status === 'expired' ? m.amount : 0
      const wanted = o.status === 'settled' ? o.charged + o.unbilled : charged
      const resolve = JSON.stringify({
        kind: 'resolve',
        entryId: `${prefix}led${i}b`,
        entryId2: `${prefix}led${i}c`,
        entryKind: { settled: 'settlement', voided: 'void', expired: 'expiry' }[o.status],
        wanted: String(wanted),
        r: { ...r, status: o.status, settled: String(charged), unbilled: String(wanted - charged), resolvedAt: String(T0 + 1_000 + i) },
      })
      if (m.order === 'reserve-first') events.push(reserve, resolve)
      else if (m.order === 'resolve-first') events.push(resolve, reserve)
      else events.push(resolve)
    } else {
      events.push(reserve)
    }
    return m.twice ? [...events, ...events] : events
  })
  for (const [i, s] of spends.entries()) {
    const spend = JSON.stringify({
      kind: 'spend',
      eventId: `${prefix}evt${i}`,
      orgId: org,
      amount: String(s.amount),
      atMs: String(T0 + i),
      budgets: s.budgets.map(budget),
    })
    groups.push(s.twice ? [spend, spend] : [spend])
  }
  if (charge !== undefined) {
    const move = charge.move % moves.length
    groups.push([
      JSON.stringify({
        kind: 'charge',
        eventId: `${prefix}chg`,
        entryId: `${prefix}ledchg`,
        orgId: org,
        walletId: `${prefix}wal${charge.wallet}`,
        charged: String(charge.charged),
        reservationId: `${prefix}rsv${move}`,
        scope: `team:t${charge.wallet}`,
        budgets: moves[move]!.budgets.map(budget),
        amount: String(charge.charged),
        atMs: String(T0 + 5_000),
      }),
    ])
  }
  // Each group keeps its own order; groups interleave as the picks say.
  const out: string[] = []
  const cursors = groups.map(() => 0)
  for (const pick of interleave) {
    const live = groups.map((_, g) => g).filter((g) => cursors[g]! < groups[g]!.length)
    if (live.length === 0) break
    const g = live[pick % live.length]!
    out.push(groups[g]![cursors[g]!++]!)
  }
  for (const [g, events] of groups.entries()) out.push(...events.slice(cursors[g]))
  return out
}

/** The org's rows with the id prefix taken off, in a stable order. */
async function stateOf(pool: pg.Pool, prefix: string) {
  const strip = (value: unknown) => (typeof value === 'string' ? value.replace(prefix, '') : value)
  const rows = async (sql: string) =>
    (await pool.query<Record<string, unknown>>(sql, [`${prefix}%`])).rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, strip(v)])))
  return {
    wallets: await rows('SELECT id, reserved_micros, spent_micros FROM wallets WHERE id LIKE $1 ORDER BY id'),
    counters: await rows('SELECT budget_id, period_key, reserved_micros, spent_micros FROM budget_counters WHERE budget_id LIKE $1 ORDER BY budget_id'),
    reservations: await rows(
      `SELECT id, wallet_id, amount_micros, status, settled_micros, unbilled_micros, emergency, resolved_at_ms
       FROM reservations WHERE id LIKE $1 ORDER BY id`,
    ),
    entries: await rows('SELECT id, wallet_id, kind, amount_micros, reservation_id, at_ms FROM ledger_entries WHERE id LIKE $1 ORDER BY id'),
    // The order a wallet's ledger lists its entries in: the journal's.
    entryOrder: (await rows('SELECT id FROM ledger_entries WHERE id LIKE $1 ORDER BY seq')).map((row) => row.id),
  }
}

describeWithPostgres('PostgreSQL journal apply: a batch equals its events one by one', (ctx) => {
  let pool: pg.Pool
  beforeAll(async () => {
    pool = createPool(ctx.postgres.url)
    await migrate(pool)
  })
  afterAll(async () => {
    await pool.end()
  })

  async function seedWallets(on: pg.Pool, prefix: string): Promise<void> {
    for (const i of [0, 1]) {
      await on.query(
        `INSERT INTO wallets (id, org_id, scope_kind, scope_id, allocated_micros, reserved_micros, spent_micros, created_at_ms)
         VALUES ($1, $2, 'team', $3, $4, 0, 0, $5)`,
        [`${prefix}wal${i}`, `${prefix}org`, `t${i}`, ALLOCATED, T0],
      )
    }
  }

  /** Applies random journals to `on` as one batch and event by event (the stepwise form) and compares the rows. */
  async function batchesAgree(on: pg.Pool, tag: string, numRuns: number): Promise<void> {
    let run = 0
    let moved = 0
    const apply = (fn: string, events: readonly string[]) => on.query(`SELECT ${fn}($1::jsonb)`, [`[${events.join(',')}]`])
    await fc.assert(
      fc.asyncProperty(
        fc.array(moveArbitrary, { minLength: 1, maxLength: 12 }),
        fc.array(spendArbitrary, { maxLength: 3 }),
        chargeArbitrary,
        fc.array(fc.nat(), { maxLength: 60 }),
        async (moves, spends, charge, interleave) => {
          run += 1
          const [batched, single, stepwise] = [`${tag}${run}b_`, `${tag}${run}s_`, `${tag}${run}w_`]
          await Promise.all([seedWallets(on, batched), seedWallets(on, single), seedWallets(on, stepwise)])
          await apply('tg_journal_apply', journalOf(batched, moves, spends, charge, interleave))
          for (const event of journalOf(single, moves, spends, charge, interleave)) await apply('tg_journal_apply', [event])
          for (const event of journalOf(stepwise, moves, spends, charge, interleave)) await apply('tg_journal_apply_stepwise', [event])
          const [a, b, c] = await Promise.all([stateOf(on, batched), stateOf(on, single), stateOf(on, stepwise)])
          expect(a).toEqual(c)
          expect(b).toEqual(c)
          if (c.wallets.some((w) => Number(w.spent_micros) > 0 || Number(w.reserved_micros) > 0)) moved += 1
        },
      ),
      { numRuns },
    )
    // The journals moved money: the comparison was not of empty ledgers.
    expect(moved).toBeGreaterThan(numRuns / 3)
  }

  it('wallets, counters, reservations and ledger entries agree for any journal', async () => {
    await batchesAgree(pool, 'j', 80)
  })

  it('a database whose ledger-0008 installed the first set form gets the current one from ledger-0009, and it agrees', async () => {
    const base = createPool(ctx.postgres.baseUrl)
    const schema = `${ctx.postgres.schema}_l8`
    await base.query(`CREATE SCHEMA ${schema}`)
    const upgraded = createPool(ctx.postgres.baseUrl, { schema })
    const definition = async () =>
      (await upgraded.query<{ src: string }>("SELECT prosrc AS src FROM pg_proc WHERE oid = 'tg_journal_apply_unlocked(jsonb)'::regprocedure")).rows[0]!.src
    try {
      const firstSetForm = readFileSync(new URL('../support/ledger-0008-first-set-form.sql', import.meta.url), 'utf8')
      const through0008 = postgresMigrations.findIndex((m) => m.id === 'ledger-0008-journal-apply-net') + 1
      expect(through0008).toBeGreaterThan(0)
      await migrate(
        upgraded,
        postgresMigrations.slice(0, through0008).map((m) => (m.id === 'ledger-0008-journal-apply-net' ? { ...m, sql: firstSetForm } : m)),
      )
      expect(await definition()).toContain('jsonb_agg')
      await migrate(upgraded)
      expect(await definition()).toContain('tg_journal_move')
      await batchesAgree(upgraded, 'u', 25)
    } finally {
      await upgraded.end()
      await base.query(`DROP SCHEMA ${schema} CASCADE`)
      await base.end()
    }
  })
})
