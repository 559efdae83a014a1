/**
 * Runs export jobs in the gateway process, one at a time. Every process polls the job table and
 * claims the oldest runnable job atomically, so with several processes each job is written by one
 * of them. While it writes, the process renews the job's lease with each progress update; a
 * process that dies stops renewing, and once the lease has passed another process (or the same
 * one restarted) claims the job again and writes the file from the start. After `attemptsMax`
 * claims the job is failed, saying so. A process that shuts down gracefully puts its job back in
 * the queue at once.
 *
 * Rows are streamed: a page of the store's rows at a time, written to `ID.FORMAT.….partial`
 * with back-pressure and renamed to `ID.FORMAT` when complete, so a download never sees half a
 * file. Between pages the runner yields to the event loop, so the gateway keeps serving calls.
 *
 * Retention: about once a minute every process sweeps (see `sweep()`): completed jobs past the
 * retention are marked `expired` in the store first, then the folder is cleaned against the job
 * table, so a process killed between the two leaves a file the next sweep (by any process)
 * deletes, and a download is refused by the job's status before it looks for the file.
 */
import { once } from 'node:events'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../observability/logger.js'
import { budgetPeriods, budgetRowPages, type BudgetSpendReader } from './budget-rows.js'
import { EXPORT_COLUMNS, eventRow, ledgerRow } from './columns.js'
import { encoderFor, type RowEncoder } from './format.js'
import type { ExportFailureCode, ExportJob, ExportJobStore, ExportRow, ExportRowSource } from './types.js'

export interface ExportRunnerOptions {
  /** Folder of the files (created on start). */
  readonly dir: string
  /** How long a claim lasts without a progress update. */
  readonly leaseMs: number
  /** How often an idle process looks for a job. */
  readonly pollIntervalMs: number
  /** Claims of one job before it is failed (a job that kills its process must not loop forever). */
  readonly attemptsMax: number
  /** Store rows per page. */
  readonly pageSize: number
  /** How long a completed job's file is kept before the job is `expired` and the file deleted. */
  readonly retentionMs: number
  /** How often a process sweeps expired jobs and leftover files. */
  readonly sweepIntervalMs: number
  /** Bytes the files of one team's jobs may hold (kept and being written); a job whose file would pass it fails. */
  readonly teamBytesKeptMax: number
  /** Free bytes the folder's disk keeps: checked when a job starts and with each progress update. 0: never. */
  readonly diskFreeMinBytes: number
}

export const EXPORT_RUNNER_DEFAULTS = { pollIntervalMs: 1_000, attemptsMax: 3, pageSize: 200, sweepIntervalMs: 60_000 } as const

/** A file of a job in the folder: `ID.FORMAT` (finished) or `ID.FORMAT.RANDOM.partial` (being written). */
const JOB_FILE = /^(exp_[A-Za-z0-9_-]+)\.(csv|ndjson)(\.[0-9a-f]+\.partial)?$/

export interface ExportRunnerDeps {
  readonly store: ExportJobStore
  readonly source: ExportRowSource
  readonly budgets: BudgetSpendReader
  /** Makes every committed event readable by the SQL stores (the Redis journal drain). */
  readonly flush: () => Promise<void>
  readonly clock: Clock
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>
  readonly options: ExportRunnerOptions
}

/** The job was taken over by another process (this one's lease ran out). */
class LostLease extends Error {}
/** This process is shutting down. */
class Stopping extends Error {}
/** The job would take disk it may not: failed at once (not retried), with the code first in its error. */
class DiskRefused extends Error {
  constructor(
    readonly code: ExportFailureCode,
    message: string,
  ) {
    super(message)
  }
}

/** Where a job's finished file is. */
export function exportFilePath(dir: string, job: Pick<ExportJob, 'id' | 'format'>): string {
  return join(dir, `${job.id}.${job.format}`)
}

export class ExportRunner {
  /** `host:pid:random`: which process holds a job, readable by an operator. */
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #stopping = false
  #wanted = false
  #sweepTimer: NodeJS.Timeout | undefined
  #sweeping: Promise<SweepResult> | undefined

  constructor(private readonly deps: ExportRunnerDeps) {}

