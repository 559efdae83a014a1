import { describe, expect, it } from 'vitest'
import { counterKey } from '../ledger/index.js'
import { micros } from '../money/index.js'
import { RecentSpend } from './recent-spend.js'

const may = { budgetId: 'bud', periodKey: '2026-12' }
const crossing = (spent: number) => ({ ...may, spentBeforeMicros: micros(0), spentAfterMicros: micros(spent) })

describe('RecentSpend: the counter values a policy may decide from without a read', () => {
  it('answers only while every value is younger than the caller allows', () => {
    const recent = new RecentSpend()
    recent.sawRead('org', [may], new Map([[counterKey(may.budgetId, may.periodKey), { spentMicros: micros(700), reservedMicros: micros(50) }]]), 1_000)
    expect(recent.recent('org', [may], 1_000, 1_900)?.get(counterKey(may.budgetId, may.periodKey))).toEqual({ spentMicros: 700, reservedMicros: 50 })
    expect(recent.recent('org', [may], 1_000, 2_001)).toBeUndefined()
    // Another org, or one counter never seen: nothing, so the caller reads them all.
    expect(recent.recent('other', [may], 1_000, 1_001)).toBeUndefined()
    expect(recent.recent('org', [may, { budgetId: 'bud', periodKey: '2026-11' }], 1_000, 1_001)).toBeUndefined()
  })

  it('never moves spend back when an older settle answers after a newer one, but refreshes its age', () => {
    const recent = new RecentSpend()
    recent.sawCrossings('org', [crossing(900)], 1_000)
    recent.sawCrossings('org', [crossing(400)], 1_500)
    expect(recent.recent('org', [may], 100, 1_550)?.get(counterKey(may.budgetId, may.periodKey))?.spentMicros).toBe(900)
    recent.sawCrossings('org', [crossing(1_200)], 1_600)
    expect(recent.recent('org', [may], 100, 1_650)?.get(counterKey(may.budgetId, may.periodKey))?.spentMicros).toBe(1_200)
  })

  it('stays bounded: once full it starts over, keeping the newest', () => {
    const recent = new RecentSpend()
    for (let i = 0; i <= 10_000; i++) recent.sawCrossings('org', [{ ...crossing(i), budgetId: `b${i}` }], 0)
    expect(recent.recent('org', [{ budgetId: 'b0', periodKey: may.periodKey }], 1, 0)).toBeUndefined()
    expect(recent.recent('org', [{ budgetId: 'b10000', periodKey: may.periodKey }], 1, 0)).toBeDefined()
  })
})
