/**
 * Runs a replay over a window of stored events: keyset pages from the usage store, each page
 * decided by the engine. The event loop is given back (`setImmediate`) after every page and,
 * within a page, after every `REPLAY_WORK_PER_YIELD` units of the engine's work (budget
 * evaluations and threshold checks), so a serving gateway keeps answering calls while a million
 * events replay, or while a policy of a thousand budgets replays a few. Progress is reported
 * after every page.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { ScanCursor, UsageScan, UsageStore } from '../usage/index.js'
import { ReplayEngine, type ReplayOutcome, type ReplaySettings } from './engine.js'
import type { ReplayReport } from './tally.js'

/** Events per page: large enough to amortise a query, small enough that one page is a few milliseconds of work. */
export const REPLAY_PAGE_SIZE = 1_000

/**
 * Engine work between two yields: about a few milliseconds of it. An event costs one unit per
 * budget of the policy plus one per threshold checked, so a page of 1,000 events under a policy
 * of 10 budgets is about 10,000 units, and under 10 budgets of 1,000 thresholds 10 million.
 */
export const REPLAY_WORK_PER_YIELD = 50_000

export interface ReplayProgress {
  readonly processed: number
  /** Events in the window when the replay started (more may arrive; they are replayed too). */
  readonly total: number
}

export interface RunOptions {
  readonly onProgress?: (progress: ReplayProgress) => void
  /** Every event's outcome, in order (the equivalence test compares them with the recording). */
  readonly onOutcome?: (outcome: ReplayOutcome) => void
  /** Stops between pages when aborted. */
  readonly signal?: AbortSignal
  readonly pageSize?: number
  /** The window's event count when the caller has counted already (`countReplayEvents`). */
  readonly total?: number
  /** Engine work between two yields within a page (`REPLAY_WORK_PER_YIELD`). */
  readonly workPerYield?: number
}

/** Events a replay of `scan` will read (as of now). */
export async function countReplayEvents(usage: Pick<UsageStore, 'query'>, scan: UsageScan): Promise<number> {
  const report = await usage.query({ ...scan, groupBy: [], bucketMs: Math.max(1, scan.toMs - scan.fromMs), environment: undefined })
  return report.totals.requests
}

export async function runReplay(
  usage: Pick<UsageStore, 'scan' | 'query'>,
  scan: UsageScan,
  settings: ReplaySettings,
  options: RunOptions = {},
): Promise<ReplayReport> {
  const total = options.total ?? (await countReplayEvents(usage, scan))
  const engine = new ReplayEngine(settings)
  const pageSize = options.pageSize ?? REPLAY_PAGE_SIZE
  let cursor: ScanCursor | undefined
  const workPerYield = options.workPerYield ?? REPLAY_WORK_PER_YIELD
  let processed = 0
  let workAtYield = 0
  options.onProgress?.({ processed, total })
  for (;;) {
    options.signal?.throwIfAborted()
    const page = await usage.scan(scan, cursor, pageSize)
    for (const [i, event] of page.entries()) {
      const outcome = engine.apply(event)
      options.onOutcome?.(outcome)
      if (engine.work - workAtYield >= workPerYield) {
        workAtYield = engine.work
        options.onProgress?.({ processed: processed + i + 1, total: Math.max(total, processed + i + 1) })
        await yieldToLoop()
        options.signal?.throwIfAborted()
      }
    }
    processed += page.length
    options.onProgress?.({ processed, total: Math.max(total, processed) })
    if (page.length < pageSize) break
    const last = page[page.length - 1]!
    cursor = { atMs: last.atMs, id: last.id }
    workAtYield = engine.work
    await yieldToLoop()
  }
  return engine.tally.report()
}
