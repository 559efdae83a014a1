export { COST_PARTS, type CostBreakdown, type CostPart, type CostPartLine, type ModelPrice, type ServiceTierPricing } from './types.js'
export {
  PRIORITY_PRICE_PERCENT,
  priceAtServiceTier,
  requestedServiceTier,
  serviceTierOfPriceSource,
  serviceTierPricing,
  tierServingRequest,
} from './service-tier.js'
export { publishedOutputTokensMax } from './output-limits.js'
export { PriceBook, catalogueVersion, lookupCacheEntriesMaxDefault, type PriceBookOptions } from './catalogue.js'
export { costOfUsage, fallbackPartsOf } from './cost.js'
export { heldInputOf, type HeldInput } from './held-input.js'
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
  mediaAllowancesOf,
  promptTextOf,
  tokenizerFitOf,
  worstCaseCost,
  worstCaseRoundingSlackMicros,
  type InputTokenEstimate,
  type MediaAllowances,
  type PromptText,
  type TokenizerFit,
} from './estimate.js'
export {
  CHAT_SEARCH_MICROS_PER_KCALL,
  CHAT_SEARCH_MICROS_PER_KCALL_MAX,
  CHAT_SEARCHES_PER_CHOICE,
  FILE_SEARCH_MICROS_PER_KCALL_DEFAULT,
  SERVER_SEARCHES_RESERVED_DEFAULT,
  WEB_SEARCH_MICROS_PER_KCALL_DEFAULT,
  WEB_SEARCH_PREVIEW_MICROS_PER_KCALL,
  WEB_SEARCH_KINDS,
  callsCost,
  chatSearchFeeAt,
  chatSearchFeeOf,
  fileSearchMicrosPerKcall,
  priceForServerSearches,
  priceForWebSearchKind,
  serverSearchFeesMicros,
  serverSearchesOf,
  webSearchKindFrom,
  webSearchKindOf,
  webSearchMicrosPerKcall,
  type ChatSearchFee,
  type ChatSearchPrices,
  type ChatSearchSize,
  type ServerSearches,
  type WebSearchKind,
} from './tool-fees.js'
