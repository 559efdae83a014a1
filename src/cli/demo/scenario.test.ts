/**
 * The demo's traffic plan, pure: reproducible from its seed, quiet at night, the spike where the
 * console will show it, and the dearer prompt version only after its deploy day.
 */
import { describe, expect, it } from 'vitest'
import { SPIKE, hourlyCalls, rhythmOf, seededRandom } from './scenario.js'
import { amountForShare } from './demo-setup.js'
import { promptCharsForShare } from './run-demo.js'

const HOUR_MS = 3_600_000
const NOW_MS = Date.UTC(2026, 10, 20, 12, 30)
const hourStart = (hoursAgo: number) => Math.floor(NOW_MS / HOUR_MS) * HOUR_MS - hoursAgo * HOUR_MS

describe('hourlyCalls', () => {
  it('is the same for the same seed', () => {
    expect(hourlyCalls(hourStart(5), NOW_MS, 1, seededRandom(7))).toEqual(hourlyCalls(hourStart(5), NOW_MS, 1, seededRandom(7)))
  })

  it('puts the spike in its two hours, on summarize_v4 with long prompts, and nowhere else', () => {
    const random = seededRandom(1)
    const spikeCalls = (hoursAgo: number) =>
      hourlyCalls(hourStart(hoursAgo), NOW_MS, 1, random).filter((c) => c.endpoint === SPIKE.endpoint && c.promptChars >= SPIKE.promptChars * 0.9)
    expect(spikeCalls(SPIKE.startHoursAgo)).toHaveLength(SPIKE.callsPerHour)
    expect(spikeCalls(SPIKE.startHoursAgo - 1)).toHaveLength(SPIKE.callsPerHour)
    expect(spikeCalls(SPIKE.startHoursAgo + 1)).toHaveLength(0)
    expect(spikeCalls(SPIKE.startHoursAgo - 2)).toHaveLength(0)
    expect(spikeCalls(SPIKE.startHoursAgo).every((c) => c.promptVersion === 'summarize_v4')).toBe(true)
  })

  it('uses summarize_v3 before the v4 deploy (4 days ago) and v4 after', () => {
    const random = seededRandom(3)
    const versions = (hoursAgo: number) =>
      new Set(
        Array.from({ length: 20 }, () => hourlyCalls(hourStart(hoursAgo), NOW_MS, 3, random))
          .flat()
          .filter((c) => c.endpoint === 'search.summarize')
          .map((c) => c.promptVersion),
      )
    expect(versions(6 * 24)).toEqual(new Set(['summarize_v3']))
    expect(versions(24)).toEqual(new Set(['summarize_v4']))
  })

  it('is quieter at night and at weekends than in office hours', () => {
    expect(rhythmOf(Date.UTC(2026, 10, 18, 3))).toBeLessThan(rhythmOf(Date.UTC(2026, 10, 18, 11)))
    expect(rhythmOf(Date.UTC(2026, 10, 21, 11))).toBe(rhythmOf(Date.UTC(2026, 10, 18, 11)) / 2)
  })
})

describe('amounts and pushes', () => {
  it('sets an amount that puts the spend at its share, in cents, with a floor when nothing was spent', () => {
    expect(amountForShare(4.2, 0.42, 1)).toBe(10)
    expect(amountForShare(0.001, 0.5, 1)).toBe(0.01)
    expect(amountForShare(0, 0.5, 1)).toBe(1)
  })

  it('sizes a pushed call to a share of the amount, within the prompt bounds', () => {
    expect(promptCharsForShare(1, 0.03)).toBe(48_000)
    expect(promptCharsForShare(0.01, 0.03)).toBe(2_000)
    expect(promptCharsForShare(1_000, 0.03)).toBe(60_000)
  })
})
