/**
 * `tollgate export-jobs create|list|show|download`: exports run on the gateway as jobs. `create`
 * starts one (POST /v1/export-jobs, 202), polls it with a progress bar until it is completed or
 * failed, then streams the file to disk. Interrupting the CLI does not stop the job: it says how
 * to fetch the file later with `export-jobs download`.
 */
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { Option, type Command } from 'commander'
import type { GatewayClient } from '../client.js'
import { contextOf, withSharedOptions, type CliContext } from '../context.js'
import { ApiError, CliError, EXIT_REFUSED, UsageError } from '../errors.js'
import { instantFlag } from '../flags.js'
import { plural, renderFields, renderTable, startProgress, timeText, type Column } from '../output.js'

export interface ExportJobView {
  readonly id: string
  readonly status: 'queued' | 'running' | 'completed' | 'failed' | 'expired' | string
  readonly type: string
  readonly format: string
  /** ISO instants; the range is [date_from, date_to). */
  readonly date_from: string
  readonly date_to: string
  readonly scope?: { readonly team_id: string | null; readonly user_id: string | null }
  /** 0..1 */
  readonly progress: number
  readonly rows_written: number
  readonly rows_total: number | null
  readonly bytes?: number
  readonly error: string | { readonly code?: string; readonly message?: string } | null
  readonly created_at?: string | null
  readonly completed_at?: string | null
  /** When the file is (completed) or was (expired) deleted. */
  readonly expires_at?: string | null
  readonly expired_at?: string | null
}

const EXPORT_TYPES = ['events', 'ledger', 'budgets'] as const
const EXPORT_FORMATS = ['csv', 'ndjson'] as const
/** How often a running job is asked for its progress. */
const POLL_INTERVAL_MS = 500
const TERMINAL = new Set(['completed', 'failed', 'expired'])

class ExportFailedError extends CliError {
  readonly exitCode = EXIT_REFUSED
}

interface CreateFlags {
  type: string
  format: string
  dateFrom: string
  dateTo: string
  team?: string
  user?: string
  out?: string
}

export function registerExportJobCommands(program: Command): void {
  const jobs = program.command('export-jobs').description('Exports of events, ledger entries or budgets, run on the gateway as jobs')

  withSharedOptions(jobs.command('create'))
    .description('Start an export, follow its progress, then download the file')
    .addOption(new Option('--type <type>', 'what to export').choices(EXPORT_TYPES).makeOptionMandatory())
    .addOption(new Option('--format <format>', 'file format').choices(EXPORT_FORMATS).makeOptionMandatory())
    .addOption(new Option('--date-from <date>', 'start (YYYY-MM-DD or ISO-8601, UTC)').argParser(instantFlag('start')).makeOptionMandatory())
    .addOption(new Option('--date-to <date>', 'end, exclusive (a bare date includes that day)').argParser(instantFlag('end')).makeOptionMandatory())
    .option('--team <id>', 'only this team’s rows')
    .option('--user <id>', 'only this user’s events')
    .option('--out <file>', 'where to write the file (default: a name from the job)')
    .action(async (flags: CreateFlags, command: Command) => {
      const ctx = contextOf(command)
      const client = ctx.admin()
      // Before the job starts: an export that runs for minutes must not fail only when it is written.
      await writableFolderOf(flags.out ?? 'export')
      const scope = { ...(flags.team !== undefined && { team_id: flags.team }), ...(flags.user !== undefined && { user_id: flags.user }) }
      const body = { type: flags.type, format: flags.format, date_from: flags.dateFrom, date_to: flags.dateTo, ...(Object.keys(scope).length > 0 && { scope }) }
      const created = await client.json<ExportJobView>('POST', '/v1/export-jobs', { body })
      const finished = await followJob(client, created)
      if (finished.status === 'failed') throw new ExportFailedError(`export ${finished.id} failed: ${errorText(finished.error)}`)
      if (finished.status === 'expired') throw new ExportFailedError(expiredText(finished))
      const { file, bytes } = await client.download(downloadPath(finished.id), (suggested) => flags.out ?? suggested ?? defaultFileName(finished))
      ctx.output.result(
        { ...finished, file, bytes },
        () => `Export ${finished.id} completed: ${plural(finished.rows_written, 'row')}, ${plural(bytes, 'byte')} written to ${file}`,
      )
    })

  withSharedOptions(jobs.command('list'))
    .description('List export jobs')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      const page = await ctx.admin().json<{ data: ExportJobView[] }>('GET', '/v1/export-jobs')
      ctx.output.result(page, () => renderTable(page.data, JOB_COLUMNS, 'No export jobs.'))
    })

  withSharedOptions(jobs.command('show').argument('<id>', 'export job id'))
    .description('Show one export job')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      const job = await ctx.admin().json<ExportJobView>('GET', `/v1/export-jobs/${encodeURIComponent(id)}`)
      ctx.output.result(job, () => jobDetails(job))
    })

  withSharedOptions(jobs.command('download').argument('<id>', 'export job id'))
    .description('Download the file of a completed export job')
    .option('--out <file>', 'where to write the file (default: a name from the job)')
    .action(async (id: string, flags: { out?: string }, command: Command) => {
      await downloadJob(contextOf(command), id, flags.out)
    })
}

