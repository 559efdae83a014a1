/**
 * Replay keeps a call's search fees. A call's web and file searches are billed per call on top of
 * its tokens; the stored event keeps their counts and which fee its web searches paid (a chat
 * search model's by context size, OpenAI's `web_search_preview`, else the model's own), so a call
 * replay prices again — served at a cheaper model by a degrade, or served as requested when the
 * recording degraded it — is charged its searches as the live path would have charged them, not
 * its tokens alone (which would overstate what a policy saves).
 *
 * How: usage events as the gateway records them, written with `insertBatch` to SQLite and to
 * PostgreSQL, then `runReplay` with the gateway's own replay settings (`gatewayReplaySettings`:
 * the catalogue's prices) under a degrade policy. Also: the columns' migrations read the counts of
 * events stored before them out of their cost breakdown, and a usage row journaled in Redis by a
 * gateway of before the columns is stored with no searches.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PriceBook } from '../../src/pricing/index.js'
import { emptyUsage, type Usage } from '../../src/providers/index.js'
import type { ReplayOutcome } from '../../src/replay/engine.js'
import { parsePolicy, policyDataOfText } from '../../src/replay/policy-file.js'
import { runReplay } from '../../src/replay/run.js'
import { gatewayReplaySettings } from '../../src/replay/settings.js'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { postgresMigrations } from '../../src/store/postgres/schema.js'
import { PostgresUsageStore } from '../../src/store/postgres/usage-store.js'
import { openSqlite } from '../../src/store/sqlite/db.js'
import { SqliteUsageStore, USAGE_COLUMNS, usageMigrations, usageRow } from '../../src/store/sqlite/usage-store.js'
import type { WebSearchKind } from '../../src/pricing/index.js'
import type { UsageEvent, UsageScan, UsageStore } from '../../src/usage/index.js'
import { describeWithPostgres } from '../support/services.js'
import { usageEvent } from '../support/usage-events.js'

const T0 = Date.UTC(2026, 10, 3, 8)
const TEAM = 'team_research'
const TOKENS = { ...emptyUsage(), inputTokens: 10_000, outputTokens: 1_000 }
// Published prices: gpt-4o and gpt-4o-search-preview $2.50 in, $10 out per Mtok; their mini
// versions $0.15 in, $0.60 out. A chat search $30 / $35 / $50 per 1,000 (low, medium, high) on
// gpt-4o-search-preview, $25 / $27.50 / $30 on gpt-4o-mini-search-preview; a web_search_preview
// search $25 per 1,000 on non-reasoning models; the web_search tool $10, file_search $2.50.
const GPT_4O = 25_000 + 10_000
const MINI = 1_500 + 600

interface Call {
  readonly id: string
  readonly endpoint: UsageEvent['endpoint']
  readonly requested: string
  readonly served?: string
  readonly usage: Usage
  readonly kind?: WebSearchKind
  readonly costMicros: number
  readonly decision?: UsageEvent['decision']
}

function anEvent(i: number, call: Call): UsageEvent {
  const event = usageEvent({ id: call.id, atMs: T0 + i * 1_000, orgId: 'default', teamId: TEAM, environment: 'prod', costMicros: call.costMicros })
  return {
    ...event,
    endpoint: call.endpoint,
    modelRequested: call.requested,
    modelServed: call.served ?? call.requested,
    usage: call.usage,
    ...(call.kind !== undefined && { webSearchKind: call.kind }),
    decision: call.decision ?? 'allowed',
  }
}

/** The first call takes the team past half its budget; every later one is degraded. */
const CALLS: readonly Call[] = [
  { id: 'plain', endpoint: 'chat_completions', requested: 'gpt-4o', usage: TOKENS, costMicros: GPT_4O },
  // n: 3 on a search model at the low size: three searches.
  {
    id: 'chat_n3',
    endpoint: 'chat_completions',
    requested: 'gpt-4o-search-preview',
    usage: { ...TOKENS, webSearches: 3 },
    kind: 'chat:low',
    costMicros: GPT_4O + 3 * 30_000,
  },
  {
    id: 'preview',
    endpoint: 'responses',
    requested: 'gpt-4o',
    usage: { ...TOKENS, webSearches: 2 },
    kind: 'web_search_preview',
    costMicros: GPT_4O + 2 * 25_000,
  },
  {
    id: 'tools',
    endpoint: 'responses',
    requested: 'gpt-4o',
    usage: { ...TOKENS, webSearches: 2, fileSearches: 4 },
    costMicros: GPT_4O + 2 * 10_000 + 4 * 2_500,
  },
  // Recorded degraded: asked for gpt-4o-search-preview, served by the mini, one medium search.
  {
    id: 'was_degraded',
    endpoint: 'chat_completions',
    requested: 'gpt-4o-search-preview',
    served: 'gpt-4o-mini-search-preview',
    usage: { ...TOKENS, webSearches: 1 },
    kind: 'chat:medium',
    costMicros: MINI + 27_500,
    decision: 'degraded',
  },
]
const EVENTS = CALLS.map((call, i) => anEvent(i, call))

