/**
 * SSE payloads kept as text instead of parsed: on a complete stream the provider reports usage
 * and the text deltas are never needed; only a stream cut before its usage arrived parses them to
 * count what was delivered. Bounded: past `countedTextCharsMax` characters, the rest is counted as
 * one token per character (an over-count, never an under-count).
 */
import { countedTextCharsMax } from './count-tokens.js'
import { asRecord, parseJson, type JsonRecord } from './json.js'

export class DeferredEvents {
  private readonly payloads: string[] = []
  private chars = 0
  private overflow = 0

  push(data: string): void {
    if (this.chars + data.length > countedTextCharsMax) {
      this.overflow += data.length
      return
    }
    this.payloads.push(data)
    this.chars += data.length
  }

  /** Parses every kept payload once, in order; later calls see only what was pushed since. */
  drain(each: (event: JsonRecord) => void): void {
    for (const data of this.payloads) {
      const event = asRecord(parseJson(data))
      if (event !== undefined) each(event)
    }
    this.payloads.length = 0
  }

  /** Characters past the bound, to add to the counted tokens. */
  get overflowChars(): number {
    return this.overflow
  }
}
