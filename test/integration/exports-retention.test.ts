/**
 * Export files cannot fill the disk, on both stores, with a clock the test moves:
 * - a completed job's file is kept `exports.retention_hours`; from that instant the job reads
 *   `expired` (with when) and its download is 410 `export_expired` saying to start a new export,
 *   even before a sweep; the sweep then deletes the file, and the job stays listed as expired;
 * - a process killed at any point of a sweep or of a job leaves nothing forever and never a 200
 *   with a missing file: a job marked expired whose file is still there is 410 and the next sweep
 *   deletes the file; a failed job's final and `.partial` leftovers are deleted; a job file the
 *   store does not know goes once older than the retention; other files are never touched;
 * - an org may have `exports.jobs_pending_max` jobs queued or running: one more is 429
 *   `export_queue_full` naming the limit and queues nothing, also when creates race; a
 *   team_admin's team is held to `exports.team_jobs_pending_max`, so the org's admin can still export,
 *   and may not start another while it keeps `exports.team_files_kept_max` finished files.
 * On SQLite, a database with jobs from before the retention migration keeps them.
 *
 * How: buildApp() with a FakeClock and requests through inject(); the runner writes the files
 * (empty ranges: a header-only file is still a file); sweeps are called directly at chosen
 * instants; "killed" processes are played with the store and files the test writes itself.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../src/app.js'
import { exportFilePath } from '../../src/exports/index.js'
import type { FakeClock } from '../../src/lib/clock.js'
import { openSqlite } from '../../src/store/sqlite/db.js'
import { sqliteMigrations } from '../../src/store/sqlite/index.js'
import { ADMIN_TOKEN } from '../support/gateway.js'
import { exportTestApp } from '../support/export-app.js'
import { describeWithBoth } from '../support/services.js'

const HOUR_MS = 3_600_000
const RETENTION_HOURS = 2
const ORG_MAX = 3
const TEAM_MAX = 2
const KEPT_MAX = 4

type Json = Record<string, any>

function call(app: App, method: 'GET' | 'POST', url: string, token: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  return app.fastify.inject({ method, url, headers, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) })
}

/** An export of a range with no rows: the file holds the header only, which is all retention needs. */
const EMPTY_RANGE = { type: 'events', format: 'csv', date_from: '2020-01-01T00:00:00Z', date_to: '2020-01-02T00:00:00Z' }

