import { describe, expect, it } from 'vitest'
import { micros } from '../money/index.js'
import { RecentSpend } from './recent-spend.js'

describe('RecentSpend: the counter values a policy may decide from without a read', () => {
  it('answers only while the value is younger than the caller allows', () => {
    const recent = new RecentSpend()
    recent.saw('org|bud|2026-12', { spentMicros: micros(700), reservedMicros: micros(50) }, 1_000)
    expect(recent.get('org|bud|2026-12', 1_000, 1_900)).toEqual({ spentMicros: 700, reservedMicros: 50 })
    expect(recent.get('org|bud|2026-12', 1_000, 2_001)).toBeUndefined()
    expect(recent.get('org|bud|2026-11', 1_000, 1_001)).toBeUndefined()
  })

  it('never moves spend back when an older reply arrives after a newer one, but refreshes its age', () => {
    const recent = new RecentSpend()
    recent.sawSpent('k', micros(900), 1_000)
    recent.sawSpent('k', micros(400), 1_500)
    expect(recent.get('k', 100, 1_550)?.spentMicros).toBe(900)
    recent.sawSpent('k', micros(1_200), 1_600)
    expect(recent.get('k', 100, 1_650)?.spentMicros).toBe(1_200)
  })

  it('stays bounded: once full it starts over, keeping the newest', () => {
    const recent = new RecentSpend()
    for (let i = 0; i <= 10_000; i++) recent.sawSpent(`k${i}`, micros(i), 0)
    expect(recent.get('k0', 1, 0)).toBeUndefined()
    expect(recent.get('k10000', 1, 0)?.spentMicros).toBe(10_000)
  })
})
