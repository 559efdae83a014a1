/**
 * Token counting for streams cut before the provider reported usage (settle for what
 * was delivered). o200k_base is exact for current OpenAI models and a close approximation for
 * others (Anthropic publishes no tokenizer); the reported figure always wins when there is one.
 */
import { countSliceChars, countTokens, countTokensInSlices } from '../lib/tokenizer.js'

/** Text kept for counting per stream; beyond it, further characters count as one token each (an over-estimate, never under). */
export const countedTextCharsMax = 4 * 1024 * 1024

/**
 * Tokens of delivered text, never fewer than the tokenizer counts (strings like "<|endoftext|>"
 * are plain text). Linear in the text: an unbroken run is counted by its bytes (lib/tokenizer.ts).
 */
export function countTextTokens(text: string): number {
  return countTokens(text)
}

/**
 * Collects the text a stream delivered, bounded by `countedTextCharsMax`, and counts it once at
 * the end: counting each delta separately would over-count tokens split across deltas.
 */
export class DeliveredText {
  private readonly parts: string[] = []
  private chars = 0
  private overflowChars = 0
  /** The o200k count `countInSlices` made, and of how many parts (a later `add` makes it stale). */
  private counted: { readonly parts: number; readonly tokens: number } | undefined

  /**
   * @param scalePercent applied to the o200k count: 100 for o200k models, more for models whose
   * tokenizer runs longer on the same text (Claude, open models), so the count stays an upper bound.
   */
  constructor(private readonly scalePercent = 100) {}

  add(text: string): void {
    if (text.length === 0) return
    if (this.chars + text.length > countedTextCharsMax) {
      this.overflowChars += text.length
      return
    }
    this.parts.push(text)
    this.chars += text.length
  }

  get isEmpty(): boolean {
    return this.chars === 0 && this.overflowChars === 0
  }

  countTokens(): number {
    const counted = this.counted?.parts === this.parts.length ? this.counted.tokens : countTextTokens(this.parts.join(''))
    return Math.ceil((counted * this.scalePercent) / 100) + this.overflowChars
  }

  /**
   * Counts the text now, in slices with other work of the process between them (a long text held
   * the event loop for seconds); `countTokens` then answers at once. Short texts are left to it.
   */
  async countInSlices(): Promise<void> {
    if (this.counted?.parts === this.parts.length || this.chars <= countSliceChars) return
    const parts = this.parts.length
    this.counted = { parts, tokens: await countTokensInSlices(this.parts.join('')) }
  }
}
