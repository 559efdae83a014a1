/**
 * The spend query a budget's counter is seeded from (`spendBetween(filterOf(budget), …)`) sums
 * exactly the events whose calls the budget counts live (`matchesCall`, given the model the call
 * asked for and its provider): for every scope kind, narrowed to a team or not, with an
 * environment or not, on SQLite and on PostgreSQL.
 *
 * How: random events over small pools (so scopes collide) — users bound to the key or named by
 * the call, a model asked for under one name and served under another, names in another case,
 * demo events, instants on either side of the window, proxied calls and direct reservations
 * still running at its end (they count when they settle, not in the seed) beside ingested events
 * (counted by their instant) — written with `insertBatch`; random budgets; the sum over the
 * events `matchesCall` accepts, computed in JS, against the store's.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BUDGET_SCOPE_KINDS, filterOf, matchesCall, type Budget } from '../../src/budgets/index.js'
import type { BudgetUsageReader } from '../../src/budgets/budget-store.js'
import type { BudgetScopeKind } from '../../src/config/types.js'
import { micros } from '../../src/money/index.js'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { PostgresBudgetStore } from '../../src/store/postgres/budget-store.js'
import { PostgresUsageStore } from '../../src/store/postgres/usage-store.js'
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite/db.js'
import { sqliteMigrations } from '../../src/store/sqlite/index.js'
import { SqliteBudgetStore } from '../../src/store/sqlite/budget-store.js'
import { SqliteUsageStore } from '../../src/store/sqlite/usage-store.js'
import type { UsageEvent } from '../../src/usage/types.js'
import { usageEvent } from '../support/usage-events.js'
import { describeWithPostgres } from '../support/services.js'

const FROM_MS = Date.UTC(2026, 10, 1)
const TO_MS = Date.UTC(2026, 10, 2)

/** The values each scope kind is drawn from (an org budget's is its org). */
const POOL: Record<Exclude<BudgetScopeKind, 'org'>, readonly string[]> = {
  team: ['alpha', 'beta'],
  user: ['carol', 'dave'],
  agent: ['bot', 'Bot'],
  key: ['carol-laptop', 'alpha-svc'],
  endpoint: ['/chat', '/summary'],
  model: ['gpt-4o-mini', 'GPT-4o-Mini', 'fast', 'gpt-4o'],
  provider: ['openai', 'OpenAI', 'anthropic'],
}
const ENVIRONMENTS = ['prod', 'staging'] as const

const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined, freq: 3 })
const from = (values: readonly string[]) => fc.constantFrom(...values)

function eventsArbitrary(): fc.Arbitrary<UsageEvent[]> {
  const fields = fc.record({
    atMs: fc.integer({ min: FROM_MS - 3_600_000, max: TO_MS + 3_600_000 }),
    teamId: maybe(from(POOL.team)),
    userId: maybe(from(POOL.user)),
    userFromKey: fc.boolean(),
    agentId: maybe(from(POOL.agent)),
    keyName: maybe(from(POOL.key)),
    endpointTag: maybe(from(POOL.endpoint)),
    environment: from(ENVIRONMENTS),
    provider: from(POOL.provider),
    modelRequested: from(POOL.model),
    modelServed: from(POOL.model),
    costMicros: fc.integer({ min: 0, max: 5_000_000 }),
    dataMode: fc.constantFrom<UsageEvent['dataMode']>('real', 'real', 'demo'),
    // Up to two hours: a call that arrived before the window's end may settle after it.
    latencyMs: fc.integer({ min: 0, max: 7_200_000 }),
    source: fc.constantFrom<UsageEvent['source']>('gateway', 'gateway', 'ingest', 'direct'),
  })
  return fc.array(fields, { minLength: 1, maxLength: 40 }).map((list) =>
    list.map((f, i): UsageEvent => {
      const base = usageEvent({ id: `e${i}`, atMs: f.atMs, costMicros: f.costMicros, provider: f.provider, dataMode: f.dataMode })
      return {
        ...base,
        attribution: {
          ...base.attribution,
          teamId: f.teamId,
          userId: f.userId,
          userFromKey: f.userId !== undefined && f.userFromKey,
          agentId: f.agentId,
          keyName: f.keyName,
          endpointTag: f.endpointTag,
          environment: f.environment,
        },
        modelRequested: f.modelRequested,
        modelServed: f.modelServed,
        latencyMs: f.latencyMs,
        source: f.source,
      }
    }),
  )
}

function budgetsArbitrary(): fc.Arbitrary<Budget[]> {
  const budget = fc
    .record({
      kind: fc.constantFrom(...BUDGET_SCOPE_KINDS),
      pick: fc.nat(),
      teamId: maybe(from(POOL.team)),
      environment: maybe(from(ENVIRONMENTS)),
    })
    .map(({ kind, pick, teamId, environment }): Budget => {
      // An org budget names its own org: `inOrg` sets it.
      const ids = kind === 'org' ? ['org'] : POOL[kind]
      return aBudget('org', kind, ids[pick % ids.length]!, kind === 'org' || kind === 'team' ? undefined : teamId, environment)
    })
  return fc.array(budget, { minLength: 1, maxLength: 8 })
}