async function downloadJob(ctx: CliContext, id: string, out: string | undefined): Promise<void> {
  const client = ctx.admin()
  await writableFolderOf(out ?? 'export')
  const job = await client.json<ExportJobView>('GET', `/v1/export-jobs/${encodeURIComponent(id)}`)
  if (job.status === 'expired') throw new ExportFailedError(expiredText(job))
  if (job.status !== 'completed')
    throw new ExportFailedError(`export ${job.id} is ${job.status}${job.status === 'failed' ? `: ${errorText(job.error)}` : ', not completed yet'}`)
  const { file, bytes } = await client
    .download(downloadPath(job.id), (suggested) => out ?? suggested ?? defaultFileName(job))
    .catch((error: unknown) => {
      // Expired between the look-up and the download: the same line as above, not the raw 410.
      if (error instanceof ApiError && error.status === 410) throw new ExportFailedError(expiredText({ ...job, expired_at: null }))
      throw error
    })
  ctx.output.result({ ...job, file, bytes }, () => `${plural(bytes, 'byte')} written to ${file}`)
}

async function writableFolderOf(file: string): Promise<void> {
  const folder = dirname(resolve(file))
  try {
    await access(folder, constants.W_OK)
  } catch (error) {
    throw new UsageError(`--out: cannot write into ${folder} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

/** Polls until the job is completed or failed, drawing its progress; Ctrl-C says how to resume. */
async function followJob(client: GatewayClient, created: ExportJobView): Promise<ExportJobView> {
  const progress = startProgress(`export ${created.id}`, 100)
  const onInterrupt = () => {
    progress.stop()
    process.stderr.write(`\ntollgate: stopped following export ${created.id}; it goes on on the gateway. Later: tollgate export-jobs download ${created.id}\n`)
    process.exit(130)
  }
  process.once('SIGINT', onInterrupt)
  try {
    let job = created
    for (;;) {
      progress.update(Math.round(job.progress * 100), rowsText(job))
      if (TERMINAL.has(job.status)) return job
      await sleep(POLL_INTERVAL_MS)
      job = await client.json<ExportJobView>('GET', `/v1/export-jobs/${encodeURIComponent(job.id)}`)
    }
  } finally {
    process.off('SIGINT', onInterrupt)
    progress.stop()
  }
}

const downloadPath = (id: string) => `/v1/export-jobs/${encodeURIComponent(id)}/download`

/** When the server suggests no name: `tollgate-events-20260501-20260601-exp_01J….csv`. */
export function defaultFileName(job: Pick<ExportJobView, 'id' | 'type' | 'format' | 'date_from' | 'date_to'>): string {
  const day = (iso: string) => iso.slice(0, 10).replace(/-/g, '')
  // basename: a job id is the server's word; it must not steer the file into another folder.
  return basename(`tollgate-${job.type}-${day(job.date_from)}-${day(job.date_to)}-${job.id}.${job.format}`.replace(/[^\w.-]/g, '_'))
}

/** The one line for a job whose file was deleted after the retention period. */
function expiredText(job: Pick<ExportJobView, 'id' | 'expired_at'>): string {
  const at = job.expired_at ? ` at ${timeText(job.expired_at)}` : ''
  return `export ${job.id} expired${at}: the gateway deleted its file after the retention period (exports.retention_hours). Start a new export: tollgate export-jobs create …`
}

function rowsText(job: ExportJobView): string {
  return job.rows_total === null ? `${job.rows_written} rows` : `${job.rows_written}/${job.rows_total} rows`
}

function errorText(error: ExportJobView['error']): string {
  if (error === null) return 'no reason given'
  if (typeof error === 'string') return error
  return [error.code, error.message].filter(Boolean).join(': ') || 'no reason given'
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const JOB_COLUMNS: Column<ExportJobView>[] = [
  { header: 'ID', value: (j) => j.id },
  { header: 'STATUS', value: (j) => j.status },
  { header: 'TYPE', value: (j) => j.type },
  { header: 'FORMAT', value: (j) => j.format },
  { header: 'FROM', value: (j) => timeText(j.date_from) },
  { header: 'TO', value: (j) => timeText(j.date_to) },
  { header: 'PROGRESS', value: (j) => `${Math.round(j.progress * 100)}%`, align: 'right' },
  { header: 'ROWS', value: (j) => j.rows_written, align: 'right' },
  { header: 'CREATED', value: (j) => timeText(j.created_at) },
]

function jobDetails(job: ExportJobView): string {
  return renderFields([
    ['id', job.id],
    ['status', job.status],
    [
      'what',
      `${job.type} as ${job.format}, ${timeText(job.date_from)} → ${timeText(job.date_to)}${job.scope?.team_id ? `, team ${job.scope.team_id}` : ''}${job.scope?.user_id ? `, user ${job.scope.user_id}` : ''}`,
    ],
    ['progress', `${Math.round(job.progress * 100)}% (${rowsText(job)})`],
    ['file', fileText(job)],
    ['error', job.error === null ? '-' : errorText(job.error)],
    ['created', timeText(job.created_at)],
    ['completed', timeText(job.completed_at)],
  ])
}

function fileText(job: ExportJobView): string {
  if (job.status === 'completed') {
    const until = job.expires_at ? `, kept until ${timeText(job.expires_at)}` : ''
    return `${plural(job.bytes ?? 0, 'byte')}${until}; tollgate export-jobs download ${job.id}`
  }
  if (job.status === 'expired') return `deleted${job.expired_at ? ` ${timeText(job.expired_at)}` : ''} (retention passed); start a new export`
  return '-'
}