async function completedJob(app: App, token = ADMIN_TOKEN): Promise<Json> {
  const created = await call(app, 'POST', '/v1/export-jobs', token, EMPTY_RANGE)
  expect(created.statusCode, created.body).toBe(202)
  const deadline = Date.now() + 20_000
  for (;;) {
    const job = (await call(app, 'GET', `/v1/export-jobs/${created.json().id}`, token)).json()
    if (job.status === 'completed') return job
    if (job.status === 'failed' || Date.now() > deadline) throw new Error(`export ${job.id}: ${JSON.stringify(job)}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const jobRequest = (id: string, createdAtMs: number) => ({
  id,
  orgId: 'default',
  type: 'events' as const,
  format: 'csv' as const,
  fromMs: 0,
  toMs: 1,
  scope: { teamId: undefined, userId: undefined },
  createdBy: 'test',
  createdAtMs,
})

interface Setup {
  readonly app: App
  readonly clock: FakeClock
  close(): Promise<void>
}

/** The same behaviour, whatever the store. */
function retentionSuite(setup: () => Promise<Setup>) {
  let s: Setup
  let app: App
  let clock: FakeClock
  let teamAdmin: string
  const pending = async () =>
    (await call(app, 'GET', '/v1/export-jobs', ADMIN_TOKEN)).json().data.filter((j: Json) => j.status === 'queued' || j.status === 'running')
  const count = async () => (await call(app, 'GET', '/v1/export-jobs', ADMIN_TOKEN)).json().data.length

  beforeAll(async () => {
    s = await setup()
    app = s.app
    clock = s.clock
    await app.exports.start()
    const res = await call(app, 'POST', '/v1/admin-tokens', ADMIN_TOKEN, { name: 'team a', role: 'team_admin', team_id: 'team_a' })
    expect(res.statusCode, res.body).toBe(201)
    teamAdmin = res.json().token
  })
  afterAll(async () => s?.close())

  it('keeps a finished file for the retention; then the job is expired (with when), the download is 410, the sweep deletes the file', async () => {
    const job = await completedJob(app)
    const file = exportFilePath(app.exports.dir, job as never)
    const completedAtMs = Date.parse(job.completed_at)
    const expiresAt = new Date(completedAtMs + RETENTION_HOURS * HOUR_MS).toISOString()
    expect(job).toMatchObject({ expires_at: expiresAt, expired_at: null, download_url: `/v1/export-jobs/${job.id}/download` })

    // One second before the end of the retention: a sweep changes nothing, the file downloads.
    clock.set(completedAtMs + RETENTION_HOURS * HOUR_MS - 1_000)
    expect(await app.exports.sweep()).toEqual({ expired: 0, filesDeleted: 0 })
    expect(existsSync(file)).toBe(true)
    expect((await call(app, 'GET', job.download_url, ADMIN_TOKEN)).statusCode).toBe(200)

    // The retention has passed, no sweep yet: the job already reads expired and the download is refused.
    clock.advance(1_000)
    const before = (await call(app, 'GET', `/v1/export-jobs/${job.id}`, ADMIN_TOKEN)).json()
    expect(before).toMatchObject({ status: 'expired', expired_at: expiresAt, expires_at: expiresAt, download_url: null, progress: 1 })
    const gone = await call(app, 'GET', job.download_url, ADMIN_TOKEN)
    expect(gone.statusCode).toBe(410)
    expect(gone.json().error).toMatchObject({
      type: 'not_found_error',
      code: 'export_expired',
      status: 'expired',
      expired_at: expiresAt,
      request_id: expect.any(String),
      message: expect.stringMatching(new RegExp(`export job ${job.id} expired at ${expiresAt}: .*Start a new export`)),
    })

    expect(await app.exports.sweep()).toEqual({ expired: 1, filesDeleted: 1 })
    expect(existsSync(file)).toBe(false)
    const stored = await app.stores.exports.getExportJob(job.id)
    expect(stored).toMatchObject({ status: 'expired', expiredAtMs: completedAtMs + RETENTION_HOURS * HOUR_MS })
    const listed = (await call(app, 'GET', '/v1/export-jobs', ADMIN_TOKEN)).json().data.find((j: Json) => j.id === job.id)
    expect(listed).toMatchObject({ status: 'expired', expired_at: expiresAt, download_url: null })
    expect((await call(app, 'GET', job.download_url, ADMIN_TOKEN)).statusCode).toBe(410)
    // A second sweep (another process's) finds nothing left to do.
    expect(await app.exports.sweep()).toEqual({ expired: 0, filesDeleted: 0 })
  })

  it('lowering the retention applies to files already written', async () => {
    const job = await completedJob(app)
    clock.set(Date.parse(job.completed_at) + HOUR_MS)
    // A process started with a shorter retention sweeps the same store and folder.
    expect(await app.stores.exports.expireExportJobs(clock.nowMs(), HOUR_MS / 2)).toBe(1)
    expect(await app.exports.sweep()).toMatchObject({ filesDeleted: 1 })
    expect(existsSync(exportFilePath(app.exports.dir, job as never))).toBe(false)
    expect((await call(app, 'GET', `/v1/export-jobs/${job.id}`, ADMIN_TOKEN)).json()).toMatchObject({ status: 'expired' })
  })

  it('killed between marking and deleting: the job is 410 at once, and the next sweep deletes the file', async () => {
    const job = await completedJob(app)
    const file = exportFilePath(app.exports.dir, job as never)
    clock.set(Date.parse(job.completed_at) + RETENTION_HOURS * HOUR_MS)
    // The first half of a sweep, by a process that died before touching the folder.
    expect(await app.stores.exports.expireExportJobs(clock.nowMs(), RETENTION_HOURS * HOUR_MS)).toBe(1)
    expect(existsSync(file)).toBe(true)
    expect((await call(app, 'GET', job.download_url, ADMIN_TOKEN)).statusCode).toBe(410)
    expect(await app.exports.sweep()).toEqual({ expired: 0, filesDeleted: 1 })
    expect(existsSync(file)).toBe(false)
  })

  it('a completed job whose file is missing is never a 200', async () => {
    const job = await completedJob(app)
    rmSync(exportFilePath(app.exports.dir, job as never))
    const res = await call(app, 'GET', job.download_url, ADMIN_TOKEN)
    expect(res.statusCode).toBe(409)
    expect(res.json().error.message).toMatch(/not in this gateway's exports folder/)
  })

  it('the queue: the org’s limit is a 429 naming it that queues nothing; a team_admin’s team has a smaller share', async () => {
    // From here on the test plays the workers itself: queued jobs stay queued.
    await app.exports.stop()
    expect(await pending()).toEqual([])

    const own = []
    for (let i = 0; i < TEAM_MAX; i++) own.push(await call(app, 'POST', '/v1/export-jobs', teamAdmin, EMPTY_RANGE))
    expect(own.map((r) => r.statusCode)).toEqual([202, 202])
    let before = await count()
    const teamFull = await call(app, 'POST', '/v1/export-jobs', teamAdmin, EMPTY_RANGE)
    expect(teamFull.statusCode).toBe(429)
    expect(teamFull.json().error).toMatchObject({
      type: 'rate_limit_error',
      code: 'export_queue_full',
      limit: TEAM_MAX,
      limit_scope: 'team',
      message: expect.stringMatching(/team team_a already has 2 export jobs queued or running \(the limit, exports\.team_jobs_pending_max\)/),
    })
    expect(await count()).toBe(before)

    // The team's share is full, the org's is not: the org's admin still exports.
    const admin = await call(app, 'POST', '/v1/export-jobs', ADMIN_TOKEN, EMPTY_RANGE)
    expect(admin.statusCode, admin.body).toBe(202)
    before = await count()
    for (const token of [ADMIN_TOKEN, teamAdmin]) {
      const full = await call(app, 'POST', '/v1/export-jobs', token, EMPTY_RANGE)
      expect(full.statusCode).toBe(429)
      expect(full.json().error).toMatchObject({ code: 'export_queue_full', limit: ORG_MAX, limit_scope: 'org' })
      expect(full.json().error.message).toMatch(/org default already has 3 export jobs queued or running \(the limit, exports\.jobs_pending_max\)/)
    }
    expect(await count()).toBe(before)
    expect(await pending()).toHaveLength(ORG_MAX)

    // A running job still takes its place; a finished one frees it.
    const store = app.stores.exports
    const claimed = (await store.claimExportJob('worker', clock.nowMs(), clock.nowMs() + 60_000, 3))!
    expect((await call(app, 'POST', '/v1/export-jobs', ADMIN_TOKEN, EMPTY_RANGE)).statusCode).toBe(429)
    expect(await store.completeExportJob(claimed.id, 'worker', { rowsWritten: 0, bytes: 0, atMs: clock.nowMs() })).toBe(true)

    // One free place, five creates at once: exactly one is queued.
    before = await count()
    const racing = await Promise.all(Array.from({ length: 5 }, () => call(app, 'POST', '/v1/export-jobs', ADMIN_TOKEN, EMPTY_RANGE)))
    expect(racing.map((r) => r.statusCode).sort()).toEqual([202, 429, 429, 429, 429])
    expect(await count()).toBe(before + 1)
    expect(await pending()).toHaveLength(ORG_MAX)
  })

  it('a team_admin may not start exports while its team keeps team_files_kept_max finished files; an expiry frees a place', async () => {
    const store = app.stores.exports
    const completeQueued = async () => {
      for (
        let job = await store.claimExportJob('w', clock.nowMs(), clock.nowMs() + 1_000, 3);
        job;
        job = await store.claimExportJob('w', clock.nowMs(), clock.nowMs() + 1_000, 3)
      ) {
        await store.completeExportJob(job.id, 'w', { rowsWritten: 0, bytes: 0, atMs: clock.nowMs() })
      }
    }
    const keptByTeam = async () => ((await call(app, 'GET', '/v1/export-jobs', teamAdmin)).json().data as Json[]).filter((j) => j.status === 'completed').length
    await completeQueued()
    // Finish one team export at a time until the team is refused for the files it keeps.
    let refused: Json | undefined
    for (let i = 0; i <= KEPT_MAX && refused === undefined; i++) {
      const res = await call(app, 'POST', '/v1/export-jobs', teamAdmin, EMPTY_RANGE)
      if (res.statusCode === 429) refused = res.json().error
      else await completeQueued()
    }
    expect(refused).toMatchObject({ code: 'export_queue_full', limit: KEPT_MAX, limit_scope: 'team_kept' })
    expect(refused!.message).toMatch(/exports\.team_files_kept_max/)
    expect(await keptByTeam()).toBe(KEPT_MAX)
    // The org's admin is not held to the team's files.
    expect((await call(app, 'POST', '/v1/export-jobs', ADMIN_TOKEN, EMPTY_RANGE)).statusCode).toBe(202)
    await completeQueued()
    clock.set(clock.nowMs() + RETENTION_HOURS * HOUR_MS)
    await app.exports.sweep()
    expect((await call(app, 'POST', '/v1/export-jobs', teamAdmin, EMPTY_RANGE)).statusCode).toBe(202)
    await completeQueued()
  })

  it('a failed job’s leftovers, and job files the store does not know, do not stay; other files are never touched', async () => {
    const store = app.stores.exports
    const dir = app.exports.dir
    // Empty the queue the previous test filled, as workers that completed them.
    for (
      let job = await store.claimExportJob('w', clock.nowMs(), clock.nowMs() + 1_000, 3);
      job;
      job = await store.claimExportJob('w', clock.nowMs(), clock.nowMs() + 1_000, 3)
    ) {
      await store.completeExportJob(job.id, 'w', { rowsWritten: 0, bytes: 0, atMs: clock.nowMs() })
    }
    // A process was killed after renaming its file and before completing the job, and again
    // while writing: its last claim runs out and the job is failed with both files on disk.
    const job = await store.createExportJob(jobRequest('exp_killed_twice', clock.nowMs()))
    const dead = (await store.claimExportJob('dead', clock.nowMs(), clock.nowMs() - 1, 1))!
    expect(dead.id).toBe(job.id)
    const final = exportFilePath(dir, job)
    const partial = `${final}.0badc0de.partial`
    writeFileSync(final, 'id\r\n')
    writeFileSync(partial, 'id\r\n')
    expect(await store.claimExportJob('next', clock.nowMs(), clock.nowMs() + 1_000, 1)).toBeUndefined()
    expect(await store.getExportJob(job.id)).toMatchObject({ status: 'failed' })
    // A completed job keeps its file but not a partial file of an attempt that lost its lease.
    const done = await completedByHand(store, 'exp_done_with_leftover', clock.nowMs())
    writeFileSync(exportFilePath(dir, done), 'id\r\n')
    writeFileSync(`${exportFilePath(dir, done)}.0f0f0f0f.partial`, 'id\r\n')
    // A queued job's partial file belongs to its next writer.
    const queued = await store.createExportJob(jobRequest('exp_still_queued', clock.nowMs() + 1))
    writeFileSync(`${exportFilePath(dir, queued)}.12345678.partial`, 'id\r\n')
    // Files of a store that was reset: the recent one may still be read, the old one goes.
    writeFileSync(join(dir, 'exp_unknown_recent.csv'), 'id\r\n')
    writeFileSync(join(dir, 'exp_unknown_old.ndjson'), '{}\n')
    const old = (clock.nowMs() - RETENTION_HOURS * HOUR_MS - 1_000) / 1000
    utimesSync(join(dir, 'exp_unknown_old.ndjson'), old, old)
    utimesSync(join(dir, 'exp_unknown_recent.csv'), clock.nowMs() / 1000, clock.nowMs() / 1000)
    // Not an export's name: never touched, however old.
    writeFileSync(join(dir, 'README.txt'), 'mine')
    utimesSync(join(dir, 'README.txt'), old, old)

    expect(await app.exports.sweep()).toEqual({ expired: 0, filesDeleted: 4 })
    expect(readdirSync(dir).sort()).toEqual(
      ['README.txt', 'exp_done_with_leftover.csv', 'exp_still_queued.csv.12345678.partial', 'exp_unknown_recent.csv'].sort(),
    )
  })
}

/** A job completed by a worker of the test's own (no file written by the runner). */
async function completedByHand(store: App['stores']['exports'], id: string, atMs: number) {
  const job = await store.createExportJob(jobRequest(id, 0))
  const claimed = (await store.claimExportJob('hand', 0, 60_000, 3))!
  expect(claimed.id).toBe(job.id)
  expect(await store.completeExportJob(job.id, 'hand', { rowsWritten: 0, bytes: 4, atMs })).toBe(true)
  return job
}

const exportsConfig = { retention_hours: RETENTION_HOURS, jobs_pending_max: ORG_MAX, team_jobs_pending_max: TEAM_MAX, team_files_kept_max: KEPT_MAX }

describe('export retention and queue limits on SQLite', () => {
  retentionSuite(() => exportTestApp(exportsConfig))

  it('jobs written before the retention migration are kept, and may then expire', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-export-migration-'))
    try {
      const path = join(dir, 'old.db')
      const before = sqliteMigrations.filter((m) => m.id !== 'exports-0002-retention')
      expect(before).toHaveLength(sqliteMigrations.length - 1)
      const old = openSqlite(path, before)
      old
        .prepare(
          `INSERT INTO export_jobs (id, org_id, type, format, from_ms, to_ms, created_by, created_at_ms, status, rows_written, bytes, completed_at_ms)
           VALUES ('exp_old', 'default', 'events', 'csv', 0, 1, 'test', 5, 'completed', 7, 70, 10)`,
        )
        .run()
      old.close()
      const db = openSqlite(path, sqliteMigrations)
      expect(db.prepare('SELECT id, status, rows_written, bytes, completed_at_ms, expired_at_ms FROM export_jobs').all()).toEqual([
        { id: 'exp_old', status: 'completed', rows_written: 7, bytes: 70, completed_at_ms: 10, expired_at_ms: null },
      ])
      expect(db.prepare("UPDATE export_jobs SET status = 'expired', expired_at_ms = 20").run().changes).toBe(1)
      expect(() => db.prepare("UPDATE export_jobs SET status = 'gone'").run()).toThrow(/CHECK constraint/)
      db.close()
      // The other connection kind an export uses (read-only) sees the same table.
      const reader = new Database(path, { readonly: true })
      expect(reader.prepare('SELECT status FROM export_jobs').get()).toEqual({ status: 'expired' })
      reader.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describeWithBoth('export retention and queue limits on PostgreSQL + Redis', (ctx) => {
  retentionSuite(() => exportTestApp(exportsConfig, { postgresUrl: ctx.postgres.url, redisUrl: ctx.redis.url, redisPrefix: ctx.redis.prefix }))
})
