/**
 * Export jobs: start an export of events, ledger entries or budget periods (202, written in the
 * background by src/exports/runner.ts), follow its progress, download its file. Any role may
 * export what it can read; a team_admin's (or a team viewer's) export is confined to its team, and
 * naming another team is refused. A job another team started is not found.
 */
import { open } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { Principal } from '../auth/index.js'
import { CONTENT_TYPES, EXPORT_FORMATS, EXPORT_TYPES, ExportQueueFull, exportFilePath, type ExportJob } from '../exports/index.js'
import { newId } from '../lib/ids.js'
import { printable } from '../lib/text.js'
import type { ExportJobView } from './contract/wire.js'
import { parseBody } from './contract/parse.js'
import { ConflictError, ExportExpiredError, ExportQueueFullError, ForbiddenError, NotFoundError } from './errors.js'
import type { AdminDeps } from './index.js'
import { doc } from './openapi.js'
import { canRead, principalOf, teamFilter } from './principal.js'
import { instant } from './usage.js'

/** In a JSON body, epoch milliseconds may also be a number. */
const bodyInstant = z.union([z.number().int().nonnegative().transform(String), z.string()]).pipe(instant)

const LIST_LIMIT_MAX = 200
const id = printable(z.string().trim().min(1).max(200))

const CreateBody = z
  .strictObject({
    type: z.enum(EXPORT_TYPES, { error: `expected ${EXPORT_TYPES.join(' | ')}` }),
    format: z.enum(EXPORT_FORMATS, { error: `expected ${EXPORT_FORMATS.join(' | ')}` }),
    date_from: bodyInstant,
    date_to: bodyInstant,
    scope: z.strictObject({ team_id: id.optional(), user_id: id.optional() }).optional(),
  })
  .superRefine((body, ctx) => {
    if (body.date_from !== undefined && body.date_to !== undefined && body.date_to <= body.date_from) {
      ctx.addIssue({ code: 'custom', path: ['date_to'], message: '"date_to" must be after "date_from"' })
    }
  })

const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(LIST_LIMIT_MAX).default(50) })

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())

/**
 * The job as users see it at `nowMs`: a completed job whose retention has passed is `expired`
 * (with when) even before a sweep has marked it, so the job and its download always agree.
 */
export function retainedView(job: ExportJob, nowMs: number, retentionMs: number): ExportJob {
  if (job.status !== 'completed' || job.completedAtMs === undefined) return job
  const expiresAtMs = job.completedAtMs + retentionMs
  return expiresAtMs <= nowMs ? { ...job, status: 'expired', expiredAtMs: expiresAtMs } : job
}

/** When the job's file is (or was) deleted: completed → `completed_at` + retention; expired → when it expired. */
function expiresAtOf(job: ExportJob, retentionMs: number): number | undefined {
  if (job.status === 'expired') return job.expiredAtMs
  if (job.status === 'completed' && job.completedAtMs !== undefined) return job.completedAtMs + retentionMs
  return undefined
}

/** The job as the console and the CLI read it; `retentionMs` gives a completed job's `expires_at`. */
export function presentExportJob(stored: ExportJob, nowMs: number, retentionMs: number): ExportJobView & Record<string, unknown> {
  const job = retainedView(stored, nowMs, retentionMs)
  return {
    id: job.id,
    type: job.type,
    format: job.format,
    status: job.status,
    progress: progressOf(job),
    rows_written: job.rowsWritten,
    rows_total: job.rowsTotal ?? null,
    bytes: job.bytes ?? null,
    error: job.error ?? null,
    download_url: job.status === 'completed' ? `/v1/export-jobs/${job.id}/download` : null,
    expires_at: iso(expiresAtOf(job, retentionMs)),
    expired_at: iso(job.status === 'expired' ? job.expiredAtMs : undefined),
    date_from: new Date(job.fromMs).toISOString(),
    date_to: new Date(job.toMs).toISOString(),
    scope: { team_id: job.scope.teamId ?? null, user_id: job.scope.userId ?? null },
    attempts: job.attempts,
    created_at: new Date(job.createdAtMs).toISOString(),
    started_at: iso(job.startedAtMs),
    completed_at: iso(job.completedAtMs),
  }
}

