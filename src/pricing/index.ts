export type { CostBreakdown, ModelPrice } from './types.js'
export { PriceBook, catalogueVersion, lookupCacheEntriesMaxDefault, type PriceBookOptions } from './catalogue.js'
export { costOfUsage } from './cost.js'
export {
  affordableOutputTokens,
  affordableOutputTokensMax,
  anthropicToolSystemTokens,
  countTextTokens,
  defaultMediaAllowances,
  estimateInputTokens,
  foreignTokenizerScalePercent,
  framingTokensPerMessage,
  framingTokensPerRequest,
  promptTextOf,
  tokenizerFitOf,
  worstCaseCost,
  worstCaseRoundingSlackMicros,
  type InputTokenEstimate,
  type MediaAllowances,
  type PromptText,
  type TokenizerFit,
} from './estimate.js'
