/**
 * Incremental server-sent-events parser for the streaming hot path. It works on bytes: lines are
 * found with `Buffer.indexOf` and only the `event:` / `data:` values are decoded, so a chunk split
 * inside a multi-byte character is harmless (0x0a never occurs inside a UTF-8 sequence).
 *
 * Every block is reported, including comment-only and empty ones, so that concatenating every
 * `raw` reproduces the input byte for byte; the proxy can forward events faithfully and drop one.
 * Line endings `\n` and `\r\n` are supported. A lone `\r` as a line ending (permitted by the SSE
 * spec, used by neither OpenAI nor Anthropic) is not; it stays part of the line.
 */

/**
 * `eventName` is the `event:` field (undefined when absent), `data` the `data:` lines joined with
 * `\n` ('' when the block had none: a comment or keep-alive), `raw` the exact bytes of the block
 * including its terminating blank line. `raw` may share memory with the pushed chunk: copy it
 * before keeping it beyond the callback if the chunk's buffer is reused.
 */
export type SseEventHandler = (eventName: string | undefined, data: string, raw: Buffer) => void

/** One event larger than this is not an LLM stream; the parser throws rather than buffer it all. */
export const sseEventBytesMaxDefault = 32 * 1024 * 1024

const LF = 0x0a
const CR = 0x0d
const COLON = 0x3a
const SPACE = 0x20

export class SseEventTooLarge extends Error {
  override readonly name = 'SseEventTooLarge'
}

export class SseParser {
  private readonly onEvent: SseEventHandler
  private readonly eventBytesMax: number
  /** Bytes of the current block that arrived in earlier chunks. */
  private rawParts: Buffer[] = []
  private rawPartsBytes = 0
  /** Bytes of the current, unterminated line that arrived in earlier chunks. */
  private lineParts: Buffer[] = []
  private eventName: string | undefined = undefined
  private data: string | undefined = undefined
  private ended = false

  constructor(onEvent: SseEventHandler, options: { eventBytesMax?: number } = {}) {
    this.onEvent = onEvent
    this.eventBytesMax = options.eventBytesMax ?? sseEventBytesMaxDefault
  }

  push(chunk: Buffer): void {
    if (this.ended) throw new Error('SseParser.push after end()')
    let eventStart = 0
    let pos = 0
    for (;;) {
      const newline = chunk.indexOf(LF, pos)
      if (newline < 0) break
      // Lines are read in place (offsets into the chunk): no Buffer view per line.
      let empty: boolean
      if (this.lineParts.length > 0) {
        this.lineParts.push(chunk.subarray(pos, newline))
        const line = Buffer.concat(this.lineParts)
        this.lineParts = []
        const end = withoutCr(line, 0, line.length)
        empty = end === 0
        if (!empty) this.processLine(line, 0, end)
      } else {
        const end = withoutCr(chunk, pos, newline)
        empty = end === pos
        if (!empty) this.processLine(chunk, pos, end)
      }
      pos = newline + 1
      if (empty) {
        const raw = this.takeRaw(chunk, eventStart, pos)
        eventStart = pos
        this.dispatch(raw)
      }
    }
    if (pos < chunk.length) this.lineParts.push(chunk.subarray(pos))
    if (eventStart < chunk.length) {
      this.rawParts.push(chunk.subarray(eventStart))
      this.rawPartsBytes += chunk.length - eventStart
      if (this.rawPartsBytes > this.eventBytesMax) {
        throw new SseEventTooLarge(`SSE event exceeds ${this.eventBytesMax} bytes`)
      }
    }
  }

  /**
   * The stream is over. A final block without its blank line (a cut stream) is still reported,
   * leniently: its complete fields and its last partial line are parsed, and `raw` holds exactly
   * the leftover bytes. Consumers parsing `data` as JSON must expect it to be truncated.
   */
  end(): void {
    if (this.ended) return
    this.ended = true
    if (this.rawParts.length === 0) return
    if (this.lineParts.length > 0) {
      const line = this.lineParts.length === 1 ? this.lineParts[0]! : Buffer.concat(this.lineParts)
      this.lineParts = []
      this.processLine(line, 0, withoutCr(line, 0, line.length))
    }
    const raw = this.rawParts.length === 1 ? this.rawParts[0]! : Buffer.concat(this.rawParts)
    this.rawParts = []
    this.rawPartsBytes = 0
    this.dispatch(raw)
  }

  private takeRaw(chunk: Buffer, start: number, end: number): Buffer {
    const tail = chunk.subarray(start, end)
    if (this.rawParts.length === 0) return tail
    this.rawParts.push(tail)
    const raw = Buffer.concat(this.rawParts)
    this.rawParts = []
    this.rawPartsBytes = 0
    return raw
  }

  /** The line `buf[start, end)`, without its line ending. */
  private processLine(buf: Buffer, start: number, end: number): void {
    if (start === end) return
    if (buf[start] === COLON) return // comment
    let colon = buf.indexOf(COLON, start)
    if (colon >= end) colon = -1
    const fieldEnd = colon < 0 ? end : colon
    let valueStart = colon < 0 ? end : colon + 1
    if (valueStart < end && buf[valueStart] === SPACE) valueStart += 1
    if (isField(buf, start, fieldEnd, DATA)) {
      const value = buf.toString('utf8', valueStart, end)
      this.data = this.data === undefined ? value : `${this.data}\n${value}`
    } else if (isField(buf, start, fieldEnd, EVENT)) {
      this.eventName = buf.toString('utf8', valueStart, end)
    }
    // `id:` and `retry:` matter to browsers reconnecting, not to usage accounting.
  }

  private dispatch(raw: Buffer): void {
    const eventName = this.eventName
    const data = this.data ?? ''
    this.eventName = undefined
    this.data = undefined
    this.onEvent(eventName === '' ? undefined : eventName, data, raw)
  }
}

const DATA = Buffer.from('data')
const EVENT = Buffer.from('event')

function isField(buf: Buffer, start: number, fieldEnd: number, name: Buffer): boolean {
  if (fieldEnd - start !== name.length) return false
  for (let i = 0; i < name.length; i++) if (buf[start + i] !== name[i]) return false
  return true
}

/** Where the line `buf[start, end)` ends without a trailing CR. */
function withoutCr(buf: Buffer, start: number, end: number): number {
  return end > start && buf[end - 1] === CR ? end - 1 : end
}