const SCAN: UsageScan = { orgId: 'default', fromMs: T0, toMs: T0 + 3_600_000, teamId: undefined, dataMode: undefined }
const POLICY = `budgets:
  - name: research
    scope: { kind: team, id: ${TEAM} }
    period: daily
    amount_usd: 0.06
    threshold_actions: [{ threshold_percent: 50, action: degrade }]
`
const CHEAPER: Record<string, string> = { 'gpt-4o': 'gpt-4o-mini', 'gpt-4o-search-preview': 'gpt-4o-mini-search-preview' }

async function replay(store: UsageStore): Promise<ReplayOutcome[]> {
  const policy = parsePolicy(policyDataOfText(POLICY), {
    orgId: 'default',
    channelIds: [],
    costTracking: { enabled: true, walletEnforcement: false, budgetAlerts: [] },
  })
  const deps = {
    priceBook: new PriceBook(),
    budgets: { degradeSettings: () => ({ degradeTargetFor: (model: string) => CHEAPER[model], degradeOutputTokensMax: 4_096 }) },
    consumers: { boundUsers: () => new Map<string, string>() },
  }
  const outcomes: ReplayOutcome[] = []
  await runReplay(store, SCAN, gatewayReplaySettings(deps, policy, SCAN.fromMs, SCAN.toMs), { onOutcome: (o) => outcomes.push(o) })
  return outcomes
}

async function expectSearchFeesKept(store: UsageStore): Promise<void> {
  const scanned = await store.scan(SCAN, undefined, 100)
  expect(scanned.map((e) => [e.usage.webSearches, e.usage.fileSearches, e.webSearchKind])).toEqual([
    [undefined, undefined, undefined],
    [3, undefined, 'chat:low'],
    [2, undefined, 'web_search_preview'],
    [2, 4, undefined],
    [1, undefined, 'chat:medium'],
  ])

  const outcomes = await replay(store)
  expect(outcomes.map((o) => o.replayed)).toEqual(['unenforced', 'degraded', 'degraded', 'degraded', 'degraded'])
  expect(outcomes.map((o) => o.costMicros)).toEqual([
    GPT_4O,
    // At gpt-4o-mini-search-preview: three low searches at its $25 per 1,000.
    MINI + 3 * 25_000,
    // At gpt-4o-mini: web_search_preview's $25 per 1,000 still.
    MINI + 2 * 25_000,
    // At gpt-4o-mini: the web_search tool's $10 and file_search's $2.50 per 1,000.
    MINI + 2 * 10_000 + 4 * 2_500,
    // Served as recorded.
    MINI + 27_500,
  ])
  // The call the recording degraded, served as requested: gpt-4o-search-preview's tokens and its medium search.
  expect(outcomes[4]!.baselineMicros).toBe(GPT_4O + 35_000)
}

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-replay-searches-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('SQLite', () => {
  it('a call replayed at another model, or as requested, keeps its search fees', async () => {
    const sqlite = new SqliteUsageStore(openSqlite(join(dir, 'usage.sqlite'), usageMigrations))
    await sqlite.insertBatch(EVENTS)
    await expectSearchFeesKept(sqlite)
  })

  it('usage-0009 reads the searches of events stored before it out of their cost breakdown', async () => {
    const path = join(dir, 'before.sqlite')
    const before = openSqlite(
      path,
      usageMigrations.filter((m) => m.id !== 'usage-0009-server-searches'),
    )
    const columns = USAGE_COLUMNS.filter((c) => !['web_searches', 'file_searches', 'web_search_kind'].includes(c))
    const insert = before.prepare(`INSERT INTO usage_events (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`)
    for (const event of OLD_EVENTS) insert.run(usageRow(event).slice(0, columns.length))
    before.close()
    const after = new SqliteUsageStore(openSqlite(path, usageMigrations))
    expect(await searchesOf(after)).toEqual(OLD_SEARCHES)
  })
})