/** 0..1; 1 only once the file is complete. */
function progressOf(job: ExportJob): number {
  if (job.status === 'completed' || job.status === 'expired') return 1
  if (job.rowsTotal === undefined || job.rowsTotal === 0) return 0
  return Math.min(0.99, Math.floor((job.rowsWritten / job.rowsTotal) * 100) / 100)
}

/** `tollgate-events-20260501-20260601-exp_….csv`: what, which days, which job. */
export function exportFileName(job: ExportJob): string {
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '')
  return `tollgate-${job.type}-${day(job.fromMs)}-${day(job.toMs)}-${job.id}.${job.format}`
}

/** The team an export of this principal is confined to; refuses a scope outside it. */
function scopeFor(principal: Principal, asked: { team_id?: string | undefined; user_id?: string | undefined } | undefined) {
  const confined = teamFilter(principal)
  if (confined !== undefined && asked?.team_id !== undefined && asked.team_id !== confined) {
    throw new ForbiddenError(`scope.team_id: a ${principal.role} of team ${confined} can only export team ${confined}`)
  }
  return { teamId: confined ?? asked?.team_id, userId: asked?.user_id }
}

/** The 410 of a job whose file was deleted after the retention period. */
function expiredError(job: ExportJob): ExportExpiredError {
  const at = iso(job.expiredAtMs)
  return new ExportExpiredError(
    `export job ${job.id} expired${at === null ? '' : ` at ${at}`}: its file was deleted after the retention period. Start a new export to get the data again.`,
    { status: 'expired', expired_at: at },
  )
}

