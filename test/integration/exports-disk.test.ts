/**
 * Export files cannot take more disk than they may, on both stores:
 * - a team's files (the completed ones still kept, plus those being written) are held to
 *   `exports.team_bytes_kept_max`: an export whose file would pass what is left ends `failed` with
 *   `export_bytes_quota_exceeded` first in its error and no file left, and the team's earlier
 *   files are untouched; an org-wide export is not held to (nor counted against) a team's quota;
 * - while a team's files hold the quota, an export scoped to the team is refused with
 *   `429 export_queue_full`, `limit_scope: team_bytes`, whoever asks, and nothing is queued; a
 *   failed or expired job frees its bytes;
 * - below `exports.disk_free_min_bytes` of free space a job ends `failed` with
 *   `export_disk_space_low` and leaves no file.
 *
 * How: buildApp() with a FakeClock and requests through inject(); the runner writes the files
 * from generated events; jobs the test holds as a "running" worker are played with the store.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../src/app.js'
import { exportFilePath } from '../../src/exports/index.js'
import type { FakeClock } from '../../src/lib/clock.js'
import { ADMIN_TOKEN } from '../support/gateway.js'
import { exportTestApp } from '../support/export-app.js'
import { describeWithBoth } from '../support/services.js'
import { generateEvents } from '../support/usage-data.js'

const HOUR_MS = 3_600_000
const RETENTION_HOURS = 2
/** A few header-only files fit; a team's share of the generated events (tens of KB) does not. */
const QUOTA = 8_000
/** Past any disk: the free-space check always refuses. */
const FREE_MIN = 1024 ** 5

type Json = Record<string, any>

function call(app: App, method: 'GET' | 'POST', url: string, token: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  return app.fastify.inject({ method, url, headers, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) })
}

const data = generateEvents(600)
const EMPTY_RANGE = { type: 'events', format: 'csv', date_from: '2020-01-01T00:00:00Z', date_to: '2020-01-02T00:00:00Z' }
const DATA_RANGE = {
  type: 'events',
  format: 'csv',
  date_from: new Date(data.fromMs).toISOString(),
  date_to: new Date(data.fromMs + 10 * 86_400_000).toISOString(),
}

