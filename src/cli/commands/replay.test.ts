/** A replay report → the table a user reads: a capped list of firings says how many there were in all. */
import { describe, expect, it } from 'vitest'
import { renderReplay, type ReplayJobView } from './replay.js'

const stat = { count: 0, first_at: null, last_at: null }

function aJob(listed: number, total: number): ReplayJobView {
  const firing = { threshold_percent: 50, kind: 'threshold', action: 'notify', period: '2026-11-01', at: '2026-11-01T10:00:00.000Z' }
  return {
    id: 'rpl_1',
    status: 'done',
    from: '2026-11-01T00:00:00.000Z',
    to: '2026-12-01T00:00:00.000Z',
    progress: { processed: 1, total: 1 },
    report: {
      totals: {
        events: 1,
        baseline_cost_micros: 0,
        replayed_cost_micros: 0,
        avoided_micros: 0,
        changed_decisions: 0,
        estimated_costs: 0,
        critical_refusals: 0,
        decisions: {},
      },
      scopes: [
        {
          kind: 'budget',
          scope: 'team:growth',
          name: 'growth daily',
          blocked: stat,
          degraded: stat,
          would_block: stat,
          critical_refusals: stat,
          avoided_micros: 0,
          thresholds: Array.from({ length: listed }, () => firing),
          thresholds_total: total,
        },
      ],
    },
  }
}

describe('renderReplay', () => {
  it('counts every firing, and says when only the first are listed', () => {
    expect(renderReplay(aJob(100, 365_000))).toContain('Thresholds that would have fired (365000 firings; the first 100 listed, --json counts each threshold):')
  })

  it('says nothing of a cap when every firing is listed', () => {
    expect(renderReplay(aJob(2, 2))).toContain('Thresholds that would have fired (2 firings):')
  })
})
