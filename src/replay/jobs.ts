/**
 * Replays run as jobs in the serving process: `POST /v1/replays` starts one and answers at once,
 * `GET /v1/replays/{id}` shows its progress and, when done, its report. Jobs live in memory (a
 * restart forgets them; a replay can always be run again), a few at a time, and each is visible
 * only to its org — and, when a team_admin started it, to that team.
 */
import { newId } from '../lib/ids.js'
import type { Clock } from '../lib/clock.js'
import type { ReplayProgress } from './run.js'
import { reportBytesOf, type ReplayReport } from './tally.js'

/** Replays running at once per process: each holds a core while it works. */
export const REPLAYS_RUNNING_MAX = 2
/** Finished jobs kept for reading; the oldest is forgotten first. */
export const REPLAYS_KEPT_MAX = 20
/**
 * Finished jobs are also kept only while their reports together stay under this size (estimated,
 * `reportBytesOf`); the newest finished one is always kept, whatever its size.
 */
export const REPLAYS_KEPT_BYTES_MAX = 32_000_000

export interface ReplayJob {
  readonly id: string
  readonly orgId: string
  /** Set when a team_admin started it: only that team's events were replayed, and only that team may read it. */
  readonly teamId: string | undefined
  readonly fromMs: number
  readonly toMs: number
  readonly startedAtMs: number
  status: 'running' | 'done' | 'failed'
  progress: ReplayProgress
  finishedAtMs: number | undefined
  report: ReplayReport | undefined
  /** The report's estimated size once done (0 before). */
  reportBytes: number
  error: string | undefined
}

export type StartResult = { readonly kind: 'started'; readonly job: ReplayJob } | { readonly kind: 'busy' }

export class ReplayJobs {
  private readonly jobs = new Map<string, ReplayJob>()

  constructor(
    private readonly clock: Clock,
    private readonly onError: (error: unknown, job: ReplayJob) => void,
  ) {}

  /** Starts `run` as a job; `busy` when REPLAYS_RUNNING_MAX are running already. */
  start(
    scope: { orgId: string; teamId: string | undefined; fromMs: number; toMs: number; total: number },
    run: (onProgress: (progress: ReplayProgress) => void) => Promise<ReplayReport>,
  ): StartResult {
    const running = [...this.jobs.values()].filter((j) => j.status === 'running').length
    if (running >= REPLAYS_RUNNING_MAX) return { kind: 'busy' }
    const now = this.clock.nowMs()
    const { total, ...where } = scope
    const job: ReplayJob = {
      ...where,
      id: newId('rpl', now),
      startedAtMs: now,
      status: 'running',
      progress: { processed: 0, total },
      finishedAtMs: undefined,
      report: undefined,
      reportBytes: 0,
      error: undefined,
    }
    this.jobs.set(job.id, job)
    this.forgetOld()
    run((progress) => {
      job.progress = progress
    }).then(
      (report) => {
        job.report = report
        job.reportBytes = reportBytesOf(report)
        job.status = 'done'
        job.finishedAtMs = this.clock.nowMs()
        this.forgetOld()
      },
      (error: unknown) => {
        job.status = 'failed'
        job.error = 'the replay failed; the gateway log has the cause'
        job.finishedAtMs = this.clock.nowMs()
        this.forgetOld()
        this.onError(error, job)
      },
    )
    return { kind: 'started', job }
  }

  /** The job when the caller's org (and team, for a team job) may see it. */
  get(id: string, orgId: string, teamId: string | undefined): ReplayJob | undefined {
    const job = this.jobs.get(id)
    if (!job || job.orgId !== orgId) return undefined
    if (teamId !== undefined && job.teamId !== teamId) return undefined
    return job
  }

  /** Forgets the oldest finished jobs beyond REPLAYS_KEPT_MAX, or beyond REPLAYS_KEPT_BYTES_MAX of reports. */
  private forgetOld(): void {
    // Newest finished first; among equal finish times, the later started first.
    const newestFirst = [...this.jobs.values()].filter((j) => j.status !== 'running').reverse()
    newestFirst.sort((a, b) => (b.finishedAtMs ?? 0) - (a.finishedAtMs ?? 0))
    let kept = 0
    let bytes = 0
    for (const job of newestFirst) {
      bytes += job.reportBytes
      if (kept > 0 && (kept >= REPLAYS_KEPT_MAX || bytes > REPLAYS_KEPT_BYTES_MAX)) this.jobs.delete(job.id)
      else kept++
    }
  }

  /** Jobs held (running and finished), and the estimated size of their reports: for tests and logs. */
  held(): { readonly jobs: number; readonly reportBytes: number } {
    let reportBytes = 0
    for (const job of this.jobs.values()) reportBytes += job.reportBytes
    return { jobs: this.jobs.size, reportBytes }
  }
}
