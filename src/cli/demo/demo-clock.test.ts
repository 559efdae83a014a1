import { describe, expect, it } from 'vitest'
import { newId } from '../../lib/ids.js'
import { DemoClock } from './demo-clock.js'

describe('DemoClock', () => {
  it('reads whole milliseconds after travelling to a fractional instant (budget periods and ids need them)', () => {
    // The live push spreads calls over what is left of the day: just after midnight that step is a fraction.
    const clock = new DemoClock()
    const target = Date.UTC(2026, 11, 2, 0, 3) + 0.5334
    clock.travelTo(target)
    const now = clock.nowMs()
    expect(Number.isSafeInteger(now)).toBe(true)
    expect(Math.abs(now - target)).toBeLessThan(1_000)
  })

  it('a fractional instant still makes a well-formed id', () => {
    expect(newId('req', Date.UTC(2026, 11, 2) + 0.5)).toMatch(/^req_[0-9a-hjkmnp-tv-z]{26}$/)
  })
})
