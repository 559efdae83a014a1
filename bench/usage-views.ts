/**
 * `npm run bench -- --usage-views`: every usage view the console calls, over a store of 1 000 000
 * usage events, on the embedded store (SQLite) and, when DATABASE_URL and REDIS_URL are set, on
 * PostgreSQL. The bound: each view's slowest answer under 300 ms.
 *
 * Setup: a fresh store is filled with synthetic traffic over 90 days (5 teams, 60 users, 8 agents,
 * 24 endpoints, 12 prompt versions, 6 models, 3 environments, demo and real, a spike) through the
 * usage store's own `insertBatch`: the first 50 000 with the rollup trigger the live path runs
 * (their write cost is reported), the rest with it off, then the rollups are rebuilt from every
 * event by the migration's SQL (see `populate`). Then an in-process gateway over that store
 * answers the console's requests (fastify `inject`: routing, auth, validation and JSON included,
 * no sockets), each view a few times after one warm-up.
 *
 * The console's date ranges are whole local days; the bench uses a browser 5 hours behind UTC, so
 * no range starts on a UTC day boundary (the rollups' day grain), as for most users.
 *
 *   npm run bench -- --usage-views                 # 1 000 000 events
 *   npm run bench -- --usage-views --events=100000 # a smaller store
 *   npm run bench -- --usage-views --only=sqlite   # one backend (or --only=postgres)
 *
 * Results: a markdown table on stdout and bench/results/usage-views.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { Redis } from 'ioredis'
import { buildApp, type App } from '../src/app.js'
import { startProgress } from '../src/cli/output.js'
import { parseConfig } from '../src/config/index.js'
import { FakeClock } from '../src/lib/clock.js'
import { micros } from '../src/money/index.js'
import { createLogger } from '../src/observability/logger.js'
import { createPool, migrate } from '../src/store/postgres/db.js'
import { PostgresUsageStore } from '../src/store/postgres/usage-store.js'
import { openSqlite } from '../src/store/sqlite/db.js'
import { sqliteMigrations } from '../src/store/sqlite/index.js'
import { SqliteUsageStore, USAGE_COLUMNS, usageRow } from '../src/store/sqlite/usage-store.js'
import { rollupUpsertFromSql } from '../src/store/rows/usage-rollups.js'
import type { UsageEvent } from '../src/usage/types.js'

const BOUND_MS = 300
const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
const DAYS = 90
/** "Now" for the generated store and the gateway's clock: mid-afternoon, so today is partly filled. */
const NOW_MS = Date.UTC(2026, 10, 30, 15, 42, 17)
const START_MS = NOW_MS - DAYS * DAY_MS
/** The browser's offset from UTC: local midnight is 05:00 UTC. */
const BROWSER_OFFSET_MS = -5 * HOUR_MS
const ADMIN = 'tg_admin_usage_views_bench'
const BATCH = 5_000
const RUNS = 7
/** What the console's Overview asks for: the keys its chart draws (console/src/charts.ts, SERIES_KEYS_MAX). */
const OVERVIEW_SERIES_GROUPS = 8
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url))

// ---------------------------------------------------------------------------------------------
// Synthetic traffic

/** Deterministic PRNG (mulberry32): the same store every run. */
export function benchRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const MODELS = [
  { provider: 'openai', model: 'gpt-4o-mini', inMicrosPerK: 150, outMicrosPerK: 600 },
  { provider: 'openai', model: 'gpt-4o', inMicrosPerK: 2_500, outMicrosPerK: 10_000 },
  { provider: 'openai', model: 'o3-mini', inMicrosPerK: 1_100, outMicrosPerK: 4_400 },
  { provider: 'anthropic', model: 'claude-haiku-4-5', inMicrosPerK: 1_000, outMicrosPerK: 5_000 },
  { provider: 'anthropic', model: 'claude-sonnet-4-5', inMicrosPerK: 3_000, outMicrosPerK: 15_000 },
  { provider: 'anthropic', model: 'claude-opus-4-1', inMicrosPerK: 15_000, outMicrosPerK: 75_000 },
] as const
const TEAMS = ['growth', 'search', 'support', 'platform', 'research']
const ENVIRONMENTS = ['production', 'production', 'production', 'production', 'production', 'production', 'staging', 'staging', 'development']

/** A skewed pick: low indexes far more often (a few endpoints carry most traffic). */
const skewed = (r: () => number, n: number) => Math.min(n - 1, Math.floor(n * r() * r()))

