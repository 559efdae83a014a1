import type { Micros } from '../money/index.js'

/** Prices in integer micro-USD per million tokens (µ$/Mtok): $2.50/Mtok = 2_500_000. */
export interface ModelPrice {
  inputMicrosPerMtok: number
  outputMicrosPerMtok: number
  cacheReadMicrosPerMtok: number
  cacheWriteMicrosPerMtok: number
  audioInputMicrosPerMtok: number
  audioOutputMicrosPerMtok: number
  /** Which price this is, recorded on every usage event: `genai-prices@0.1.8:openai/gpt-4o` or `override:gpt-4o`. */
  source: string
}

/**
 * The cost of one call by part, each part rounded up on its own (so `totalMicros`, their sum, can be
 * up to one µ$ per non-zero part above the exact real-valued cost, never below it).
 */
export interface CostBreakdown {
  /** inputTokens − cache reads − cache writes − audio input, at the input price. */
  uncachedInputMicros: Micros
  cacheReadMicros: Micros
  cacheWriteMicros: Micros
  audioInputMicros: Micros
  /** outputTokens − audio output (reasoning included), at the output price. */
  outputMicros: Micros
  audioOutputMicros: Micros
  totalMicros: Micros
}
