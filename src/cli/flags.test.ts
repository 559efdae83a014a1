/** Flag parsers: the last valid value and the first invalid one for each, and what the API receives. */
import { InvalidArgumentError } from 'commander'
import { describe, expect, it } from 'vitest'
import { instantFlag, listFlag, positiveIntFlag, scopeFlag, thresholdsFlag, timezoneFlag, usdFlag } from './flags.js'

const refuses = (parse: (value: string) => unknown, value: string) => expect(() => parse(value), value).toThrow(InvalidArgumentError)

describe('usdFlag', () => {
  it.each([
    ['500', '500'],
    ['0.000001', '0.000001'],
    [' 12.5 ', '12.5'],
    ['$20', '20'],
  ])('keeps %j exact as the decimal string %j', (value, sent) => expect(usdFlag(value)).toBe(sent))

  it.each(['0', '0.0000001', '-5', 'lots', '1e3', '', '1,000'])('refuses %j', (value) => refuses(usdFlag, value))
})

describe('positiveIntFlag', () => {
  it('takes 1 and up', () => expect(positiveIntFlag('1')).toBe(1))
  it.each(['0', '-1', '1.5', 'ten', ''])('refuses %j', (value) => refuses(positiveIntFlag, value))
})

describe('thresholdsFlag', () => {
  it('splits on commas, keeping the edges 1 and 1000', () => expect(thresholdsFlag('1, 80,1000')).toEqual([1, 80, 1000]))
  it.each(['0,50', '1001', '50,,80', '50.5', 'high'])('refuses %j', (value) => refuses(thresholdsFlag, value))
})

describe('scopeFlag', () => {
  it('splits KIND:ID at the first colon', () => {
    expect(scopeFlag('team:marketing')).toEqual({ kind: 'team', id: 'marketing' })
    expect(scopeFlag('user:a:b')).toEqual({ kind: 'user', id: 'a:b' })
  })
  it.each(['team', 'team:', 'galaxy:x', ':x'])('refuses %j', (value) => refuses(scopeFlag, value))
})

describe('instantFlag', () => {
  it('reads a bare date as UTC midnight; as the end of a range, the next midnight (the day is included)', () => {
    expect(instantFlag('start')('2026-05-01')).toBe('2026-05-01T00:00:00.000Z')
    expect(instantFlag('end')('2026-05-31')).toBe('2026-06-01T00:00:00.000Z')
    expect(instantFlag('end')('2026-12-31')).toBe('2027-01-01T00:00:00.000Z')
  })
  it('reads a time without an offset as UTC, and honours an offset', () => {
    expect(instantFlag('start')('2026-05-01T09:30')).toBe('2026-05-01T09:30:00.000Z')
    expect(instantFlag('end')('2026-05-01T09:30:00+02:00')).toBe('2026-05-01T07:30:00.000Z')
  })
  it.each(['2026-02-30', '2026-13-01', 'yesterday', 'May 3', '2026-5-1', '2026-05-01 09:30'])('refuses %j', (value) => refuses(instantFlag('start'), value))
})

describe('timezoneFlag', () => {
  it('takes IANA zones', () => expect(timezoneFlag('America/St_Johns')).toBe('America/St_Johns'))
  it.each(['Mars/Olympus', 'CEST+1'])('refuses %j', (value) => refuses(timezoneFlag, value))
})

describe('listFlag', () => {
  const dims = listFlag(['team', 'model', 'user'])
  it('splits and trims', () => expect(dims('team, model')).toEqual(['team', 'model']))
  it.each(['', 'team,colour', ','])('refuses %j', (value) => refuses(dims, value))
})