/** Starts an export and waits until it is completed or failed. */
async function finished(app: App, token: string, body: Json): Promise<Json> {
  const created = await call(app, 'POST', '/v1/export-jobs', token, body)
  expect(created.statusCode, created.body).toBe(202)
  const deadline = Date.now() + 20_000
  for (;;) {
    const job = (await call(app, 'GET', `/v1/export-jobs/${created.json().id}`, token)).json()
    if (job.status === 'completed' || job.status === 'failed') return job
    if (Date.now() > deadline) throw new Error(`export ${job.id}: ${JSON.stringify(job)}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** The files in the folder that belong to a job, finished or partial. */
const filesOf = (app: App, id: string) => readdirSync(app.exports.dir).filter((name) => name.startsWith(`${id}.`))

interface Setup {
  readonly app: App
  readonly clock: FakeClock
  close(): Promise<void>
}

/** Builds a gateway with these `exports` keys on the store under test. */
type SetupWith = (exports: Json) => Promise<Setup>

/** A job of team_a that a worker of the test claims and writes by hand. */
function teamAJob(id: string, createdAtMs: number) {
  return {
    id,
    orgId: 'default',
    type: 'events' as const,
    format: 'csv' as const,
    fromMs: 0,
    toMs: 1,
    scope: { teamId: 'team_a', userId: undefined },
    createdBy: 'test',
    createdAtMs,
  }
}

function quotaSuite(setup: SetupWith) {
  let s: Setup
  let app: App
  let clock: FakeClock
  let teamAdmin: string
  const count = async () => (await call(app, 'GET', '/v1/export-jobs', ADMIN_TOKEN)).json().data.length

  beforeAll(async () => {
    s = await setup({ retention_hours: RETENTION_HOURS, team_bytes_kept_max: QUOTA })
    app = s.app
    clock = s.clock
    await app.stores.usage.insertBatch(data.events)
    await app.exports.start()
    const res = await call(app, 'POST', '/v1/admin-tokens', ADMIN_TOKEN, { name: 'team a', role: 'team_admin', team_id: 'team_a' })
    expect(res.statusCode, res.body).toBe(201)
    teamAdmin = res.json().token
  })
  afterAll(async () => s?.close())

  it('an export that would pass its team’s byte quota fails with export_bytes_quota_exceeded and leaves no file; earlier files are untouched', async () => {
    const earlier = await finished(app, teamAdmin, EMPTY_RANGE)
    expect(earlier.status).toBe('completed')
    const earlierFile = exportFilePath(app.exports.dir, earlier as never)
    const earlierText = readFileSync(earlierFile, 'utf8')

    const over = await finished(app, teamAdmin, DATA_RANGE)
    expect(over).toMatchObject({ status: 'failed', download_url: null, scope: { team_id: 'team_a' } })
    expect(over.error).toMatch(
      new RegExp(
        `^export_bytes_quota_exceeded: team team_a's export files would pass exports\\.team_bytes_kept_max \\(${QUOTA} bytes\\): its other exports hold ${earlier.bytes} bytes .*its file was deleted`,
      ),
    )
    expect(filesOf(app, over.id)).toEqual([])
    expect(readFileSync(earlierFile, 'utf8')).toBe(earlierText)
    const download = await call(app, 'GET', earlier.download_url, teamAdmin)
    expect(download.statusCode).toBe(200)
    expect(download.body).toBe(earlierText)

    // The same rows org-wide: an admin's org-wide export is held to no team's quota, and counts against none.
    const orgWide = await finished(app, ADMIN_TOKEN, DATA_RANGE)
    expect(orgWide.status, orgWide.error).toBe('completed')
    expect(orgWide.bytes).toBeGreaterThan(QUOTA)
    expect((await finished(app, teamAdmin, EMPTY_RANGE)).status).toBe('completed')
  })

  it('while a team’s files hold its quota, an export of the team is refused with 429 team_bytes, whoever asks; a failed or expired job frees its bytes', async () => {
    // From here on the test plays the workers itself: queued jobs stay queued.
    await app.exports.stop()
    const store = app.stores.exports
    const held = await store.teamExportBytes('default', 'team_a', '')
    expect(held).toBeGreaterThan(0)
    expect(held).toBeLessThan(QUOTA)

    // A worker of the test writes the rest of the quota: a file being written counts as it grows.
    const running = await store.createExportJob(teamAJob('exp_team_a_running', 0))
    expect((await store.claimExportJob('hand', clock.nowMs(), clock.nowMs() + 60_000, 3))?.id).toBe(running.id)
    expect((await call(app, 'POST', '/v1/export-jobs', teamAdmin, EMPTY_RANGE)).statusCode).toBe(202)
    expect(
      await store.updateExportProgress(running.id, 'hand', {
        rowsWritten: 10,
        rowsTotal: 20,
        bytesWritten: QUOTA - held,
        leaseUntilMs: clock.nowMs() + 60_000,
      }),
    ).toBe(true)

    const before = await count()
    for (const [token, body] of [
      [teamAdmin, EMPTY_RANGE],
      [ADMIN_TOKEN, { ...EMPTY_RANGE, scope: { team_id: 'team_a' } }],
    ] as const) {
      const refused = await call(app, 'POST', '/v1/export-jobs', token, body)
      expect(refused.statusCode).toBe(429)
      expect(refused.json().error).toMatchObject({
        type: 'rate_limit_error',
        code: 'export_queue_full',
        limit: QUOTA,
        limit_scope: 'team_bytes',
        message: expect.stringMatching(new RegExp(`team team_a's export files already hold ${QUOTA} bytes.*exports\\.team_bytes_kept_max`)),
      })
    }
    expect(await count()).toBe(before)
    // Another team, and the whole org, still export.
    expect((await call(app, 'POST', '/v1/export-jobs', ADMIN_TOKEN, { ...EMPTY_RANGE, scope: { team_id: 'team_b' } })).statusCode).toBe(202)
    expect((await call(app, 'POST', '/v1/export-jobs', ADMIN_TOKEN, EMPTY_RANGE)).statusCode).toBe(202)

    // The writer fails: its file is deleted, so its bytes no longer count.
    expect(await store.failExportJob(running.id, 'hand', 'test', clock.nowMs())).toBe(true)
    expect((await call(app, 'POST', '/v1/export-jobs', teamAdmin, EMPTY_RANGE)).statusCode).toBe(202)

    // Kept files at the quota: refused until they expire.
    const kept = await store.createExportJob(teamAJob('exp_team_a_kept', -1))
    expect((await store.claimExportJob('hand', clock.nowMs(), clock.nowMs() + 60_000, 3))?.id).toBe(kept.id)
    expect(await store.completeExportJob(kept.id, 'hand', { rowsWritten: 1, bytes: QUOTA, atMs: clock.nowMs() })).toBe(true)
    const full = await call(app, 'POST', '/v1/export-jobs', teamAdmin, EMPTY_RANGE)
    expect(full.statusCode).toBe(429)
    expect(full.json().error).toMatchObject({ limit_scope: 'team_bytes' })
    clock.advance(RETENTION_HOURS * HOUR_MS)
    await app.exports.sweep()
    expect((await call(app, 'POST', '/v1/export-jobs', teamAdmin, EMPTY_RANGE)).statusCode).toBe(202)
  })
}

function diskFreeSuite(setup: SetupWith) {
  let s: Setup
  let app: App

  beforeAll(async () => {
    s = await setup({ disk_free_min_bytes: FREE_MIN })
    app = s.app
    await app.exports.start()
  })
  afterAll(async () => s?.close())

  it('below exports.disk_free_min_bytes of free space, a job fails with export_disk_space_low and leaves no file', async () => {
    const job = await finished(app, ADMIN_TOKEN, EMPTY_RANGE)
    expect(job).toMatchObject({ status: 'failed', download_url: null, bytes: null })
    expect(job.error).toMatch(
      new RegExp(`^export_disk_space_low: the disk of the exports folder has \\d+ bytes free, below exports\\.disk_free_min_bytes \\(${FREE_MIN}\\)`),
    )
    expect(filesOf(app, job.id)).toEqual([])
    expect(existsSync(exportFilePath(app.exports.dir, job as never))).toBe(false)
  })
}

const sqliteSetup = (exports: Json): Promise<Setup> => exportTestApp(exports)

describe('export disk bounds on SQLite', () => {
  describe('the team byte quota', () => quotaSuite(sqliteSetup))
  describe('the free-space minimum', () => diskFreeSuite(sqliteSetup))
})

/** Each suite its own schema: two runners on one job table would take each other's jobs. */
for (const [name, suite] of [
  ['the team byte quota', quotaSuite],
  ['the free-space minimum', diskFreeSuite],
] as const) {
  describeWithBoth(`export disk bounds on PostgreSQL + Redis: ${name}`, (ctx) => {
    suite((exports) => exportTestApp(exports, { postgresUrl: ctx.postgres.url, redisUrl: ctx.redis.url, redisPrefix: ctx.redis.prefix }))
  })
}
