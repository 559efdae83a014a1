import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compareEntryIds, Retained, type DrainProgress, type RetainedEntry } from './retained.js'

const entry = (entryId: string, generation = 'g1'): RetainedEntry => ({ entryId, generation, journal: undefined, usageRow: undefined })

describe('Retained: journal entries held until the drain has applied them', () => {
  it('drops what the drain applied, keeps what it has not delivered or is still applying', () => {
    const retained = new Retained(1_000)
    for (const id of ['100-0', '100-1', '101-0', '102-0', '103-0']) retained.add('org', entry(id))
    expect(retained.settle('org', { generation: 'g1', lastDeliveredId: '102-0', firstPendingId: '101-0' })).toEqual([])
    expect(retained.size).toBe(3)
    expect(retained.settle('org', { generation: 'g1', lastDeliveredId: '103-0', firstPendingId: undefined })).toEqual([])
    expect(retained.size).toBe(0)
    expect(retained.orgs()).toEqual([])
  })

  it('returns every entry of a generation Redis lost, to be written to PostgreSQL', () => {
    const retained = new Retained(1_000)
    retained.add('org', entry('100-0', 'g1'))
    retained.add('org', entry('200-0', 'g2'))
    const lost = retained.settle('org', { generation: 'g2', lastDeliveredId: '0-0', firstPendingId: undefined })
    expect(lost.map((e) => e.entryId)).toEqual(['100-0'])
    expect(retained.size).toBe(1)
  })

  it('agrees with checking every entry, for any drain progress (property)', () => {
    const ids = fc.uniqueArray(fc.tuple(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 3 })), {
      minLength: 1,
      maxLength: 40,
      selector: ([ms, seq]) => `${ms}-${seq}`,
    })
    const anId = fc.tuple(fc.integer({ min: 0, max: 55 }), fc.integer({ min: 0, max: 3 })).map(([ms, seq]) => `${ms}-${seq}`)
    fc.assert(
      fc.property(ids, anId, fc.option(anId, { nil: undefined }), (raw, delivered, pending) => {
        const sorted = raw.map(([ms, seq]) => `${ms}-${seq}`).sort(compareEntryIds)
        const retained = new Retained(1_000)
        for (const id of sorted) retained.add('org', entry(id))
        const progress: DrainProgress = { generation: 'g1', lastDeliveredId: delivered, firstPendingId: pending }
        const applied = (id: string) => compareEntryIds(id, delivered) <= 0 && (pending === undefined || compareEntryIds(id, pending) < 0)
        expect(retained.settle('org', progress)).toEqual([])
        expect(retained.size).toBe(sorted.filter((id) => !applied(id)).length)
      }),
    )
  })

  it('orders stream ids numerically, not as text', () => {
    expect(compareEntryIds('9-0', '10-0')).toBeLessThan(0)
    expect(compareEntryIds('10-2', '10-10')).toBeLessThan(0)
    expect(compareEntryIds('10-1', '10-1')).toBe(0)
  })
})
