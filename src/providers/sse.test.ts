/**
 * The SSE parser must give the same events however the bytes are chunked. Method: parse a sample
 * stream whole, then split at every byte offset (and at every pair of offsets with fast-check),
 * and compare the events and the raw bytes; the raws must also concatenate back to the input.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SseEventTooLarge, SseParser } from './sse.js'

interface Seen {
  eventName: string | undefined
  data: string
  raw: string
}

function parseChunks(chunks: Buffer[]): { events: Seen[]; raws: Buffer[] } {
  const events: Seen[] = []
  const raws: Buffer[] = []
  const parser = new SseParser((eventName, data, raw) => {
    events.push({ eventName, data, raw: raw.toString('utf8') })
    raws.push(Buffer.from(raw))
  })
  for (const chunk of chunks) parser.push(chunk)
  parser.end()
  return { events, raws }
}

function splitAt(bytes: Buffer, offsets: number[]): Buffer[] {
  const sorted = [...new Set(offsets)].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let start = 0
  for (const offset of sorted) {
    chunks.push(bytes.subarray(start, offset))
    start = offset
  }
  chunks.push(bytes.subarray(start))
  return chunks
}

// LF and CRLF endings, a comment, multi-line data, an id, multi-byte characters and an emoji.
const sample = Buffer.from(
  [
    ': keep-alive comment\n\n',
    'event: message_start\ndata: {"type":"message_start","text":"héllo"}\n\n',
    'data: line one\r\ndata: line two\r\nid: 7\r\n\r\n',
    'event: ping\ndata:{"type":"ping"}\n\n',
    'data: {"delta":"👋 wörld"}\n\n',
    'data: [DONE]\n\n',
  ].join(''),
)

const expected: Array<Omit<Seen, 'raw'>> = [
  { eventName: undefined, data: '' },
  { eventName: 'message_start', data: '{"type":"message_start","text":"héllo"}' },
  { eventName: undefined, data: 'line one\nline two' },
  { eventName: 'ping', data: '{"type":"ping"}' },
  { eventName: undefined, data: '{"delta":"👋 wörld"}' },
  { eventName: undefined, data: '[DONE]' },
]

describe('SseParser', () => {
  it('parses events, comments, CRLF and multi-line data', () => {
    const { events, raws } = parseChunks([sample])
    expect(events.map(({ eventName, data }) => ({ eventName, data }))).toEqual(expected)
    expect(Buffer.concat(raws).equals(sample)).toBe(true)
    expect(events[2]?.raw).toBe('data: line one\r\ndata: line two\r\nid: 7\r\n\r\n')
  })

  it('gives the same events and raw bytes when split at every byte offset', () => {
    const whole = parseChunks([sample]).events
    for (let offset = 0; offset <= sample.length; offset++) {
      expect(parseChunks(splitAt(sample, [offset])).events, `split at ${offset}`).toEqual(whole)
    }
  })

  it('gives the same events for one byte per chunk', () => {
    const chunks = Array.from({ length: sample.length }, (_, i) => sample.subarray(i, i + 1))
    const { events, raws } = parseChunks(chunks)
    expect(events).toEqual(parseChunks([sample]).events)
    expect(Buffer.concat(raws).equals(sample)).toBe(true)
  })

  it('gives the same events for any set of split points (property)', () => {
    const whole = parseChunks([sample]).events
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: sample.length }), { maxLength: 12 }), (offsets) => {
        const { events, raws } = parseChunks(splitAt(sample, offsets))
        expect(events).toEqual(whole)
        expect(Buffer.concat(raws).equals(sample)).toBe(true)
      }),
    )
  })

  it('reports a final unterminated event at end(), with exactly the leftover bytes', () => {
    const { events } = parseChunks([Buffer.from('data: a\n\ndata: {"partial":')])
    expect(events).toEqual([
      { eventName: undefined, data: 'a', raw: 'data: a\n\n' },
      { eventName: undefined, data: '{"partial":', raw: 'data: {"partial":' },
    ])
  })

  it('reports extra blank lines as empty blocks so no byte is lost', () => {
    const input = Buffer.from('\ndata: x\n\n\n')
    const { events, raws } = parseChunks([input])
    expect(events.map((event) => event.data)).toEqual(['', 'x', ''])
    expect(Buffer.concat(raws).equals(input)).toBe(true)
  })

  it('treats a field without a colon as a field with an empty value', () => {
    const { events } = parseChunks([Buffer.from('data\ndata\n\n')])
    expect(events[0]?.data).toBe('\n')
  })

  it('throws rather than buffering an event beyond eventBytesMax', () => {
    const parser = new SseParser(() => undefined, { eventBytesMax: 16 })
    parser.push(Buffer.from('data: 0123456'))
    expect(() => parser.push(Buffer.from('789abcdef'))).toThrow(SseEventTooLarge)
  })
})
