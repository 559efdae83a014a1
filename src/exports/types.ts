/**
 * Export jobs: a file of usage events, wallet ledger entries or budget periods over a date range,
 * written in the background by one gateway process and downloaded from any process that can read
 * the exports folder. The job row in the store is the only coordination between processes: a
 * process claims a job atomically and holds it by renewing a lease while it writes.
 */

export const EXPORT_TYPES = ['events', 'ledger', 'budgets'] as const
export type ExportType = (typeof EXPORT_TYPES)[number]

export const EXPORT_FORMATS = ['csv', 'ndjson'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

export const EXPORT_STATUSES = ['queued', 'running', 'completed', 'failed', 'expired'] as const
/** `expired`: a completed job whose file was deleted once the retention period had passed. */
export type ExportStatus = (typeof EXPORT_STATUSES)[number]

/** Whose rows: undefined fields do not filter. A team_admin's jobs always carry its team. */
export interface ExportScope {
  readonly teamId: string | undefined
  readonly userId: string | undefined
}

/** What a caller asks for; the job's identity and state are added by the store. */
export interface ExportRequest {
  readonly id: string
  readonly orgId: string
  readonly type: ExportType
  readonly format: ExportFormat
  /** Half-open [fromMs, toMs). */
  readonly fromMs: number
  readonly toMs: number
  readonly scope: ExportScope
  /** The admin token (id) that asked, for the record; never the token itself. */
  readonly createdBy: string
  readonly createdAtMs: number
}

export interface ExportJob extends ExportRequest {
  readonly status: ExportStatus
  readonly rowsWritten: number
  /** Counted when the job starts; undefined while queued. */
  readonly rowsTotal: number | undefined
  readonly bytes: number | undefined
  /** Why it failed, in words a user can act on. */
  readonly error: string | undefined
  /** The process holding the job (`host:pid:random`), while running; the writer, once completed. */
  readonly workerId: string | undefined
  readonly leaseUntilMs: number | undefined
  /** Claims so far: a job whose process died is claimed again, up to a limit. */
  readonly attempts: number
  readonly startedAtMs: number | undefined
  readonly completedAtMs: number | undefined
  /** When its retention ended (completed_at + the retention then in force); set with `expired`. */
  readonly expiredAtMs: number | undefined
}

/**
 * How many jobs may wait or run at once (queued + running). `orgMax` counts every job of the org;
 * `teamMax`, when given, also counts the jobs of the request's team, so one team-confined token
 * cannot take all of its org's places.
 */
export interface PendingLimits {
  readonly orgMax: number
  readonly teamMax?: number | undefined
  /** With `teamMax`: completed exports of the team whose files are still kept (the disk they hold). */
  readonly teamKeptMax?: number | undefined
  /**
   * Bytes of the team's files (completed and kept, or being written) at which a request scoped to
   * the team is refused, whoever asks: the runner fails a job of the team whose file would pass it.
   */
  readonly teamBytesMax?: number | undefined
}

/** What an org and a request's team hold when a job is created. */
export interface HeldByQueue {
  readonly org: number
  readonly team: number
  readonly teamKept: number
  /** Bytes of the team's completed (kept) and running jobs' files. */
  readonly teamBytes: number
}

/** Throws ExportQueueFull when a create would pass `limits`, given what the org and team hold now. */
export function throwOverLimits(limits: PendingLimits, teamId: string | null, held: HeldByQueue): void {
  if (held.org >= limits.orgMax) throw new ExportQueueFull('org', limits.orgMax)
  if (teamId === null) return
  if (limits.teamMax !== undefined) {
    if (held.team >= limits.teamMax) throw new ExportQueueFull('team', limits.teamMax)
    if (limits.teamKeptMax !== undefined && held.teamKept >= limits.teamKeptMax) throw new ExportQueueFull('team_kept', limits.teamKeptMax)
  }
  if (limits.teamBytesMax !== undefined && held.teamBytes >= limits.teamBytesMax) throw new ExportQueueFull('team_bytes', limits.teamBytesMax, held.teamBytes)
}

/** A create refused by `PendingLimits`; nothing was written. */
export class ExportQueueFull extends Error {
  constructor(
    /** Which limit: the org's pending jobs, the team's, the team's kept files or their bytes. */
    readonly limitOf: 'org' | 'team' | 'team_kept' | 'team_bytes',
    readonly limit: number,
    /** `team_bytes`: the bytes the team's files hold. */
    readonly held?: number,
  ) {
    super(`export queue full: ${limitOf} limit ${limit}`)
  }
}

/**
 * Why a job failed for the disk, first in its `error` (`code: message`); listed in docs/errors.md.
 * `export_bytes_quota_exceeded`: the file would have passed what is left of its team's
 * `exports.team_bytes_kept_max`; `export_disk_space_low`: the folder's disk had less free than
 * `exports.disk_free_min_bytes`.
 */
export const EXPORT_FAILURE_CODES = ['export_bytes_quota_exceeded', 'export_disk_space_low'] as const
export type ExportFailureCode = (typeof EXPORT_FAILURE_CODES)[number]

export interface ProgressUpdate {
  readonly rowsWritten: number
  /** Bytes of the file so far: a team's other jobs count them against its quota. */
  readonly bytesWritten: number
  readonly rowsTotal: number
  readonly leaseUntilMs: number
}

/** The job table. Every transition names the worker, so a process that lost its lease changes nothing. */
export interface ExportJobStore {
  /**
   * Queues a job; with `limits`, counting the pending jobs and inserting is one atomic step (two
   * processes creating at once cannot both take the last place): over a limit it throws
   * ExportQueueFull and writes nothing.
   */
  createExportJob(request: ExportRequest, limits?: PendingLimits): Promise<ExportJob>
  getExportJob(id: string): Promise<ExportJob | undefined>
  /** The jobs among `ids` that exist (any order); the sweeper asks about the files it finds. */
  findExportJobs(ids: readonly string[]): Promise<ExportJob[]>
  /**
   * Marks `expired` every completed job whose `completed_at + retentionMs` is at or before
   * `nowMs`, in one atomic statement (several processes may sweep at once; each job changes
   * once). Returns how many changed. The files are deleted after, by the caller.
   */
  expireExportJobs(nowMs: number, retentionMs: number): Promise<number>
  /** Newest first; `teamId` keeps only that team's jobs. */
  listExportJobs(orgId: string, teamId: string | undefined, limit: number): Promise<ExportJob[]>
  /**
   * Atomically takes the oldest job that is queued, or running under an expired lease (its
   * process died), for `workerId` until `leaseUntilMs`. A stale job that already had
   * `attemptsMax` claims is marked failed instead.
   */
  claimExportJob(workerId: string, nowMs: number, leaseUntilMs: number, attemptsMax: number): Promise<ExportJob | undefined>
  /**
   * Bytes of the files of `teamId`'s jobs in the org, but `exceptId`'s: the completed ones not yet
   * expired, and the running ones as far as their last progress update.
   */
  teamExportBytes(orgId: string, teamId: string, exceptId: string): Promise<number>
  /** Records progress and renews the lease; false when the worker no longer holds the job. */
  updateExportProgress(id: string, workerId: string, progress: ProgressUpdate): Promise<boolean>
  completeExportJob(id: string, workerId: string, result: { rowsWritten: number; bytes: number; atMs: number }): Promise<boolean>
  failExportJob(id: string, workerId: string, error: string, atMs: number): Promise<boolean>
  /** Puts a job back in the queue at once (a process shutting down gives its job to the next one). */
  releaseExportJob(id: string, workerId: string): Promise<boolean>
}

/** A row of an export: column name → value (numbers stay numbers; nested data is an object). */
export type ExportRow = Readonly<Record<string, string | number | boolean | null | object>>

/** What a source reads: the job's type, range and scope. */
export type ExportSelection = Pick<ExportJob, 'orgId' | 'type' | 'fromMs' | 'toMs' | 'scope'>

/**
 * Raw rows of events and ledger entries, in a stable order, a page at a time: never the whole
 * result in memory. `open` fixes what one job reads (a SQLite read snapshot; PostgreSQL keyset
 * pages) until `close`.
 */
export interface ExportRowSource {
  openExportReader(selection: ExportSelection & { type: 'events' | 'ledger' }, pageSize: number): Promise<ExportReader>
}

export interface ExportReader {
  /** Rows the reader will yield (PostgreSQL: at the start; rows arriving later may add to it). */
  count(): Promise<number>
  /** Raw store rows (snake_case columns), `pageSize` at most per page, in order. The consumer may empty a page it was given. */
  pages(): AsyncIterable<ReadonlyArray<Record<string, unknown>>>
  close(): Promise<void>
}
