/**
 * The hand-written fast path of `parseEvent` must agree with the zod schema on every input: the
 * same payload for a valid event, and (by falling back to zod) the same problem and message for an
 * invalid one. Random events mix valid values with the edge cases of each field.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TOKENS_MAX } from '../money/index.js'
import { parseEvent, parseWithZod } from './payload.js'

const text = (max: number) =>
  fc.oneof(
    fc.string({ minLength: 1, maxLength: 12 }),
    fc.constantFrom('', '   ', ' padded ', '\tx\n', 'a\u001bb', 'a\nb', 'x'.repeat(max), 'x'.repeat(max + 1), ` ${'y'.repeat(max)} `),
    fc.constantFrom(null, 7, true, ['a']),
  )
const tokens = fc.oneof(fc.nat(10_000), fc.constantFrom(0, TOKENS_MAX, TOKENS_MAX + 1, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '12', null))
const occurredAt = fc.oneof(
  fc.constantFrom('2026-12-01T10:00:00Z', '2026-12-01T10:00:00.123+01:00', '2026-12-01T10:00:00+0100', '2026-12-01', '1999-12-31T23:59:59Z'),
  fc.constantFrom('2026-12-01T10:00:00.000000000000000000000000000000Z', 'not a date', 1_790_000_000_000, 946_684_799_999, 1.5e12 + 0.5, -1, null, {}),
)
const costUsd = fc.oneof(
  fc.constantFrom(0, 0.000001, 0.1, 1.2345678, '0.25', ' 3 ', '-1', 'abc', 1e12, 1e20, null, true),
  fc.double({ min: 0, max: 100, noNaN: true }),
)

const event = fc.record(
  {
    externalRequestId: text(200),
    provider: text(100),
    model: text(200),
    endpointTag: text(256),
    promptVersion: text(256),
    userId: text(256),
    agentId: text(256),
    inputTokens: tokens,
    outputTokens: tokens,
    cachedInputTokens: tokens,
    cacheWriteTokens: tokens,
    cacheWrite1hTokens: tokens,
    reasoningTokens: tokens,
    webSearches: fc.oneof(fc.nat(20), fc.constantFrom(0, 10_000, 10_001, -1, 1.5, Number.NaN, '3', null)),
    fileSearches: fc.oneof(fc.nat(20), fc.constantFrom(0, 10_000, 10_001, -1, 2.5, Number.POSITIVE_INFINITY, null)),
    webSearchKind: fc.constantFrom('web_search', 'web_search_preview', 'chat:low', 'chat:unknown', 'toString', 'CHAT:LOW', 3, null),
    latencyMs: fc.oneof(fc.nat(100_000), fc.constantFrom(86_400_000, 86_400_001, -5, 3.3, null)),
    status: fc.constantFrom('success', 'error', 'cancelled', 'ok', 'toString', null),
    dataMode: fc.constantFrom('real', 'demo', 'test', null),
    environment: text(100),
    occurredAt,
    costUsd,
    inputTokes: fc.constant(5),
  },
  { requiredKeys: [] },
)

/** Events valid but for chance: every field of the right kind, so the fast path's acceptance is exercised too. */
const likelyValid = fc.record(
  {
    externalRequestId: fc.string({ minLength: 1, maxLength: 20 }),
    provider: fc.constantFrom('openai', ' anthropic '),
    model: fc.constantFrom('gpt-4o', 'gpt-4o-mini'),
    endpointTag: fc.constantFrom('/chat', ' tag ', null),
    userId: fc.string({ minLength: 1, maxLength: 5 }),
    inputTokens: fc.nat(1000),
    outputTokens: fc.nat(1000),
    cachedInputTokens: fc.nat(300),
    cacheWriteTokens: fc.nat(300),
    cacheWrite1hTokens: fc.nat(100),
    reasoningTokens: fc.nat(300),
    webSearches: fc.constantFrom(0, 2, 10_000, null),
    fileSearches: fc.constantFrom(0, 1, null),
    webSearchKind: fc.constantFrom('web_search', 'web_search_preview', 'chat:high', null),
    latencyMs: fc.nat(100_000),
    status: fc.constantFrom('success', 'error', 'cancelled'),
    dataMode: fc.constantFrom('real', 'demo'),
    environment: fc.constantFrom('prod', null),
    occurredAt: fc.constantFrom('2026-12-01T10:00:00Z', 1_790_000_000_000),
    costUsd: fc.constantFrom(0.25, '1.5', null),
  },
  { requiredKeys: ['externalRequestId', 'provider', 'model', 'inputTokens', 'outputTokens'] },
)

describe('parseEvent', () => {
  it('answers exactly what the zod schema answers, for valid and invalid events', () => {
    let accepted = 0
    fc.assert(
      fc.property(fc.oneof(event, likelyValid), (input) => {
        const expected = parseWithZod(input)
        if (!('code' in expected)) accepted++
        expect(parseEvent(input)).toEqual(expected)
      }),
      { numRuns: 3000 },
    )
    // Both paths were exercised: many valid events, many invalid ones.
    expect(accepted).toBeGreaterThan(200)
    expect(accepted).toBeLessThan(2500)
  })

  it('keeps the schema’s messages for a bad event', () => {
    expect(parseEvent({ externalRequestId: 'a', provider: 'openai', model: 'm', inputTokens: -1, outputTokens: 1 })).toEqual({
      code: 'invalid_request',
      field: 'inputTokens',
      message: `inputTokens: expected a whole number of tokens from 0 to ${TOKENS_MAX.toLocaleString('en-US')}`,
    })
  })
})