/** Events as a gateway of before the columns stored them: the searches only in the breakdown. */
const OLD_EVENTS: UsageEvent[] = [
  withBreakdown(anEvent(0, CALLS[1]!), [['web_search', 3, 30_000]], 'chat_completions'),
  withBreakdown(anEvent(1, CALLS[2]!), [['web_search', 2, 25_000]], 'responses', ';fallback:web_search'),
  withBreakdown(
    anEvent(2, CALLS[3]!),
    [
      ['web_search', 2, 10_000],
      ['file_search', 4, 2_500],
    ],
    'responses',
  ),
  withBreakdown(anEvent(3, CALLS[0]!), [], 'chat_completions'),
]
const OLD_SEARCHES = [
  { id: 'chat_n3', web: 3, file: 0, kind: 'chat:unknown' },
  { id: 'preview', web: 2, file: 0, kind: 'web_search_preview' },
  { id: 'tools', web: 2, file: 4, kind: undefined },
  { id: 'plain', web: 0, file: 0, kind: undefined },
]

function withBreakdown(event: UsageEvent, searches: Array<[string, number, number]>, endpoint: UsageEvent['endpoint'], fallback = ''): UsageEvent {
  const parts = [
    { part: 'input', tokens: 10_000, unitMicrosPerMtok: 2_500_000, costMicros: 25_000, fallback: false },
    ...searches.map(([part, calls, each]) => ({
      part,
      tokens: calls,
      unitMicrosPerMtok: each * 1_000_000,
      costMicros: calls * each,
      fallback: fallback !== '',
    })),
  ]
  const { webSearchKind: _kind, ...rest } = event
  return {
    ...rest,
    endpoint,
    priceSource: `catalogue:test${fallback}`,
    costBreakdown: { parts, totalMicros: event.costMicros, tier: 'standard' } as unknown as UsageEvent['costBreakdown'],
  }
}

async function searchesOf(store: UsageStore) {
  const events = await store.listEvents({ orgId: 'default', fromMs: T0, toMs: T0 + 3_600_000, limit: 100 })
  return events
    .sort((a, b) => a.atMs - b.atMs)
    .map((e) => ({ id: e.id, web: e.usage.webSearches ?? 0, file: e.usage.fileSearches ?? 0, kind: e.webSearchKind }))
}

describeWithPostgres('PostgreSQL', (ctx) => {
  let pool: ReturnType<typeof createPool>
  beforeAll(async () => {
    pool = createPool(ctx.postgres.url)
  })
  afterAll(() => pool?.end())

  it('usage-0007 reads the searches of events stored before it out of their cost breakdown', async () => {
    await migrate(
      pool,
      postgresMigrations.filter((m) => m.id !== 'usage-0007-server-searches'),
    )
    const columns = USAGE_COLUMNS.filter((c) => !['web_searches', 'file_searches', 'web_search_kind'].includes(c))
    for (const event of OLD_EVENTS) {
      const values = usageRow(event).slice(0, columns.length)
      await pool.query(`INSERT INTO usage_events (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, values)
    }
    await migrate(pool)
    expect(await searchesOf(new PostgresUsageStore(pool))).toEqual(OLD_SEARCHES)
    await pool.query('DELETE FROM usage_events')
  })

  it('a call replayed at another model, or as requested, keeps its search fees', async () => {
    const postgres = new PostgresUsageStore(pool)
    await postgres.insertBatch(EVENTS)
    await expectSearchFeesKept(postgres)
  })

  it('a usage row journaled by a gateway of before the columns is stored with no searches', async () => {
    const postgres = new PostgresUsageStore(pool)
    const old = { ...EVENTS[0]!, id: 'journaled_old', atMs: T0 + 3_700_000 }
    const row = JSON.parse(JSON.stringify(usageRow(old))) as unknown[]
    expect(await postgres.insertRows([JSON.stringify(row.slice(0, row.length - 3))])).toBe(1)
    const [stored] = await postgres.listEvents({ orgId: 'default', fromMs: old.atMs, toMs: old.atMs + 1, limit: 1 })
    expect(stored).toMatchObject({ id: 'journaled_old', costMicros: GPT_4O })
    expect(stored!.usage.webSearches).toBeUndefined()
  })
})