  /** The folder finished files are in. */
  get dir(): string {
    return this.deps.options.dir
  }

  /** How long a completed job's file is kept. */
  get retentionMs(): number {
    return this.deps.options.retentionMs
  }

  async start(): Promise<void> {
    await mkdir(this.deps.options.dir, { recursive: true })
    this.#schedule(0)
    // A first sweep at start: what a killed process left is cleaned as soon as one comes back.
    this.#scheduleSweep(0)
  }

  /** Look for work now (after a job was created in this process). */
  kick(): void {
    if (this.#stopping) return
    if (this.#running) {
      this.#wanted = true
      return
    }
    this.#schedule(0)
  }

  /** Stops polling; a job being written is put back in the queue for the next process. */
  async stop(): Promise<void> {
    this.#stopping = true
    if (this.#timer) clearTimeout(this.#timer)
    if (this.#sweepTimer) clearTimeout(this.#sweepTimer)
    await Promise.all([this.#running, this.#sweeping])
  }

  #scheduleSweep(delayMs: number): void {
    if (this.#stopping) return
    this.#sweepTimer = setTimeout(() => {
      this.sweep()
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'exports: sweeping expired files failed; retrying'))
        .finally(() => this.#scheduleSweep(this.deps.options.sweepIntervalMs))
    }, delayMs)
    this.#sweepTimer.unref()
  }

  /**
   * Expires completed jobs past the retention, then deletes every file whose job no longer needs
   * it: the file of an expired or failed job, the partial files of a job that is not being
   * written (completed, failed, expired), and a job file whose job the store does not know once
   * it is older than the retention (the store was reset). Files of queued or running jobs are left
   * to their writer (a new claim removes the partial files of earlier attempts). Files not named
   * like a job's are not touched.
   *
   * Safe with any number of processes at once and after a kill at any point: marking is one
   * atomic statement per store, deleting is idempotent, and every step is redone from the store's
   * state by the next sweep. Downloads check the job's status before the file, so a job marked
   * but not yet cleaned answers 410, never a missing file. One sweep at a time per process.
   */
  sweep(): Promise<SweepResult> {
    this.#sweeping ??= this.#sweepOnce().finally(() => {
      this.#sweeping = undefined
    })
    return this.#sweeping
  }

