/** Batch answers → the summary a user reads: counts, and each rejection at its file line. */
import { describe, expect, it } from 'vitest'
import { addAnswer, renderSummary, type SendSummary } from './events.js'

const aSummary = (): SendSummary => ({ file: 'may.ndjson', events: 0, created: 0, duplicates: 0, rejected: 0, rejections: [] })

describe('addAnswer', () => {
  it('counts each status and maps a rejected index to the file line of that event', () => {
    const summary = aSummary()
    addAnswer(
      summary,
      {
        results: [
          { index: 0, status: 'created', id: 'evt_1' },
          { index: 1, status: 'duplicate', id: 'evt_0' },
          { index: 2, status: 'rejected', error: { code: 'invalid_request', message: 'expected a number of tokens', field: 'inputTokens' } },
        ],
        created: 1,
        duplicates: 1,
        rejected: 1,
      },
      [3, 4, 9],
    )
    expect(summary).toMatchObject({ created: 1, duplicates: 1, rejected: 1, rejections: [{ line: 9, code: 'invalid_request', field: 'inputTokens' }] })
  })
})

describe('renderSummary', () => {
  it('lists at most 50 rejections and says how many more --json has', () => {
    const summary = {
      ...aSummary(),
      events: 60,
      rejected: 60,
      rejections: Array.from({ length: 60 }, (_, i) => ({ line: i + 1, code: 'invalid_request', message: 'bad', field: null })),
    }
    const lines = renderSummary(summary).split('\n')
    expect(lines[0]).toBe('Sent 60 events from may.ndjson: 0 created, 0 duplicates, 60 rejected')
    expect(lines.filter((l) => l.startsWith('  line '))).toHaveLength(50)
    expect(lines.at(-1)).toBe('  … and 10 more (--json lists them)')
  })
})
