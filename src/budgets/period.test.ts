/**
 * Period boundaries in IANA zones. Method: pin an instant, compare [start, end) and the key with
 * values worked out by hand from each zone's offsets (DST dates of 2026 included), then check
 * the half-open edges and that consecutive periods tile time with no gap or overlap.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import type { BudgetPeriod } from '../config/types.js'
import { periodOf, validTimezone } from './period.js'

const at = (iso: string) => Date.parse(iso)
const HOUR = 3_600_000

describe('periodOf', () => {
  it.each<[BudgetPeriod, string, string, string, string, string]>([
    // kind, zone, instant, start, end, key
    ['daily', 'UTC', '2026-11-29T10:00:00Z', '2026-11-29T00:00:00Z', '2026-11-30T00:00:00Z', '2026-11-29'],
    ['weekly', 'UTC', '2026-11-29T23:59:59Z', '2026-11-23T00:00:00Z', '2026-11-30T00:00:00Z', '2026-W48'],
    ['weekly', 'UTC', '2027-01-02T12:00:00Z', '2026-12-28T00:00:00Z', '2027-01-04T00:00:00Z', '2026-W53'],
    ['weekly', 'UTC', '2025-12-30T12:00:00Z', '2025-12-29T00:00:00Z', '2026-01-05T00:00:00Z', '2026-W01'],
    ['monthly', 'UTC', '2026-11-15T12:00:00Z', '2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z', '2026-11'],
    ['quarterly', 'UTC', '2026-11-15T12:00:00Z', '2026-10-01T00:00:00Z', '2027-01-01T00:00:00Z', '2026-Q4'],
    ['yearly', 'UTC', '2026-11-15T12:00:00Z', '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', '2026'],
    // New York: DST starts 2026-03-08 (23 h day), ends 2026-11-01 (25 h day).
    ['daily', 'America/New_York', '2026-03-08T12:00:00Z', '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z', '2026-03-08'],
    ['daily', 'America/New_York', '2026-11-01T12:00:00Z', '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z', '2026-11-01'],
    ['daily', 'America/New_York', '2026-11-30T03:00:00Z', '2026-11-29T05:00:00Z', '2026-11-30T05:00:00Z', '2026-11-29'],
    ['weekly', 'America/New_York', '2026-11-01T12:00:00Z', '2026-10-26T04:00:00Z', '2026-11-02T05:00:00Z', '2026-W44'],
    ['monthly', 'America/New_York', '2026-11-15T12:00:00Z', '2026-11-01T04:00:00Z', '2026-12-01T05:00:00Z', '2026-11'],
    ['monthly', 'America/New_York', '2026-12-01T04:59:59Z', '2026-11-01T04:00:00Z', '2026-12-01T05:00:00Z', '2026-11'],
    ['quarterly', 'America/New_York', '2026-02-01T00:00:00Z', '2026-01-01T05:00:00Z', '2026-04-01T04:00:00Z', '2026-Q1'],
    ['yearly', 'America/New_York', '2027-01-01T03:00:00Z', '2026-01-01T05:00:00Z', '2027-01-01T05:00:00Z', '2026'],
    // Berlin: DST starts 2026-03-29, ends 2026-10-25.
    ['daily', 'Europe/Berlin', '2026-03-29T12:00:00Z', '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z', '2026-03-29'],
    ['daily', 'Europe/Berlin', '2026-10-25T12:00:00Z', '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z', '2026-10-25'],
    ['weekly', 'Europe/Berlin', '2026-03-29T12:00:00Z', '2026-03-22T23:00:00Z', '2026-03-29T22:00:00Z', '2026-W13'],
    ['monthly', 'Europe/Berlin', '2026-03-15T12:00:00Z', '2026-02-28T23:00:00Z', '2026-03-31T22:00:00Z', '2026-03'],
    ['quarterly', 'Europe/Berlin', '2026-11-15T12:00:00Z', '2026-09-30T22:00:00Z', '2026-12-31T23:00:00Z', '2026-Q4'],
    ['yearly', 'Europe/Berlin', '2026-12-31T23:30:00Z', '2026-12-31T23:00:00Z', '2027-12-31T23:00:00Z', '2027'],
    // Sydney: DST ends 2026-04-05 (25 h day), starts 2026-10-04 (23 h day).
    ['daily', 'Australia/Sydney', '2026-04-05T05:00:00Z', '2026-04-04T13:00:00Z', '2026-04-05T14:00:00Z', '2026-04-05'],
    ['daily', 'Australia/Sydney', '2026-10-04T05:00:00Z', '2026-10-03T14:00:00Z', '2026-10-04T13:00:00Z', '2026-10-04'],
    ['weekly', 'Australia/Sydney', '2026-10-04T05:00:00Z', '2026-09-27T14:00:00Z', '2026-10-04T13:00:00Z', '2026-W40'],
    ['monthly', 'Australia/Sydney', '2026-10-31T14:00:00Z', '2026-10-31T13:00:00Z', '2026-11-30T13:00:00Z', '2026-11'],
    ['quarterly', 'Australia/Sydney', '2026-05-01T00:00:00Z', '2026-03-31T13:00:00Z', '2026-06-30T14:00:00Z', '2026-Q2'],
    ['yearly', 'Australia/Sydney', '2026-06-01T00:00:00Z', '2025-12-31T13:00:00Z', '2026-12-31T13:00:00Z', '2026'],
    // Kolkata: +05:30 all year, a half-hour offset.
    ['daily', 'Asia/Kolkata', '2026-11-29T20:00:00Z', '2026-11-29T18:30:00Z', '2026-11-30T18:30:00Z', '2026-11-30'],
    ['weekly', 'Asia/Kolkata', '2026-11-29T20:00:00Z', '2026-11-29T18:30:00Z', '2026-12-06T18:30:00Z', '2026-W49'],
    ['monthly', 'Asia/Kolkata', '2026-11-30T18:29:59Z', '2026-10-31T18:30:00Z', '2026-11-30T18:30:00Z', '2026-11'],
    ['quarterly', 'Asia/Kolkata', '2026-12-31T18:30:00Z', '2026-12-31T18:30:00Z', '2027-03-31T18:30:00Z', '2027-Q1'],
    ['yearly', 'Asia/Kolkata', '2026-12-31T19:00:00Z', '2026-12-31T18:30:00Z', '2027-12-31T18:30:00Z', '2027'],
    // Santiago: the 2026-09-06 DST jump skips midnight itself; the day starts at 01:00 local.
    ['daily', 'America/Santiago', '2026-09-06T12:00:00Z', '2026-09-06T04:00:00Z', '2026-09-07T03:00:00Z', '2026-09-06'],
  ])('%s in %s at %s is [%s, %s) keyed %s', (kind, zone, instant, start, end, key) => {
    const period = periodOf(kind, zone, at(instant))
    expect({ start: new Date(period.startMs).toISOString(), end: new Date(period.endMs).toISOString(), key: period.key }).toEqual({
      start: new Date(at(start)).toISOString(),
      end: new Date(at(end)).toISOString(),
      key,
    })
  })

  it('has DST days of 23 and 25 hours and ordinary days of 24', () => {
    const length = (zone: string, iso: string) => {
      const p = periodOf('daily', zone, at(iso))
      return (p.endMs - p.startMs) / HOUR
    }
    expect(length('Europe/Berlin', '2026-03-29T12:00:00Z')).toBe(23)
    expect(length('Europe/Berlin', '2026-10-25T12:00:00Z')).toBe(25)
    expect(length('Europe/Berlin', '2026-07-01T12:00:00Z')).toBe(24)
    expect(length('America/New_York', '2026-03-08T12:00:00Z')).toBe(23)
    expect(length('America/New_York', '2026-11-01T12:00:00Z')).toBe(25)
  })

  it('is half-open: the start instant belongs to the period, the end instant to the next', () => {
    const period = periodOf('monthly', 'Europe/Berlin', at('2026-11-15T12:00:00Z'))
    expect(periodOf('monthly', 'Europe/Berlin', period.startMs).key).toBe('2026-11')
    expect(periodOf('monthly', 'Europe/Berlin', period.startMs - 1).key).toBe('2026-10')
    expect(periodOf('monthly', 'Europe/Berlin', period.endMs - 1).key).toBe('2026-11')
    expect(periodOf('monthly', 'Europe/Berlin', period.endMs).key).toBe('2026-12')
  })

  it('tiles time: each period ends exactly where the next begins, for every kind and zone', () => {
    const zones = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'Asia/Kolkata', 'America/Santiago']
    const kinds: BudgetPeriod[] = ['daily', 'weekly', 'monthly', 'quarterly', 'yearly']
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.constantFrom(...kinds),
        fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2035, 0, 1) }),
        (zone, kind, atMs) => {
          const period = periodOf(kind, zone, atMs)
          const next = periodOf(kind, zone, period.endMs)
          const previous = periodOf(kind, zone, period.startMs - 1)
          return (
            period.startMs <= atMs &&
            atMs < period.endMs &&
            next.startMs === period.endMs &&
            previous.endMs === period.startMs &&
            next.key !== period.key &&
            previous.key !== period.key
          )
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('validTimezone', () => {
  it.each([
    ['UTC', true],
    ['Europe/Berlin', true],
    ['Asia/Kolkata', true],
    ['Mars/Olympus_Mons', false],
    ['', false],
  ])('%s → %s', (zone, expected) => {
    expect(validTimezone(zone)).toBe(expected)
  })
})
