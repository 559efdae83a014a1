/**
 * The usage store's `scan`, which replay reads windows through, on SQLite and on PostgreSQL: pages
 * of any size return exactly the window's events, oldest first (ties by id), none twice, none
 * missed — with many events sharing a millisecond across page edges — filtered by team and data
 * mode. And a replay over the same events reports the same on both stores.
 *
 * How: the real adapters (a temp SQLite file; a fresh PostgreSQL schema), events written with
 * `insertBatch`, pages of 7 so that page edges fall inside runs of equal times.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { micros } from '../../src/money/index.js'
import { emptyUsage } from '../../src/providers/index.js'
import { runReplay } from '../../src/replay/run.js'
import { parsePolicy, policyDataOfText } from '../../src/replay/policy-file.js'
import type { ReplaySettings } from '../../src/replay/engine.js'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { PostgresUsageStore } from '../../src/store/postgres/usage-store.js'
import { openSqlite } from '../../src/store/sqlite/db.js'
import { SqliteUsageStore, usageMigrations } from '../../src/store/sqlite/usage-store.js'
import type { ScanCursor, UsageEvent, UsageScan, UsageStore } from '../../src/usage/index.js'
import { describeWithPostgres } from '../support/services.js'

const T0 = Date.UTC(2026, 10, 3, 8)
const COUNT = 120

/** Events in bursts: every 5 share one millisecond; teams and data modes alternate. */
function events(): UsageEvent[] {
  return Array.from({ length: COUNT }, (_, i) => ({
    id: `evt_scan_${String((i * 37) % COUNT).padStart(4, '0')}`,
    requestId: `req_${i}`,
    atMs: T0 + Math.floor(i / 5) * 1000,
    attribution: {
      orgId: 'default',
      teamId: i % 3 === 0 ? 'team_b' : 'team_a',
      // Every other event names carol; half of those had her as the key's own user.
      userId: i % 2 === 1 ? 'carol' : undefined,
      userFromKey: i % 4 === 1,
      agentId: undefined,
      keyName: 'k',
      endpointTag: 'chat',
      promptVersion: undefined,
      environment: 'prod',
    },
    provider: 'openai',
    targetId: 'openai',
    modelRequested: 'gpt-4o',
    modelServed: 'gpt-4o',
    endpoint: 'chat_completions',
    usage: { ...emptyUsage(), inputTokens: 10 + i, outputTokens: 5 },
    usageSource: 'reported',
    usageNote: undefined,
    costBreakdown: undefined,
    costMicros: micros(1_000 + i),
    priceSource: 'test',
    latencyMs: 1,
    status: 'ok',
    httpStatus: 200,
    isStream: false,
    decision: 'unenforced',
    reservationId: undefined,
    walletId: undefined,
    dataMode: i % 10 === 9 ? 'demo' : 'real',
    source: i % 4 === 0 ? 'ingest' : 'gateway',
    externalRequestId: undefined,
  }))
}

async function scanAll(store: UsageStore, scan: UsageScan, pageSize: number): Promise<string[]> {
  const ids: string[] = []
  let cursor: ScanCursor | undefined
  for (;;) {
    const page = await store.scan(scan, cursor, pageSize)
    ids.push(...page.map((e) => e.id))
    if (page.length < pageSize) return ids
    cursor = { atMs: page.at(-1)!.atMs, id: page.at(-1)!.id }
  }
}

/** Each scanned event's user attribution, by id: whether it was the key's own is read as stored. */
async function userFacts(store: UsageStore): Promise<Map<string, [string | undefined, boolean, boolean | undefined]>> {
  const page = await store.scan(SCANS[0]!, undefined, 1000)
  return new Map(page.map((e) => [e.id, [e.attribution.userId, e.attribution.userFromKey, e.userFromKeyStored]]))
}

function storedUserFacts(): Map<string, [string | undefined, boolean, boolean | undefined]> {
  return new Map(events().map((e) => [e.id, [e.attribution.userId, e.attribution.userFromKey, true]]))
}

/** What a scan must return: the window's events, filtered, ordered by (at, id). */
function expected(all: readonly UsageEvent[], scan: UsageScan): string[] {
  return all
    .filter((e) => e.attribution.orgId === scan.orgId && e.atMs >= scan.fromMs && e.atMs < scan.toMs)
    .filter((e) => scan.teamId === undefined || e.attribution.teamId === scan.teamId)
    .filter((e) => scan.dataMode === undefined || e.dataMode === scan.dataMode)
    .sort((a, b) => a.atMs - b.atMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((e) => e.id)
}

const SCANS: UsageScan[] = [
  { orgId: 'default', fromMs: T0, toMs: T0 + 3_600_000, teamId: undefined, dataMode: undefined },
  { orgId: 'default', fromMs: T0 + 3_000, toMs: T0 + 17_000, teamId: undefined, dataMode: 'real' },
  { orgId: 'default', fromMs: T0, toMs: T0 + 3_600_000, teamId: 'team_b', dataMode: 'real' },
  { orgId: 'other', fromMs: T0, toMs: T0 + 3_600_000, teamId: undefined, dataMode: undefined },
]

const settings = (): ReplaySettings => ({
  policy: parsePolicy(policyDataOfText('budgets:\n  - { name: a, scope: { kind: team, id: team_a }, period: daily, amount_usd: 0.05, hard_limit: true }\n'), {
    orgId: 'default',
    channelIds: [],
    costTracking: { enabled: true, walletEnforcement: false, budgetAlerts: [] },
  }),
  degrade: { degradeOutputTokensMax: 1024 },
  walletDegradeOutputTokensMax: 1024,
  repriceAt: () => undefined,
  userFromKey: () => false,
  bucketMs: 3_600_000,
})

let dir: string
let sqlite: SqliteUsageStore
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-scan-'))
  sqlite = new SqliteUsageStore(openSqlite(join(dir, 'usage.sqlite'), usageMigrations))
  await sqlite.insertBatch(events())
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it('SQLite: every page size returns the window exactly, in order', async () => {
  for (const scan of SCANS) {
    for (const pageSize of [1, 7, 1000]) expect(await scanAll(sqlite, scan, pageSize)).toEqual(expected(events(), scan))
  }
})

it("SQLite: a scanned event says whether its user was the key's own, as stored", async () => {
  expect(await userFacts(sqlite)).toEqual(storedUserFacts())
})

describeWithPostgres('PostgreSQL', (ctx) => {
  let pool: ReturnType<typeof createPool>
  let postgres: PostgresUsageStore
  beforeAll(async () => {
    pool = createPool(ctx.postgres.url)
    await migrate(pool)
    postgres = new PostgresUsageStore(pool)
    await postgres.insertBatch(events())
  })
  afterAll(() => pool?.end())

  it('every page size returns the window exactly, in order', async () => {
    for (const scan of SCANS) {
      for (const pageSize of [1, 7, 1000]) expect(await scanAll(postgres, scan, pageSize)).toEqual(expected(events(), scan))
    }
  })

  it("a scanned event says whether its user was the key's own, as stored", async () => {
    expect(await userFacts(postgres)).toEqual(storedUserFacts())
  })

  it('a replay reports the same on both stores', async () => {
    const scan = SCANS[0]!
    const onSqlite = await runReplay(sqlite, scan, settings(), { pageSize: 7 })
    const onPostgres = await runReplay(postgres, scan, settings(), { pageSize: 7 })
    expect(onSqlite.totals.decisions.budget_cap_exceeded).toBeGreaterThan(0)
    expect(onPostgres).toEqual(onSqlite)
  })
})