function aBudget(orgId: string, scopeKind: BudgetScopeKind, scopeId: string, scopeTeamId: string | undefined, environment: string | undefined): Budget {
  return {
    id: 'bud_query',
    orgId,
    name: 'query',
    scopeKind,
    scopeId,
    scopeTeamId,
    environment,
    period: 'daily',
    timezone: 'UTC',
    amountMicros: micros(1_000_000),
    alertThresholds: [],
    thresholdActions: [],
    hardLimit: false,
    shadow: false,
    categories: [],
    owner: undefined,
    channels: undefined,
    createdAtMs: FROM_MS,
    updatedAtMs: FROM_MS,
    counterEpochMs: 0,
    source: 'api',
  }
}

/** A store's writer of events and its spend queries. */
interface SpendStores {
  readonly usage: { insertBatch(events: readonly UsageEvent[]): Promise<void> }
  readonly budgets: BudgetUsageReader
}

/**
 * What the budget's counter holds from these events had it been created at TO_MS: the calls it
 * counts that had settled by then (a proxied call settles `latencyMs` after it arrived; one still
 * running is counted when it settles, toward the budgets it finds then; so is a direct
 * reservation, its `atMs` when it was reserved).
 */
function liveSpend(budget: Budget, events: readonly UsageEvent[]): number {
  return events
    .filter((e) => e.dataMode === 'real' && e.atMs >= FROM_MS && e.atMs < TO_MS)
    .filter((e) => e.source === 'ingest' || e.atMs + e.latencyMs < TO_MS)
    .filter((e) => matchesCall(budget, e.attribution, e.modelRequested, e.provider))
    .reduce((sum, e) => sum + e.costMicros, 0)
}

/** The same events and budgets in an org of their own: every run (and every shrink) writes afresh. */
function inOrg(orgId: string, events: readonly UsageEvent[], budgets: readonly Budget[]) {
  return {
    events: events.map((e) => ({ ...e, id: `${orgId}_${e.id}`, attribution: { ...e.attribution, orgId } })),
    budgets: budgets.map((b) => ({ ...b, orgId, scopeId: b.scopeKind === 'org' ? orgId : b.scopeId })),
  }
}

function checkStore(store: () => SpendStores, numRuns: number) {
  let run = 0
  return async () => {
    await fc.assert(
      fc.asyncProperty(eventsArbitrary(), budgetsArbitrary(), async (generatedEvents, generatedBudgets) => {
        const { events, budgets } = inOrg(`org_q${run++}`, generatedEvents, generatedBudgets)
        await store().usage.insertBatch(events)
        for (const budget of budgets) {
          const seeded = await store().budgets.spendBetween(filterOf(budget), FROM_MS, TO_MS)
          expect(seeded, JSON.stringify(filterOf(budget))).toBe(liveSpend(budget, events))
        }
      }),
      { numRuns },
    )
  }
}

/**
 * Events stored before `user_from_key` was (NULL) say nothing of how their user was named: an
 * org-wide user budget counts them, as it did before.
 */
function legacyEventsCount(store: () => SpendStores, forget: (id: string) => Promise<void>) {
  return async () => {
    const orgId = 'org_legacy'
    const atMs = FROM_MS + 60_000
    const carol = (id: string, userFromKey: boolean, costMicros: number): UsageEvent => {
      const base = usageEvent({ id, atMs, orgId, userId: 'carol', costMicros })
      return { ...base, attribution: { ...base.attribution, userFromKey } }
    }
    await store().usage.insertBatch([carol('legacy_own', true, 100), carol('legacy_named', false, 20), carol('named', false, 3)])
    await forget('legacy_named')
    const everywhere = aBudget(orgId, 'user', 'carol', undefined, undefined)
    expect(await store().budgets.spendBetween(filterOf(everywhere), FROM_MS, TO_MS)).toBe(120)
  }
}

describe('the seed query counts what the live path counts, SQLite', () => {
  let dir: string
  let db: SqliteDatabase
  let stores: { usage: SqliteUsageStore; budgets: SqliteBudgetStore }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-spend-query-'))
    db = openSqlite(join(dir, 'store.sqlite'), sqliteMigrations)
    stores = { usage: new SqliteUsageStore(db), budgets: new SqliteBudgetStore(db) }
  })
  afterAll(() => {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it(
    'for random events and budgets of every scope kind',
    checkStore(() => stores, 150),
  )

  it(
    'counts an event of unknown naming toward an org-wide user budget',
    legacyEventsCount(
      () => stores,
      async (id) => void db.prepare('UPDATE usage_events SET user_from_key = NULL WHERE id = ?').run(id),
    ),
  )
})

describeWithPostgres('the seed query counts what the live path counts, PostgreSQL', (ctx) => {
  let pool: pg.Pool
  let stores: { usage: PostgresUsageStore; budgets: PostgresBudgetStore }

  beforeAll(async () => {
    pool = createPool(ctx.postgres.url)
    await migrate(pool)
    stores = { usage: new PostgresUsageStore(pool), budgets: new PostgresBudgetStore(pool) }
  })
  afterAll(async () => {
    await pool.end()
  })

  it(
    'for random events and budgets of every scope kind',
    checkStore(() => stores, 60),
  )

  it(
    'counts an event of unknown naming toward an org-wide user budget',
    legacyEventsCount(
      () => stores,
      async (id) => void (await pool.query('UPDATE usage_events SET user_from_key = NULL WHERE id = $1', [id])),
    ),
  )
})
