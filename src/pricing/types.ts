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
