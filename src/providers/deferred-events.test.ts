import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DeferredEvents } from './deferred-events.js'
import type { JsonRecord } from './json.js'

const payload = fc.oneof(
  fc.record({ delta: fc.string({ maxLength: 60 }), index: fc.nat(3) }).map((event) => JSON.stringify(event)),
  // Kept payloads that are not JSON objects are skipped by both.
  fc.constantFrom('[DONE]', '', '{"unterminated', '42'),
)

function kept(payloads: readonly string[]): DeferredEvents {
  const deferred = new DeferredEvents()
  for (const data of payloads) deferred.push(data)
  return deferred
}

describe('DeferredEvents.drainInSlices', () => {
  it('hands over the same events in the same order as drain, pausing between slices only', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(payload, { maxLength: 60 }), fc.integer({ min: 1, max: 200 }), async (payloads, sliceChars) => {
        const whole: JsonRecord[] = []
        kept(payloads).drain((event) => whole.push(event))
        const sliced: JsonRecord[] = []
        let pauses = 0
        const deferred = kept(payloads)
        await deferred.drainInSlices(
          (event) => sliced.push(event),
          sliceChars,
          async () => {
            pauses++
          },
        )
        expect(sliced).toEqual(whole)
        const chars = payloads.reduce((sum, data) => sum + data.length, 0)
        expect(pauses).toBeLessThanOrEqual(Math.ceil(chars / sliceChars))
        // Drained: nothing is handed over twice.
        deferred.drain(() => expect.unreachable())
      }),
      { numRuns: 300 },
    )
  })
})