/** Event `i` of `count`: times spread evenly over the 90 days, with one spike hour two days ago. */
export function syntheticEvent(i: number, count: number, r: () => number): UsageEvent {
  const atMs = START_MS + Math.floor(((i + r()) * (NOW_MS - START_MS)) / count)
  const spike = atMs >= NOW_MS - 2 * DAY_MS && atMs < NOW_MS - 2 * DAY_MS + HOUR_MS
  const user = skewed(r, 60)
  const m = MODELS[skewed(r, MODELS.length)]!
  const inputTokens = 200 + Math.floor(r() * 4000)
  const outputTokens = 20 + Math.floor(r() * 800)
  const cacheReadTokens = r() < 0.3 ? Math.floor(inputTokens * 0.6) : 0
  const reasoningTokens = m.model === 'o3-mini' ? Math.floor(outputTokens / 2) : 0
  const status = r() < 0.02 ? 'upstream_error' : r() < 0.02 ? 'refused' : 'ok'
  const cost = status === 'ok' ? Math.floor((inputTokens * m.inMicrosPerK + outputTokens * m.outMicrosPerK) / 1000) * (spike ? 20 : 1) : 0
  return {
    id: `ev_${i}`,
    requestId: `req_${i}`,
    atMs,
    attribution: {
      orgId: 'default',
      teamId: TEAMS[user % TEAMS.length],
      userId: `user_${user}`,
      userFromKey: true,
      agentId: r() < 0.5 ? `agent_${skewed(r, 8)}` : undefined,
      keyName: 'app',
      endpointTag: `/api/${['chat', 'search', 'summarize', 'classify', 'extract', 'translate'][skewed(r, 6)]}/${skewed(r, 4)}`,
      promptVersion: r() < 0.7 ? `prompt-v${skewed(r, 12)}` : undefined,
      environment: ENVIRONMENTS[Math.floor(r() * ENVIRONMENTS.length)]!,
    },
    provider: m.provider,
    targetId: m.provider,
    modelRequested: m.model,
    modelServed: m.model,
    endpoint: m.provider === 'anthropic' ? 'messages' : 'chat_completions',
    usage: {
      inputTokens,
      outputTokens,
      cacheReadTokens,
      cacheWriteTokens: 0,
      cacheWrite1hTokens: 0,
      reasoningTokens,
      audioInputTokens: 0,
      audioOutputTokens: 0,
    },
    usageSource: 'reported',
    usageNote: undefined,
    costBreakdown: undefined,
    costMicros: micros(cost),
    priceSource: 'catalogue:bench',
    latencyMs: 200 + Math.floor(r() * 2000),
    status,
    httpStatus: status === 'ok' ? 200 : status === 'refused' ? 402 : 502,
    isStream: r() < 0.4,
    decision: status === 'refused' ? 'insufficient_quota' : 'allowed',
    reservationId: undefined,
    walletId: undefined,
    dataMode: r() < 0.1 ? 'demo' : 'real',
    source: 'gateway',
    externalRequestId: undefined,
  }
}

/** The first events go through the live path (insert + rollup trigger); their cost per event is reported. */
const LIVE_SAMPLE = 50_000

interface Loader {
  insertBatch(events: UsageEvent[]): Promise<void>
  /** Turns the rollup trigger off (bulk load) or on again. */
  setTrigger(on: boolean): Promise<void>
  /** Empties the rollups and rebuilds them from the events: the migration's SQL. */
  rebuild(): Promise<void>
}

export interface Populated {
  /** µs per event written through the live path: insert plus rollup trigger. */
  readonly liveUsPerEvent: number
  /** µs per event written with the trigger off (events only), for the rollups' share. */
  readonly eventsOnlyUsPerEvent: number
  readonly rebuildS: number
}

/**
 * Writes `count` events: the first LIVE_SAMPLE through the store's batch insert with its rollup
 * trigger, the rest with the trigger off, then rebuilds the rollups from all events with the
 * migration's SQL — the same sums the trigger keeps (tests prove them equal), in minutes instead
 * of the half hour 14 upserts per event take on a busy 2-core machine.
 */