export async function exportJobRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { jobsPendingMax, teamJobsPendingMax, teamFilesKeptMax, teamBytesKeptMax } = deps.config.exports
  const present = (job: ExportJob) => presentExportJob(job, deps.clock.nowMs(), deps.exports.retentionMs)

  /** The job if this principal may see it; 404 otherwise (another org's or team's job is not found). */
  const visibleJob = async (principal: Principal, jobId: string): Promise<ExportJob> => {
    const job = await deps.stores.exports.getExportJob(jobId)
    if (!job || job.orgId !== principal.orgId || !canRead(principal, job.scope.teamId)) throw new NotFoundError('export job', jobId)
    return job
  }

  app.post(
    '/v1/export-jobs',
    doc({
      summary: 'Start an export of events, ledger entries or budgets as CSV or NDJSON',
      description:
        'The range is `[date_from, date_to)`. A team_admin exports only its team: without `scope.team_id` its team is applied; another team is refused (403). The job runs in the background; follow it with `GET /v1/export-jobs/{id}`. An org may have `exports.jobs_pending_max` jobs queued or running at once (a team-confined token: `exports.team_jobs_pending_max` for its team, and no more than `exports.team_files_kept_max` completed exports of its team still kept); one more is refused with `429 export_queue_full`, and nothing is queued. An export scoped to a team whose export files already hold `exports.team_bytes_kept_max` bytes is refused the same way, whoever asks (`limit_scope: team_bytes`).',
      auth: 'admin',
      body: CreateBody,
      responses: { 202: 'The job, `queued`.' },
      errors: [429],
    }),
    async (request, reply) => {
      const principal = principalOf(request)
      const body = parseBody(CreateBody, request.body)
      const nowMs = deps.clock.nowMs()
      // A team-confined token also counts against its team's share, so it cannot take every place of the org.
      const teamMax = teamFilter(principal) === undefined ? undefined : teamJobsPendingMax
      const scope = scopeFor(principal, body.scope)
      let job: ExportJob
      try {
        job = await deps.stores.exports.createExportJob(
          {
            id: newId('exp', nowMs),
            orgId: principal.orgId,
            type: body.type,
            format: body.format,
            fromMs: body.date_from,
            toMs: body.date_to,
            scope,
            createdBy: principal.tokenId,
            createdAtMs: nowMs,
          },
          // The bytes belong to the team the export is scoped to, whoever asks: an admin's export of
          // a team at its quota would only fail.
          { orgMax: jobsPendingMax, teamMax, teamKeptMax: teamMax === undefined ? undefined : teamFilesKeptMax, teamBytesMax: teamBytesKeptMax },
        )
      } catch (error) {
        if (!(error instanceof ExportQueueFull)) throw error
        throw new ExportQueueFullError(queueFullMessage(error, principal.orgId, scope.teamId), { limit: error.limit, limit_scope: error.limitOf })
      }
      deps.exports.kick()
      return reply.code(202).send(present(job))
    },
  )

  app.get(
    '/v1/export-jobs',
    doc({ summary: 'List export jobs, newest first', auth: 'admin', query: ListQuery, responses: { 200: '`data`: the jobs these credentials may read.' } }),
    async (request) => {
      const principal = principalOf(request)
      const { limit } = parseBody(ListQuery, request.query, 'query')
      const jobs = await deps.stores.exports.listExportJobs(principal.orgId, teamFilter(principal), limit)
      return { data: jobs.map(present) }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/v1/export-jobs/:id',
    doc({
      summary: 'An export job with its progress',
      auth: 'admin',
      responses: {
        200: 'The job: `status` (`queued`, `running`, `completed`, `failed` or `expired`), `progress` (0..1), `rows_written`, `rows_total`, `download_url` and `expires_at` once completed; `expired_at` once the file was deleted because `exports.retention_hours` had passed.',
      },
      errors: [404],
    }),
    async (request) => present(await visibleJob(principalOf(request), request.params.id)),
  )

  app.get<{ Params: { id: string } }>(
    '/v1/export-jobs/:id/download',
    doc({
      summary: 'Download the file of a completed export job',
      description:
        'Streams the file (`text/csv` or `application/x-ndjson`) as an attachment. The console session cookie is accepted, so a plain link downloads it. A file is kept `exports.retention_hours` after the job completed; after that the job is `expired` and the download answers `410 export_expired`.',
      auth: 'admin',
      produces: 'text/csv',
      responses: { 200: 'The file.' },
      errors: [404, 409, 410],
    }),
    async (request, reply) => {
      const principal = principalOf(request)
      const job = retainedView(await visibleJob(principal, request.params.id), deps.clock.nowMs(), deps.exports.retentionMs)
      if (job.status === 'expired') throw expiredError(job)
      if (job.status !== 'completed') {
        throw new ConflictError(
          `export job ${job.id} is ${job.status}${job.status === 'failed' ? `: ${job.error ?? 'no reason recorded'}` : '; download it once completed'}`,
          { status: job.status },
        )
      }
      // Opened before the answer starts: once open, a sweep deleting the file cannot cut the
      // download short, and a file deleted just before is told apart by the job's new status.
      const handle = await open(exportFilePath(deps.exports.dir, job), 'r').catch(() => undefined)
      if (handle === undefined) {
        const now = retainedView(await visibleJob(principal, job.id), deps.clock.nowMs(), deps.exports.retentionMs)
        if (now.status === 'expired') throw expiredError(now)
        throw new ConflictError(
          `the file of export job ${job.id} is not in this gateway's exports folder; it was written by ${job.workerId ?? 'another process'}. Every process that serves downloads needs the same exports.dir`,
          { status: job.status },
        )
      }
      let size: number
      try {
        size = (await handle.stat()).size
      } catch (error) {
        await handle.close()
        throw error
      }
      return reply
        .header('content-type', CONTENT_TYPES[job.format])
        .header('content-length', size)
        .header('content-disposition', `attachment; filename="${exportFileName(job)}"`)
        .header('cache-control', 'private, no-store')
        .send(handle.createReadStream())
    },
  )
}

function queueFullMessage(error: ExportQueueFull, orgId: string, teamId: string | undefined): string {
  switch (error.limitOf) {
    case 'org':
      return `org ${orgId} already has ${error.limit} export jobs queued or running (the limit, exports.jobs_pending_max); start this one when one of them has finished`
    case 'team':
      return `team ${teamId} already has ${error.limit} export jobs queued or running (the limit, exports.team_jobs_pending_max); start this one when one of them has finished`
    case 'team_kept':
      return `team ${teamId} already has ${error.limit} completed exports whose files are kept (the limit, exports.team_files_kept_max); download them, and start this one when the oldest expires`
    case 'team_bytes':
      return `team ${teamId}'s export files already hold ${error.held ?? error.limit} bytes, at or over the limit of ${error.limit} (exports.team_bytes_kept_max); download them, and start this one when older exports of the team expire`
  }
}
