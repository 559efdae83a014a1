/**
 * Replay prices a call at the OpenAI service tier it was served at. A call recorded at priority
 * (2× the standard prices) that a proposed policy degrades to a cheaper model is still served at
 * priority — the project's setting does not change with the model — so replay must not report it
 * at the cheaper model's standard price, and so overstate what the policy saves.
 *
 * How: usage events written with `insertBatch` to SQLite and to PostgreSQL, the tier only in each
 * event's `price_source` (as the gateway records it), then `runReplay` with the gateway's own
 * replay settings (`gatewayReplaySettings`: the catalogue's prices) under a degrade policy.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { PriceBook } from '../../src/pricing/index.js'
import { emptyUsage } from '../../src/providers/index.js'
import type { ReplayOutcome } from '../../src/replay/engine.js'
import { parsePolicy, policyDataOfText } from '../../src/replay/policy-file.js'
import { runReplay } from '../../src/replay/run.js'
import { gatewayReplaySettings } from '../../src/replay/settings.js'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { PostgresUsageStore } from '../../src/store/postgres/usage-store.js'
import { openSqlite } from '../../src/store/sqlite/db.js'
import { SqliteUsageStore, usageMigrations } from '../../src/store/sqlite/usage-store.js'
import type { UsageEvent, UsageScan, UsageStore } from '../../src/usage/index.js'
import { describeWithPostgres } from '../support/services.js'
import { usageEvent } from '../support/usage-events.js'

const T0 = Date.UTC(2026, 10, 3, 8)
const TEAM = 'team_growth'
const USAGE = { ...emptyUsage(), inputTokens: 10_000, outputTokens: 1_000 }
// Published prices per Mtok: gpt-4o $2.50 in, $10 out; gpt-4o-mini $0.15 in, $0.60 out.
const GPT_4O = 25_000 + 10_000
const GPT_4O_MINI = 1_500 + 600

function anEvent(i: number, tier: 'priority' | undefined): UsageEvent {
  const event = usageEvent({
    id: `tier_${i}`,
    atMs: T0 + i * 1_000,
    orgId: 'default',
    teamId: TEAM,
    environment: 'prod',
    model: 'gpt-4o',
    inputTokens: USAGE.inputTokens,
    outputTokens: USAGE.outputTokens,
    costMicros: tier === 'priority' ? 2 * GPT_4O : GPT_4O,
  })
  // The tier is only in the price source, as the gateway records it.
  return { ...event, priceSource: tier === 'priority' ? 'catalogue:test;service_tier:priority@200%~upper_bound' : 'catalogue:test' }
}

/** The first call, at priority, takes the team past half its budget; the next two are degraded. */
const EVENTS = [anEvent(0, 'priority'), anEvent(1, 'priority'), anEvent(2, undefined)]
const SCAN: UsageScan = { orgId: 'default', fromMs: T0, toMs: T0 + 3_600_000, teamId: undefined, dataMode: undefined }
const POLICY = `budgets:
  - name: growth
    scope: { kind: team, id: ${TEAM} }
    period: daily
    amount_usd: 0.1
    threshold_actions: [{ threshold_percent: 50, action: degrade }]
`

async function replay(store: UsageStore) {
  const policy = parsePolicy(policyDataOfText(POLICY), {
    orgId: 'default',
    channelIds: [],
    costTracking: { enabled: true, walletEnforcement: false, budgetAlerts: [] },
  })
  const deps = {
    priceBook: new PriceBook(),
    budgets: {
      degradeSettings: () => ({ degradeTargetFor: (model: string) => (model === 'gpt-4o' ? 'gpt-4o-mini' : undefined), degradeOutputTokensMax: 4_096 }),
    },
    consumers: { boundUsers: () => new Map<string, string>() },
  }
  const outcomes: ReplayOutcome[] = []
  const report = await runReplay(store, SCAN, gatewayReplaySettings(deps, policy, SCAN.fromMs, SCAN.toMs), { onOutcome: (o) => outcomes.push(o) })
  return { outcomes, report }
}

async function expectPricedAtServedTier(store: UsageStore): Promise<void> {
  const { outcomes, report } = await replay(store)
  expect(outcomes.map((o) => o.replayed)).toEqual(['unenforced', 'degraded', 'degraded'])
  // Degraded to gpt-4o-mini, each at the tier it was served at: priority at 2×, the other at standard.
  expect(outcomes.map((o) => o.costMicros)).toEqual([2 * GPT_4O, 2 * GPT_4O_MINI, GPT_4O_MINI])
  expect(report.scopes[0]!.avoided_micros).toBe(2 * GPT_4O - 2 * GPT_4O_MINI + (GPT_4O - GPT_4O_MINI))
}

let dir: string
let sqlite: SqliteUsageStore
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-replay-tier-'))
  sqlite = new SqliteUsageStore(openSqlite(join(dir, 'usage.sqlite'), usageMigrations))
  await sqlite.insertBatch(EVENTS)
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it('SQLite: a call served at priority and degraded by the policy is replayed at the cheaper model’s priority price', async () => {
  await expectPricedAtServedTier(sqlite)
})

describeWithPostgres('PostgreSQL', (ctx) => {
  let pool: ReturnType<typeof createPool>
  beforeAll(async () => {
    pool = createPool(ctx.postgres.url)
    await migrate(pool)
  })
  afterAll(() => pool?.end())

  it('a call served at priority and degraded by the policy is replayed at the cheaper model’s priority price', async () => {
    const postgres = new PostgresUsageStore(pool)
    await postgres.insertBatch(EVENTS)
    await expectPricedAtServedTier(postgres)
  })
})