async function populate(label: string, count: number, loader: Loader): Promise<Populated> {
  const r = benchRandom(12_345)
  const progress = startProgress(`${label}: writing events`, count)
  const timed: number[] = [0, 0]
  try {
    for (let i = 0; i < count; i += BATCH) {
      const live = i < LIVE_SAMPLE
      if (i === LIVE_SAMPLE) await loader.setTrigger(false)
      const batch = Array.from({ length: Math.min(BATCH, count - i) }, (_, k) => syntheticEvent(i + k, count, r))
      const started = performance.now()
      await loader.insertBatch(batch)
      timed[live ? 0 : 1]! += performance.now() - started
      progress.update(i + batch.length, `${i + batch.length}/${count} events`)
    }
  } finally {
    progress.stop()
    await loader.setTrigger(true)
  }
  process.stderr.write(`${label}: rebuilding rollups from ${count} events\n`)
  const rebuildStarted = performance.now()
  await loader.rebuild()
  return {
    liveUsPerEvent: (timed[0]! * 1000) / Math.min(count, LIVE_SAMPLE),
    eventsOnlyUsPerEvent: count > LIVE_SAMPLE ? (timed[1]! * 1000) / (count - LIVE_SAMPLE) : NaN,
    rebuildS: (performance.now() - rebuildStarted) / 1000,
  }
}

// ---------------------------------------------------------------------------------------------
// The console's views

interface View {
  readonly name: string
  readonly url: string
}

/** `from`/`to` of the console's "last N days" in the bench browser's zone. */
function lastDays(days: number): { from: string; to: string } {
  const localToday = Math.floor((NOW_MS + BROWSER_OFFSET_MS) / DAY_MS) * DAY_MS - BROWSER_OFFSET_MS
  return { from: new Date(localToday - (days - 1) * DAY_MS).toISOString(), to: new Date(localToday + DAY_MS).toISOString() }
}

