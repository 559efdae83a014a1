/** Finished replay jobs are kept by count and by the total size of their reports, newest first. */
import { describe, expect, it } from 'vitest'
import { ReplayJobs, REPLAYS_KEPT_BYTES_MAX, REPLAYS_KEPT_MAX } from './jobs.js'
import { emptyScope, emptyTotals, reportBytesOf, type ReplayReport, type ScopeReport } from './tally.js'

/** A report of `scopes` budgets, each with 1,000 threshold counts: about 160 KB a scope. */
function aReport(scopes: number): ReplayReport {
  const count = { threshold_percent: 1, kind: 'threshold' as const, action: 'notify' as const, count: 1, first_at: '', last_at: '' }
  const scope = (i: number): ScopeReport => ({
    ...emptyScope(`budget:b${i}`, 'budget', 'team:t', `b${i}`, null),
    thresholds_total: 1000,
    thresholds_truncated: true,
    threshold_counts: Array.from({ length: 1000 }, () => count),
  })
  return {
    totals: emptyTotals(),
    scopes: Array.from({ length: scopes }, (_, i) => scope(i)),
    series: [],
  }
}

async function runAll(jobs: ReplayJobs, reports: readonly ReplayReport[]): Promise<string[]> {
  const ids: string[] = []
  for (const report of reports) {
    const started = jobs.start({ orgId: 'o', teamId: undefined, fromMs: 0, toMs: 1, total: 0 }, async () => report)
    if (started.kind !== 'started') throw new Error('busy')
    ids.push(started.job.id)
    await new Promise((resolve) => setImmediate(resolve))
  }
  return ids
}

let now = 0
const clock = { nowMs: () => ++now }

describe('ReplayJobs', () => {
  it('estimates a report’s size within a factor of two of its JSON', () => {
    const report = aReport(3)
    const json = JSON.stringify(report).length
    expect(reportBytesOf(report)).toBeGreaterThan(json / 2)
    expect(reportBytesOf(report)).toBeLessThan(json * 2)
  })

  it('forgets the oldest finished jobs once their reports pass the size bound, keeping the newest', async () => {
    const jobs = new ReplayJobs(clock, () => {})
    const big = aReport(100) // about 16 MB estimated
    const ids = await runAll(jobs, [big, big, big, big])
    const held = jobs.held()
    expect(held.reportBytes).toBeLessThanOrEqual(REPLAYS_KEPT_BYTES_MAX)
    expect(held.jobs).toBe(Math.floor(REPLAYS_KEPT_BYTES_MAX / reportBytesOf(big)))
    expect(jobs.get(ids.at(-1)!, 'o', undefined)).toBeDefined()
    expect(jobs.get(ids[0]!, 'o', undefined)).toBeUndefined()
  })

  it('keeps the newest finished job even when it alone passes the bound, and at most REPLAYS_KEPT_MAX small ones', async () => {
    const jobs = new ReplayJobs(clock, () => {})
    const [huge] = await runAll(jobs, [aReport(250)])
    expect(jobs.get(huge!, 'o', undefined)?.status).toBe('done')
    await runAll(
      jobs,
      Array.from({ length: REPLAYS_KEPT_MAX + 5 }, () => aReport(0)),
    )
    expect(jobs.held().jobs).toBe(REPLAYS_KEPT_MAX)
    expect(jobs.get(huge!, 'o', undefined)).toBeUndefined()
  })
})
