/** Which reservation a journal entry resolved, read from its bytes (the drain lets that hash expire). */
import { describe, expect, it } from 'vitest'
import { resolvedReservationOf } from './journal-drain.js'

const entry = (json: string) => Buffer.from(json)

describe('resolvedReservationOf', () => {
  it('reads the id of a resolve entry as the scripts write it', () => {
    const written = '{"kind":"resolve","entryId":"led_1","entryId2":"led_2","entryKind":"settlement","wanted":"5","r":{"id":"rsv_01abc","orgId":"o"}}'
    expect(resolvedReservationOf(entry(written))).toBe('rsv_01abc')
  })

  it('reads an id with an escape in it as JSON', () => {
    expect(resolvedReservationOf(entry('{"kind":"resolve","r":{"id":"rsv_a\\"b\\\\c","orgId":"o"}}'))).toBe('rsv_a"b\\c')
  })

  it('is undefined for other entries, none, or a resolve without an id', () => {
    expect(resolvedReservationOf(entry('{"kind":"reserve","entryId":"led_1","r":{"id":"rsv_1"}}'))).toBeUndefined()
    expect(resolvedReservationOf(undefined)).toBeUndefined()
    expect(resolvedReservationOf(entry('{"kind"'))).toBeUndefined()
    expect(resolvedReservationOf(entry('{"kind":"resolve","r":{"id":"rsv_cut'))).toBeUndefined()
  })
})