const qs = (params: Record<string, string | number | undefined>) =>
  '?' +
  Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`)
    .join('&')

/** Every request the Overview, Top and filter bar send (console/src/pages/overview.tsx, top.tsx, components/filters.tsx). */
function views(): View[] {
  const list: View[] = []
  for (const days of [1, 7, 30, 90]) {
    const range = lastDays(days)
    const bucket = days > 14 ? 'day' : 'hour'
    // Overview: spend over time by each breakdown (the series folded to the keys its chart
    // draws), plus the filter bar's environments.
    for (const by of ['team', 'provider', 'model', 'user', 'agent', 'endpoint', 'prompt_version', 'environment']) {
      list.push({
        name: `overview ${days}d by ${by} (${bucket})`,
        url: `/v1/usage${qs({ ...range, group_by: by, bucket, series_groups: OVERVIEW_SERIES_GROUPS })}`,
      })
    }
    list.push({
      name: `overview ${days}d by team, production, real`,
      url: `/v1/usage${qs({ ...range, group_by: 'team', bucket, environment: 'production', data_mode: 'real', series_groups: OVERVIEW_SERIES_GROUPS })}`,
    })
    list.push({ name: `filter bar environments ${days}d`, url: `/v1/usage${qs({ ...range, group_by: 'environment', bucket: 'day' })}` })
    // Top: the totals chart, then three top-10 lists for this window and the previous one.
    list.push({ name: `top ${days}d totals (day)`, url: `/v1/usage${qs({ ...range, bucket: 'day' })}` })
    const previous = { from: new Date(Date.parse(range.from) - days * DAY_MS).toISOString(), to: range.from }
    for (const by of ['endpoint', 'user', 'prompt_version']) {
      list.push({ name: `top ${days}d ${by}`, url: `/v1/usage/top${qs({ ...range, by, limit: 10 })}` })
      list.push({ name: `top ${days}d ${by}, previous window`, url: `/v1/usage/top${qs({ ...previous, by, limit: 50 })}` })
    }
  }
  // An API client's default: the last 7 days to this millisecond (no hour is whole at either end).
  list.push({ name: 'API default range (7 d to now) by user', url: '/v1/usage?group_by=user' })
  // And a client reading every point of the largest series the Overview can ask for, unfolded.
  list.push({ name: 'API week by user in hours, every point', url: `/v1/usage${qs({ ...lastDays(7), group_by: 'user', bucket: 'hour' })}` })
  list.push({ name: 'budgets with posture (overview)', url: '/v1/billing/budgets' })
  list.push({ name: 'event list, first page', url: `/v1/usage/events${qs({ ...lastDays(7), limit: 50 })}` })
  return list
}

/** The budgets the Overview's posture panel shows: the org, each team, and one of each other scope kind. */
async function createBudgets(app: App): Promise<void> {
  const budgets = [
    { name: 'org monthly', scope: { kind: 'org', id: 'default' }, period: 'monthly', amount_usd: 50_000 },
    ...TEAMS.map((team) => ({ name: `${team} monthly`, scope: { kind: 'team', id: team }, period: 'monthly', amount_usd: 10_000 })),
    { name: 'top user daily', scope: { kind: 'user', id: 'user_0' }, period: 'daily', amount_usd: 100 },
    { name: 'chat endpoint weekly', scope: { kind: 'endpoint', id: '/api/chat/0' }, period: 'weekly', amount_usd: 5_000 },
    { name: 'opus monthly', scope: { kind: 'model', id: 'claude-opus-4-1' }, period: 'monthly', amount_usd: 20_000 },
    { name: 'anthropic monthly', scope: { kind: 'provider', id: 'anthropic' }, period: 'monthly', amount_usd: 30_000 },
  ]
  for (const body of budgets) {
    const res = await app.fastify.inject({
      method: 'POST',
      url: '/v1/billing/budgets',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { ...body, alert_thresholds: [50, 80, 95] },
    })
    if (res.statusCode !== 201) throw new Error(`creating budget "${body.name}": HTTP ${res.statusCode} ${res.body.slice(0, 300)}`)
  }
}

export interface ViewTiming {
  readonly view: string
  readonly status: number
  readonly p50Ms: number
  readonly maxMs: number
}

async function timeViews(app: App, label: string): Promise<ViewTiming[]> {
  const list = views()
  const progress = startProgress(`${label}: timing views`, list.length)
  const timings: ViewTiming[] = []
  try {
    for (const [n, view] of list.entries()) {
      const request = () => app.fastify.inject({ method: 'GET', url: view.url, headers: { authorization: `Bearer ${ADMIN}` } })
      const warm = await request()
      const samples: number[] = []
      for (let i = 0; i < RUNS && warm.statusCode !== 404; i++) {
        const started = performance.now()
        const res = await request()
        samples.push(performance.now() - started)
        if (res.statusCode !== 200) throw new Error(`${view.name}: HTTP ${res.statusCode} ${res.body.slice(0, 300)}`)
      }
      samples.sort((a, b) => a - b)
      timings.push({ view: view.name, status: warm.statusCode, p50Ms: samples[Math.floor(samples.length / 2)] ?? NaN, maxMs: samples.at(-1) ?? NaN })
      progress.update(n + 1, view.name)
    }
  } finally {
    progress.stop()
  }
  return timings
}

// ---------------------------------------------------------------------------------------------
// Backends

interface BackendResult {
  readonly backend: string
  readonly events: number
  readonly written: Populated
  readonly rollupRows: number
  readonly timings: ViewTiming[]
}

async function gatewayOver(storage: Record<string, string>, env: Record<string, string>): Promise<App> {
  const yaml = JSON.stringify({ version: '1', storage, providers: { targets: [{ id: 'mock', provider: 'mock' }] } })
  const appEnv = { TOLLGATE_ADMIN_TOKEN: ADMIN, ...env }
  const app = await buildApp(parseConfig(yaml, '<usage-views bench>', { env: appEnv }), {
    env: appEnv,
    clock: new FakeClock(NOW_MS),
    logger: createLogger({ level: 'silent' }),
  })
  await app.fastify.ready()
  return app
}

async function onSqlite(count: number): Promise<BackendResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-usage-views-'))
  try {
    const path = join(dir, 'tollgate.sqlite')
    const db = openSqlite(path, sqliteMigrations)
    const store = new SqliteUsageStore(db)
    // SQLite folds rollups after the commit (no trigger): "off" writes the rows alone, bypassing the store.
    const insertRow = db.prepare(`INSERT INTO usage_events (${USAGE_COLUMNS.join(', ')}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')})`)
    const insertRows = db.transaction((events: readonly UsageEvent[]) => {
      for (const e of events) insertRow.run(usageRow(e))
    })
    let rollupsOn = true
    const written = await populate('SQLite', count, {
      insertBatch: async (events) => (rollupsOn ? store.insertBatch(events) : insertRows.immediate(events)),
      async setTrigger(on) {
        rollupsOn = on
      },
      async rebuild() {
        // Every event is in the rebuilt rollups: the fold's mark moves past them all.
        db.exec(`DELETE FROM usage_rollups; ${rollupUpsertFromSql('usage_events')};
          UPDATE usage_rollups_folded SET through_rowid = (SELECT ifnull(max(rowid), 0) FROM usage_events)`)
      },
    })
    const rollupRows = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM usage_rollups').get()!.n
    db.pragma('optimize')
    db.close()
    const app = await gatewayOver({ sqlite: path }, {})
    try {
      await createBudgets(app)
      return report({ backend: 'SQLite', events: count, written, rollupRows, timings: await timeViews(app, 'SQLite') })
    } finally {
      await app.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function withSearchPath(url: string, schema: string): string {
  const u = new URL(url)
  u.searchParams.set('options', `-c search_path=${schema}`)
  u.search = u.searchParams.toString().replace(/\+/g, '%20')
  return u.toString()
}

async function onPostgres(count: number, databaseUrl: string, redisUrl: string): Promise<BackendResult> {
  const schema = `tg_usage_views_${process.pid}`
  const prefix = `${schema}:`
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  const url = withSearchPath(databaseUrl, schema)
  try {
    const pool = createPool(url, { statementTimeoutMs: 600_000 })
    await migrate(pool)
    const store = new PostgresUsageStore(pool)
    const written = await populate('PostgreSQL', count, {
      insertBatch: (events) => store.insertBatch(events),
      async setTrigger(on) {
        await pool.query(`ALTER TABLE usage_events ${on ? 'ENABLE' : 'DISABLE'} TRIGGER usage_rollups_on_insert`)
      },
      async rebuild() {
        await pool.query(`DELETE FROM usage_rollups; ${rollupUpsertFromSql('usage_events')}`)
      },
    })
    await pool.query('ANALYZE usage_events; ANALYZE usage_rollups')
    const rollupRows = Number((await pool.query('SELECT count(*) AS n FROM usage_rollups')).rows[0].n)
    await pool.end()
    const app = await gatewayOver({ postgres: url, redis: redisUrl }, { TOLLGATE_REDIS_PREFIX: prefix })
    try {
      await createBudgets(app)
      return report({ backend: 'PostgreSQL', events: count, written, rollupRows, timings: await timeViews(app, 'PostgreSQL') })
    } finally {
      await app.close()
    }
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
    const redis = new Redis(redisUrl)
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys)
    redis.disconnect()
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const ms = (v: number) => (Number.isNaN(v) ? '—' : v.toFixed(1))

/** Prints a backend's table as soon as it is measured (the other may take many minutes more). */
function report(result: BackendResult): BackendResult {
  process.stdout.write(`\n${markdown([result])}`)
  return result
}

function markdown(results: readonly BackendResult[]): string {
  const lines: string[] = []
  for (const r of results) {
    const w = r.written
    lines.push(
      `### ${r.backend}: ${r.events.toLocaleString('en-US')} events, ${r.rollupRows.toLocaleString('en-US')} rollup rows`,
      '',
      `Writing: ${w.liveUsPerEvent.toFixed(1)} µs per event with rollups (first ${LIVE_SAMPLE.toLocaleString('en-US')}, the live path), ` +
        `${ms(w.eventsOnlyUsPerEvent)} µs per event without; rollups rebuilt from all events in ${w.rebuildS.toFixed(0)} s.`,
      '',
    )
    lines.push('| view | p50 ms | max ms | within bound |', '| --- | ---: | ---: | --- |')
    for (const t of r.timings) {
      const verdict = t.status === 404 ? 'not served on this build' : t.maxMs < BOUND_MS ? 'yes' : '**NO**'
      lines.push(`| ${t.view} | ${ms(t.p50Ms)} | ${ms(t.maxMs)} | ${verdict} |`)
    }
    lines.push('')
  }
  return lines.join('\n')
}

function failures(results: readonly BackendResult[]): string[] {
  return results.flatMap((r) =>
    r.timings.filter((t) => t.status !== 404 && !(t.maxMs < BOUND_MS)).map((t) => `${r.backend}: ${t.view} took up to ${ms(t.maxMs)} ms`),
  )
}

export async function usageViewsBench(argv: readonly string[] = process.argv): Promise<boolean> {
  const eventsArg = argv.find((a) => a.startsWith('--events='))
  const count = eventsArg ? Number(eventsArg.slice('--events='.length)) : 1_000_000
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`--events: expected a positive integer, got "${eventsArg}"`)
  const only = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length)
  if (only !== undefined && only !== 'sqlite' && only !== 'postgres') throw new Error(`--only: expected sqlite | postgres, got "${only}"`)
  process.stdout.write(`## Usage views over ${count.toLocaleString('en-US')} events (bound: ${BOUND_MS} ms)\n`)
  const results: BackendResult[] = []
  if (only !== 'postgres') results.push(await onSqlite(count))
  const { DATABASE_URL, REDIS_URL } = process.env
  if (only !== 'sqlite') {
    if (DATABASE_URL && REDIS_URL) results.push(await onPostgres(count, DATABASE_URL, REDIS_URL))
    else process.stderr.write('PostgreSQL skipped: set DATABASE_URL and REDIS_URL to measure it too.\n')
  }
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, `usage-views${only ? `-${only}` : ''}.json`), JSON.stringify({ boundMs: BOUND_MS, nowMs: NOW_MS, results }, null, 2))
  const failed = failures(results)
  for (const line of failed) process.stderr.write(`over the bound: ${line}\n`)
  return failed.length === 0
}
