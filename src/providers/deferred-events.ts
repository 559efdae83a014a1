/**
 * SSE payloads kept as text instead of parsed: on a complete stream the provider reports usage
 * and the text deltas are never needed; only a stream cut before its usage arrived parses them to
 * count what was delivered. Bounded: past `countedTextCharsMax` characters, the rest is counted as
 * one token per character (an over-count, never an under-count).
 */
import { countSliceChars, nextTurn } from '../lib/tokenizer.js'
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

  /**
   * `drain`, with a turn of the event loop after each `sliceChars` of payloads parsed: up to 4 MiB
   * of kept payloads would otherwise be parsed in one block. Same events, same order.
   */
  async drainInSlices(each: (event: JsonRecord) => void, sliceChars = countSliceChars, pause: () => Promise<void> = nextTurn): Promise<void> {
    let parsed = 0
    while (this.payloads.length > 0) {
      let taken = 0
      while (taken < this.payloads.length && parsed < sliceChars) parsed += this.payloads[taken++]!.length
      const slice = this.payloads.splice(0, taken)
      for (const data of slice) {
        const event = asRecord(parseJson(data))
        if (event !== undefined) each(event)
      }
      if (this.payloads.length === 0) return
      parsed = 0
      await pause()
    }
  }

  /** Characters past the bound, to add to the counted tokens. */
  get overflowChars(): number {
    return this.overflow
  }
}
