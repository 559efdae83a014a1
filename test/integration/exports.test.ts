/**
 * Export jobs end to end through the admin API, on both stores: a generated data set (tricky
 * text, zero and large costs, several teams and days) exported as CSV and as NDJSON matches the
 * store row for row, inside the range and in (time, id) order; money is integer micros with an
 * exact USD string beside it. A team_admin's export holds only its team (asking for another is
 * 403; the org's jobs are 404 to it); the console's session cookie downloads; bad input is a 400
 * naming the field and starts nothing. On PostgreSQL, two gateway processes share the queue and
 * every job is written once.
 *
 * How: buildApp() instances with their export runner started, requests through inject(); the
 * events are written with the usage store's own insert; expected rows are built from the
 * generated events, not from the exporter's code.
 */
import { readdirSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../../src/app.js'
import { parseConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/observability/logger.js'
import type { UsageEvent } from '../../src/usage/index.js'
import { csvObjects } from '../support/csv.js'
import { ADMIN_TOKEN, buildTestApp, type TestApp } from '../support/gateway.js'
import { describeWithBoth } from '../support/services.js'
import { generateEvents } from '../support/usage-data.js'

const DAY_MS = 86_400_000
const data = generateEvents(3_000)
/** Days 2 to 8 of the 10 generated: rows on both sides of the range must be left out. */
const fromMs = data.fromMs + 2 * DAY_MS
const toMs = data.fromMs + 8 * DAY_MS
const range = { date_from: new Date(fromMs).toISOString(), date_to: new Date(toMs).toISOString() }

type Json = Record<string, any>

function call(app: App, method: 'GET' | 'POST', url: string, auth: string | { cookie: string; csrf?: string }, body?: unknown) {
  const headers: Record<string, string> =
    typeof auth === 'string' ? { authorization: `Bearer ${auth}` } : { cookie: auth.cookie, ...(auth.csrf ? { 'x-tollgate-csrf': auth.csrf } : {}) }
  if (body !== undefined) headers['content-type'] = 'application/json'
  return app.fastify.inject({ method, url, headers, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) })
}

async function waitForJob(app: App, token: string, id: string, timeoutMs = 30_000): Promise<Json> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const job = (await call(app, 'GET', `/v1/export-jobs/${id}`, token)).json()
    if (job.status === 'completed' || job.status === 'failed') return job
    if (Date.now() > deadline) throw new Error(`export ${id} still ${job.status} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Starts an export, waits for it and downloads the file. */
async function runExport(app: App, token: string, body: Json): Promise<{ job: Json; text: string; headers: Json }> {
  const created = await call(app, 'POST', '/v1/export-jobs', token, body)
  expect(created.statusCode, created.body).toBe(202)
  expect(created.json()).toMatchObject({ status: 'queued', progress: 0, rows_written: 0, download_url: null })
  const job = await waitForJob(app, token, created.json().id)
  expect(job, JSON.stringify(job)).toMatchObject({ status: 'completed', progress: 1, error: null })
  const download = await call(app, 'GET', job.download_url, token)
  expect(download.statusCode).toBe(200)
  return { job, text: download.body, headers: download.headers }
}

function inRange(events: readonly UsageEvent[], filter: (e: UsageEvent) => boolean = () => true): UsageEvent[] {
  return events.filter((e) => e.atMs >= fromMs && e.atMs < toMs && filter(e)).sort((a, b) => a.atMs - b.atMs || (a.id < b.id ? -1 : 1))
}

const usdText = (m: number) => `${Math.floor(m / 1e6)}.${String(m % 1e6).padStart(6, '0')}`

/** An event as an export row should read: JSON types (NDJSON); the CSV is its text form. */
function expectedRow(e: UsageEvent): Json {
  const a = e.attribution
  const u = e.usage
  return {
    id: e.id,
    request_id: e.requestId,
    occurred_at: new Date(e.atMs).toISOString(),
    team_id: a.teamId ?? null,
    user_id: a.userId ?? null,
    agent_id: a.agentId ?? null,
    key_name: a.keyName ?? null,
    endpoint_tag: a.endpointTag ?? null,
    prompt_version: a.promptVersion ?? null,
    environment: a.environment,
    provider: e.provider,
    model_requested: e.modelRequested,
    model_served: e.modelServed,
    endpoint: e.endpoint,
    status: e.status,
    http_status: e.httpStatus,
    is_stream: e.isStream,
    decision: e.decision,
    data_mode: e.dataMode,
    source: e.source,
    external_request_id: null,
    input_tokens: u.inputTokens,
    cache_read_tokens: u.cacheReadTokens,
    cache_write_tokens: u.cacheWriteTokens,
    cache_write_1h_tokens: u.cacheWrite1hTokens,
    output_tokens: u.outputTokens,
    reasoning_tokens: u.reasoningTokens,
    audio_input_tokens: u.audioInputTokens,
    audio_output_tokens: u.audioOutputTokens,
    web_searches: u.webSearches ?? 0,
    file_searches: u.fileSearches ?? 0,
    web_search_kind: e.webSearchKind ?? null,
    cost_micros: e.costMicros,
    cost_usd: usdText(e.costMicros),
    price_source: e.priceSource,
    usage_source: e.usageSource,
    usage_note: null,
    latency_ms: e.latencyMs,
    reservation_id: null,
    wallet_id: null,
    cost_breakdown: e.costBreakdown ?? null,
  }
}

function asCsvText(row: Json): Record<string, string> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)]))
}

/** The generated events, exported both ways, against the store. */
async function expectRowForRow(app: App, token: string, events: readonly UsageEvent[]): Promise<void> {
  const expected = inRange(events)
  expect(expected.length).toBeGreaterThan(1_000)
  expect(expected.length).toBeLessThan(events.length)

  const csv = await runExport(app, token, { type: 'events', format: 'csv', ...range })
  expect(csv.headers['content-type']).toMatch(/^text\/csv/)
  expect(csv.headers['content-disposition']).toBe(`attachment; filename="tollgate-events-20260503-20260509-${csv.job.id}.csv"`)
  expect(csv.text.split('\r\n')[0]).toBe(Object.keys(expectedRow(expected[0]!)).join(','))
  const rows = csvObjects(csv.text)
  expect(rows).toHaveLength(expected.length)
  for (const [i, event] of expected.entries()) expect(rows[i]).toEqual(asCsvText(expectedRow(event)))
  expect(csv.job).toMatchObject({ rows_written: expected.length, rows_total: expected.length, bytes: Buffer.byteLength(csv.text) })

  const ndjson = await runExport(app, token, { type: 'events', format: 'ndjson', ...range })
  expect(ndjson.headers['content-type']).toMatch(/^application\/x-ndjson/)
  const lines = ndjson.text.split('\n')
  expect(lines.pop()).toBe('')
  expect(lines.map((line) => JSON.parse(line))).toEqual(expected.map(expectedRow))
}

describe('exports on SQLite', () => {
  let t: TestApp
  let teamAdmin: string
  let viewer: string

  beforeAll(async () => {
    t = await buildTestApp()
    await t.app.exports.start()
    await t.app.stores.usage.insertBatch(data.events)
    const token = async (role: string, team?: string) => {
      const res = await call(t.app, 'POST', '/v1/admin-tokens', ADMIN_TOKEN, { name: `${role}-${team ?? 'org'}`, role, ...(team ? { team_id: team } : {}) })
      expect(res.statusCode, res.body).toBe(201)
      return res.json().token as string
    }
    teamAdmin = await token('team_admin', 'team_a')
    viewer = await token('viewer')
  })
  afterAll(async () => t?.close())

  it('exports the generated events row for row, as CSV and as NDJSON', async () => {
    await expectRowForRow(t.app, ADMIN_TOKEN, data.events)
    // Only finished files are in the folder: no partial file is left behind.
    expect(readdirSync(t.app.exports.dir).filter((n) => n.endsWith('.partial'))).toEqual([])
  })

  it('a team_admin exports only its team; another team is 403; the org’s jobs are 404 to it', async () => {
    const own = await runExport(t.app, teamAdmin, { type: 'events', format: 'csv', ...range })
    const rows = csvObjects(own.text)
    expect(rows.map((r) => r.id)).toEqual(inRange(data.events, (e) => e.attribution.teamId === 'team_a').map((e) => e.id))
    expect(own.job.scope).toEqual({ team_id: 'team_a', user_id: null })

    const other = await call(t.app, 'POST', '/v1/export-jobs', teamAdmin, { type: 'events', format: 'csv', ...range, scope: { team_id: 'team_b' } })
    expect(other.statusCode).toBe(403)
    expect(other.json().error.message).toMatch(/scope\.team_id/)

    const orgJob = await runExport(t.app, ADMIN_TOKEN, { type: 'events', format: 'ndjson', ...range, scope: { user_id: 'user_3' } })
    expect(orgJob.text.trim().split('\n')).toHaveLength(inRange(data.events, (e) => e.attribution.userId === 'user_3').length)
    expect((await call(t.app, 'GET', `/v1/export-jobs/${orgJob.job.id}`, teamAdmin)).statusCode).toBe(404)
    expect((await call(t.app, 'GET', `/v1/export-jobs/${orgJob.job.id}/download`, teamAdmin)).statusCode).toBe(404)
    const listed = (await call(t.app, 'GET', '/v1/export-jobs', teamAdmin)).json().data.map((j: Json) => j.id)
    expect(listed).toContain(own.job.id)
    expect(listed).not.toContain(orgJob.job.id)
    // A viewer of the whole org may export it too.
    expect(csvObjects((await runExport(t.app, viewer, { type: 'events', format: 'csv', ...range })).text)).toHaveLength(inRange(data.events).length)
  })

  it('the console’s session cookie starts an export (with the CSRF header) and downloads it', async () => {
    const signIn = await call(t.app, 'POST', '/v1/session', ADMIN_TOKEN, { token: ADMIN_TOKEN })
    const session = { cookie: `tollgate_session=${signIn.cookies.find((c) => c.name === 'tollgate_session')!.value}`, csrf: signIn.json().csrf_token as string }
    expect((await call(t.app, 'POST', '/v1/export-jobs', { cookie: session.cookie }, { type: 'budgets', format: 'csv', ...range })).statusCode).toBe(403)
    const created = await call(t.app, 'POST', '/v1/export-jobs', session, { type: 'events', format: 'csv', ...range })
    expect(created.statusCode).toBe(202)
    const job = await waitForJob(t.app, ADMIN_TOKEN, created.json().id)
    const download = await call(t.app, 'GET', job.download_url, { cookie: session.cookie })
    expect(download.statusCode).toBe(200)
    expect(csvObjects(download.body)).toHaveLength(inRange(data.events).length)
  })

  it('ledger and budgets: a team_admin gets its team’s wallet entries and budget periods, money in micros and USD', async () => {
    for (const [team, amount] of [
      ['team_a', '12.5'],
      ['team_b', '3'],
      ['team_a', '0.000001'],
    ] as const) {
      expect((await call(t.app, 'POST', '/v1/wallets/allocate', ADMIN_TOKEN, { team_id: team, amount, currency: 'USD' })).statusCode).toBe(201)
    }
    const budget = await call(t.app, 'POST', '/v1/billing/budgets', ADMIN_TOKEN, {
      name: 'A monthly',
      scope: { kind: 'team', id: 'team_a' },
      period: 'monthly',
      amount_usd: 500,
    })
    expect(budget.statusCode, budget.body).toBe(201)
    await call(t.app, 'POST', '/v1/billing/budgets', ADMIN_TOKEN, {
      name: 'B monthly',
      scope: { kind: 'team', id: 'team_b' },
      period: 'monthly',
      amount_usd: 50,
    })
    const now = Date.now()
    const window = { date_from: new Date(now - DAY_MS).toISOString(), date_to: new Date(now + DAY_MS).toISOString() }

    const ledger = csvObjects((await runExport(t.app, teamAdmin, { type: 'ledger', format: 'csv', ...window })).text)
    expect(ledger.map((r) => [r.wallet_scope, r.team_id, r.amount_micros, r.amount_usd])).toEqual([
      ['team:team_a', 'team_a', '12500000', '12.500000'],
      ['team:team_a', 'team_a', '1', '0.000001'],
    ])
    const budgets = (await runExport(t.app, teamAdmin, { type: 'budgets', format: 'ndjson', ...window })).text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(budgets).toEqual([
      expect.objectContaining({
        budget_id: budget.json().id,
        name: 'A monthly',
        scope_kind: 'team',
        scope_id: 'team_a',
        period: 'monthly',
        amount_micros: 500_000_000,
        amount_usd: '500.000000',
        spent_micros: 0,
      }),
    ])
    expect(budgets[0].period_key).toBe(new Date(now).toISOString().slice(0, 7))
  })

  it.each([
    [{ format: 'csv', ...range }, 'type', /expected events \| ledger \| budgets/],
    [{ type: 'wallets', format: 'csv', ...range }, 'type', /expected events \| ledger \| budgets/],
    [{ type: 'events', format: 'xlsx', ...range }, 'format', /expected csv \| ndjson/],
    [{ type: 'events', format: 'csv', date_from: 'yesterday', date_to: range.date_to }, 'date_from', /ISO-8601/],
    [{ type: 'events', format: 'csv', date_from: range.date_to, date_to: range.date_from }, 'date_to', /"date_to" must be after "date_from"/],
    [{ type: 'events', format: 'csv', ...range, scope: { team_id: 7 } }, 'scope.team_id', /string/],
    [{ type: 'events', format: 'csv', ...range, colour: 'red' }, 'body', /colour/],
  ])('refuses %j with a 400 naming %s, and starts nothing', async (body, field, message) => {
    const before = (await call(t.app, 'GET', '/v1/export-jobs', ADMIN_TOKEN)).json().data.length
    const res = await call(t.app, 'POST', '/v1/export-jobs', ADMIN_TOKEN, body)
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('invalid_request')
    expect(res.json().error.issues).toEqual(expect.arrayContaining([{ path: field, message: expect.stringMatching(message) }]))
    expect((await call(t.app, 'GET', '/v1/export-jobs', ADMIN_TOKEN)).json().data.length).toBe(before)
  })

  it('takes epoch milliseconds as JSON numbers or strings of digits, like ISO-8601 instants', async () => {
    for (const [from, to] of [
      [fromMs, toMs],
      [String(fromMs), String(toMs)],
    ]) {
      const res = await call(t.app, 'POST', '/v1/export-jobs', ADMIN_TOKEN, { type: 'events', format: 'csv', date_from: from, date_to: to })
      expect(res.statusCode, res.body).toBe(202)
      expect(res.json()).toMatchObject({ date_from: range.date_from, date_to: range.date_to })
      expect((await waitForJob(t.app, ADMIN_TOKEN, res.json().id)).status).toBe('completed')
    }
  })

  it('a download before completion is a 409; an unknown job is a 404', async () => {
    // No runner here from now on: the jobs below are held by workers the test plays itself.
    await t.app.exports.stop()
    const job = await t.app.stores.exports.createExportJob({
      id: 'exp_not_claimable',
      orgId: 'default',
      type: 'events',
      format: 'csv',
      fromMs,
      toMs,
      scope: { teamId: undefined, userId: undefined },
      createdBy: 'test',
      createdAtMs: Date.now() + 3_600_000,
    })
    // Claimed by a worker that is not running it, so it stays `running` for the lease.
    await t.app.stores.exports.claimExportJob('elsewhere', Date.now(), Date.now() + 60_000, 3)
    const res = await call(t.app, 'GET', `/v1/export-jobs/${job.id}/download`, ADMIN_TOKEN)
    expect(res.statusCode).toBe(409)
    expect(res.json().error.message).toMatch(/is running/)
    expect((await call(t.app, 'GET', '/v1/export-jobs/exp_nope', ADMIN_TOKEN)).statusCode).toBe(404)
  })

  it('a job whose process keeps dying is failed, visibly, after the last attempt', async () => {
    const store = t.app.stores.exports
    const job = await store.createExportJob({
      id: 'exp_keeps_dying',
      orgId: 'default',
      type: 'events',
      format: 'csv',
      fromMs,
      toMs,
      scope: { teamId: undefined, userId: undefined },
      createdBy: 'test',
      createdAtMs: Date.now() + 7_200_000,
    })
    // Two workers each claim it and "die" (their lease runs out without progress).
    const now = Date.now()
    for (const worker of ['w1', 'w2']) {
      const claimed = await store.claimExportJob(worker, now, now - 1, 2)
      expect(claimed).toMatchObject({ id: job.id, workerId: worker })
    }
    expect(await store.claimExportJob('w3', now, now + 1_000, 2)).toBeUndefined()
    const shown = (await call(t.app, 'GET', `/v1/export-jobs/${job.id}`, ADMIN_TOKEN)).json()
    expect(shown).toMatchObject({ status: 'failed', attempts: 2, download_url: null, error: expect.stringMatching(/stopped 2 times before it finished/) })
    // The dead workers cannot report anything any more.
    expect(await store.completeExportJob(job.id, 'w2', { rowsWritten: 1, bytes: 1, atMs: now })).toBe(false)
    expect((await call(t.app, 'GET', `/v1/export-jobs/${job.id}/download`, ADMIN_TOKEN)).json().error.message).toMatch(/is failed: the gateway process/)
  })
})

describeWithBoth('exports on PostgreSQL + Redis', (ctx) => {
  const apps: App[] = []
  const pgData = generateEvents(3_000, { seed: 7 })

  beforeAll(async () => {
    const yaml = stringify({
      version: '1',
      storage: { postgres: ctx.postgres.url, redis: ctx.redis.url },
      providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    })
    const env = { TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, TOLLGATE_REDIS_PREFIX: ctx.redis.prefix }
    for (let i = 0; i < 2; i++) {
      const config = parseConfig(yaml, '<exports-pg>', { env })
      const app = await buildApp(
        { ...config, exports: { ...config.exports, dir: `${process.env.TMPDIR ?? '/tmp'}/tollgate-exports-${ctx.postgres.schema}` } },
        { env, logger: createLogger({ level: 'silent' }) },
      )
      await app.fastify.ready()
      await app.exports.start()
      apps.push(app)
    }
    await apps[0]!.stores.usage.insertBatch(pgData.events)
  })
  afterAll(async () => {
    for (const app of apps) await app.close()
  })

  it('exports the generated events row for row, as CSV and as NDJSON', async () => {
    await expectRowForRow(apps[0]!, ADMIN_TOKEN, pgData.events)
  })

  it('two processes share the queue: each of 8 jobs is claimed once and completed, and either process serves the download', async () => {
    const ids: string[] = []
    for (let i = 0; i < 8; i++) {
      const res = await call(apps[i % 2]!, 'POST', '/v1/export-jobs', ADMIN_TOKEN, {
        type: 'events',
        format: i % 2 ? 'csv' : 'ndjson',
        ...range,
        scope: { team_id: 'team_b' },
      })
      expect(res.statusCode).toBe(202)
      ids.push(res.json().id)
    }
    const jobs = await Promise.all(ids.map((id) => waitForJob(apps[0]!, ADMIN_TOKEN, id)))
    const teamB = inRange(pgData.events, (e) => e.attribution.teamId === 'team_b').length
    for (const job of jobs) expect(job).toMatchObject({ status: 'completed', attempts: 1, rows_written: teamB })
    const workers = new Set(await Promise.all(ids.map(async (id) => (await apps[0]!.stores.exports.getExportJob(id))!.workerId)))
    expect(workers).toEqual(new Set([apps[0]!.exports.workerId, apps[1]!.exports.workerId]))
    const fromOther = await call(apps[1]!, 'GET', jobs[0]!.download_url, ADMIN_TOKEN)
    expect(fromOther.body.trim().split('\n')).toHaveLength(teamB)
  })
})
