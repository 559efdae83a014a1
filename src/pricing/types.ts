import type { Micros } from '../money/index.js'

/** The parts a call's cost is made of, each priced and rounded on its own. */
export const COST_PARTS = [
  'input',
  'cache_read',
  'cache_write_5m',
  'cache_write_1h',
  'audio_input',
  'output',
  'reasoning',
  'audio_output',
  /** Per-call fees of server-side tools: `tokens` is the number of calls, the unit price per million calls. */
  'web_search',
  'file_search',
] as const
export type CostPart = (typeof COST_PARTS)[number]

/** Prices in integer micro-USD per million tokens (µ$/Mtok): $2.50/Mtok = 2_500_000. */
export interface ModelPrice {
  inputMicrosPerMtok: number
  outputMicrosPerMtok: number
  cacheReadMicrosPerMtok: number
  /** 5-minute cache writes (Anthropic's default). */
  cacheWriteMicrosPerMtok: number
  /** 1-hour cache writes. */
  cacheWrite1hMicrosPerMtok: number
  audioInputMicrosPerMtok: number
  audioOutputMicrosPerMtok: number
  /**
   * Parts the source gives no price for: each is charged at the model's dearest known price of
   * its kind (input side or output side) — never cheaper — and flagged on the events that use it.
   */
  fallbackParts: readonly CostPart[]
  /** Which price this is, recorded on every usage event: `genai-prices@0.1.8:openai/gpt-4o` or `override:gpt-4o`. */
  source: string
  /** The price tier applied (`base`, or `>200000` input tokens). */
  tier: string
  /** Web search fee, µ$ per 1,000 searches; undefined when the source has none (tool-fees.ts then applies a documented default). */
  webSearchMicrosPerKcall?: number
  /** File search fee, µ$ per 1,000 calls; undefined as above. */
  fileSearchMicrosPerKcall?: number
  /** Set when the token prices were scaled for the service tier that served the call (see service-tier.ts). */
  serviceTier?: ServiceTierPricing
}

/**
 * How the per-token prices of a call served at a non-standard service tier were taken: the
 * standard prices × `pricePercent` / 100. `upperBound`: that is not the provider's own price for
 * the tier (the catalogue has none) but a figure never below it.
 */
export interface ServiceTierPricing {
  readonly name: string
  readonly pricePercent: number
  readonly upperBound: boolean
}

/** One part of a cost: how many tokens (calls, for a tool fee), at what price, for how much. */
export interface CostPartLine {
  readonly part: CostPart
  readonly tokens: number
  readonly unitMicrosPerMtok: number
  readonly costMicros: Micros
  /** Priced at a fallback (the source had no price for this part). */
  readonly fallback: boolean
}

/**
 * The cost of one call by part, each part rounded up on its own (so `totalMicros`, their sum, can be
 * up to one µ$ per non-zero part above the exact real-valued cost, never below it). Parts with no
 * tokens are left out of `parts`.
 */
export interface CostBreakdown {
  readonly parts: readonly CostPartLine[]
  readonly totalMicros: Micros
  readonly tier: string
  /** The service tier the token prices were scaled for; absent at standard prices. */
  readonly serviceTier?: ServiceTierPricing
}