  async #sweepOnce(): Promise<SweepResult> {
    const { store, clock, options, logger } = this.deps
    const nowMs = clock.nowMs()
    const expired = await store.expireExportJobs(nowMs, options.retentionMs)
    const names = await readdir(options.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[]
      throw error
    })
    const files = names.flatMap((name) => {
      const m = JOB_FILE.exec(name)
      return m ? [{ name, id: m[1]!, partial: m[3] !== undefined }] : []
    })
    const jobs = new Map((await store.findExportJobs([...new Set(files.map((f) => f.id))])).map((j) => [j.id, j]))
    let deleted = 0
    for (const file of files) {
      const job = jobs.get(file.id)
      const path = join(options.dir, file.name)
      let remove: boolean
      if (job === undefined) {
        // Unknown to the store: the job row is written before any file, so this is a leftover of
        // a store that was reset or replaced. Kept for the retention, in case it is being read.
        const mtimeMs = await stat(path).then(
          (s) => s.mtimeMs,
          () => undefined,
        )
        remove = mtimeMs !== undefined && mtimeMs + options.retentionMs <= nowMs
      } else if (job.status === 'expired' || job.status === 'failed') remove = true
      else if (job.status === 'completed') remove = file.partial
      else remove = false
      if (!remove) continue
      await rm(path, { force: true })
      deleted++
    }
    if (expired > 0 || deleted > 0) logger.info({ expired, filesDeleted: deleted }, 'exports: retention sweep')
    return { expired, filesDeleted: deleted }
  }

  #schedule(delayMs: number): void {
    if (this.#stopping) return
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#running = this.#drainQueue().finally(() => {
        this.#running = undefined
        this.#schedule(this.#wanted ? 0 : this.deps.options.pollIntervalMs)
        this.#wanted = false
      })
    }, delayMs)
    this.#timer.unref()
  }

  /** Runs jobs until none is runnable. */
  async #drainQueue(): Promise<void> {
    const { store, clock, options, logger } = this.deps
    while (!this.#stopping) {
      let job: ExportJob | undefined
      try {
        const nowMs = clock.nowMs()
        job = await store.claimExportJob(this.workerId, nowMs, nowMs + options.leaseMs, options.attemptsMax)
      } catch (error) {
        logger.warn({ err: error }, 'exports: claiming a job failed; retrying')
        return
      }
      if (!job) return
      await this.#runClaimed(job)
    }
  }

  async #runClaimed(job: ExportJob): Promise<void> {
    const { store, clock, logger } = this.deps
    const partial = `${exportFilePath(this.deps.options.dir, job)}.${randomBytes(4).toString('hex')}.partial`
    try {
      await this.#removeAbandoned(job)
      await this.#checkDiskFree()
      logger.info({ exportId: job.id, type: job.type, attempt: job.attempts }, 'exports: job started')
      const { rowsWritten } = await this.#write(job, partial)
      const { size } = await stat(partial)
      await rename(partial, exportFilePath(this.deps.options.dir, job))
      await store.completeExportJob(job.id, this.workerId, { rowsWritten, bytes: size, atMs: clock.nowMs() })
      logger.info({ exportId: job.id, rows: rowsWritten, bytes: size }, 'exports: job completed')
    } catch (error) {
      await rm(partial, { force: true })
      if (error instanceof LostLease) {
        logger.warn({ exportId: job.id }, 'exports: another process took the job over (lease expired)')
      } else if (error instanceof Stopping) {
        await store.releaseExportJob(job.id, this.workerId).catch(() => false)
        logger.info({ exportId: job.id }, 'exports: shutting down; job returned to the queue')
      } else if (error instanceof DiskRefused) {
        logger.warn({ exportId: job.id, code: error.code, reason: error.message }, 'exports: job failed for the disk it would take')
        await store.failExportJob(job.id, this.workerId, failureText(error), clock.nowMs()).catch(() => false)
      } else {
        logger.error({ err: error, exportId: job.id }, 'exports: job failed')
        await store.failExportJob(job.id, this.workerId, failureText(error), clock.nowMs()).catch(() => false)
      }
    }
  }

  /** Partial files of earlier attempts at this job: their writers are gone, since this process holds the claim. */
  async #removeAbandoned(job: ExportJob): Promise<void> {
    const prefix = `${job.id}.${job.format}.`
    const names = await readdir(this.deps.options.dir).catch(() => [] as string[])
    await Promise.all(names.filter((n) => n.startsWith(prefix) && n.endsWith('.partial')).map((n) => rm(join(this.deps.options.dir, n), { force: true })))
  }

  /**
   * Throws DiskRefused when the folder's disk has less free than `diskFreeMinBytes`: an export
   * must not take the last of a disk the database may share. One statfs call.
   */
  async #checkDiskFree(): Promise<void> {
    const { dir, diskFreeMinBytes } = this.deps.options
    if (diskFreeMinBytes === 0) return
    const fs = await statfs(dir)
    const free = fs.bavail * fs.bsize
    if (free >= diskFreeMinBytes) return
    throw new DiskRefused(
      'export_disk_space_low',
      `the disk of the exports folder has ${free} bytes free, below exports.disk_free_min_bytes (${diskFreeMinBytes}); the export stopped and its file was deleted. Start it again once an operator has freed space on that disk`,
    )
  }

  /** Streams the job's rows into `file`; throws LostLease, Stopping or DiskRefused to give up. */
  async #write(job: ExportJob, file: string): Promise<{ rowsWritten: number }> {
    const { store, clock, options } = this.deps
    await this.deps.flush()
    const { total, pages, toRow, close } = await this.#rowsOf(job)
    // A megabyte of buffered output: most pages are handed over without waiting, so the rows of a page die young.
    const out = createWriteStream(file, { highWaterMark: 1 << 20 })
    const failed = new Promise<never>((_, reject) => out.once('error', reject))
    failed.catch(() => {})
    let written = 0
    let bytes = 0
    // What the team's other files hold, as of the last progress update: this file may take the rest.
    const teamId = job.scope.teamId
    let othersBytes = 0
    let lastUpdateMs = clock.nowMs()
    const progress = async (rowsTotal: number) => {
      lastUpdateMs = clock.nowMs()
      const held = await store.updateExportProgress(job.id, this.workerId, {
        rowsWritten: written,
        rowsTotal,
        bytesWritten: bytes,
        leaseUntilMs: lastUpdateMs + options.leaseMs,
      })
      if (!held) throw new LostLease()
      await this.#checkDiskFree()
      if (teamId !== undefined) othersBytes = await store.teamExportBytes(job.orgId, teamId, job.id)
    }
    const put = async (chunk: string) => {
      const size = Buffer.byteLength(chunk)
      if (teamId !== undefined && othersBytes + bytes + size > options.teamBytesKeptMax) {
        throw new DiskRefused(
          'export_bytes_quota_exceeded',
          `team ${teamId}'s export files would pass exports.team_bytes_kept_max (${options.teamBytesKeptMax} bytes): its other exports hold ${othersBytes} bytes and this file had reached ${bytes} with more to write. The export stopped and its file was deleted; export a shorter range, or start it again once older exports of the team have expired`,
        )
      }
      bytes += size
      await writeChunk(out, chunk, failed)
    }
    try {
      await progress(total)
      const encoder = encoderFor(job.format, EXPORT_COLUMNS[job.type])
      await put(encoder.head)
      for await (const page of pages) {
        if (this.#stopping) throw new Stopping()
        written += page.length
        await put(encodeAndRelease(page, toRow, encoder))
        // A third of the lease between renewals leaves room for a slow store round trip.
        if (clock.nowMs() - lastUpdateMs >= Math.min(1_000, options.leaseMs / 3)) await progress(Math.max(total, written))
        await nextTurn()
      }
      out.end()
      await Promise.race([once(out, 'finish'), failed])
      return { rowsWritten: written }
    } finally {
      out.destroy()
      await close()
    }
  }

  /** The job's rows as pages of raw records, and how a record becomes a file row. */
  async #rowsOf(job: ExportJob): Promise<JobRows> {
    if (job.type === 'budgets') {
      const periods = await budgetPeriods(this.deps.budgets, job, this.deps.clock.nowMs())
      return { total: periods.length, pages: budgetRowPages(this.deps.budgets, job.orgId, periods), toRow: (row) => row as ExportRow, close: async () => {} }
    }
    const reader = await this.deps.source.openExportReader({ ...job, type: job.type }, this.deps.options.pageSize)
    try {
      const total = await reader.count()
      const toRow = job.type === 'events' ? eventRow : ledgerRow
      return { total, pages: reader.pages(), toRow: (row) => toRow(row as Record<string, unknown>), close: () => reader.close() }
    } catch (error) {
      await reader.close()
      throw error
    }
  }
}

export interface SweepResult {
  /** Jobs this sweep marked `expired`. */
  readonly expired: number
  /** Files it deleted (finished or partial). */
  readonly filesDeleted: number
}

interface JobRows {
  readonly total: number
  readonly pages: AsyncIterable<ReadonlyArray<unknown>>
  readonly toRow: (record: unknown) => ExportRow
  close(): Promise<void>
}

/**
 * A page as text, emptying the page: its records are garbage before the next await, so they are
 * collected young instead of piling up in the old generation while calls are served in between
 * (which is what keeps a long export's memory flat).
 */
function encodeAndRelease(page: ReadonlyArray<unknown>, toRow: (record: unknown) => ExportRow, encoder: RowEncoder): string {
  let text = ''
  for (const record of page) text += encoder.encode(toRow(record))
  ;(page as unknown[]).length = 0
  return text
}

async function writeChunk(out: WriteStream, chunk: string, failed: Promise<never>): Promise<void> {
  if (chunk === '' || out.write(chunk)) return
  await Promise.race([once(out, 'drain'), failed])
}

/** A failure as the job shows it: the error's message, without a stack. */
function failureText(error: unknown): string {
  const code = (error as { code?: unknown }).code
  const message = error instanceof Error ? error.message : String(error)
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message
}
