/** The public surface of providers/: other modules import only from here. */
export * from './types.js'
export {
  anthropicVersionDefault,
  billsHiddenOutput,
  buildUpstreamRequest,
  ensureStreamUsage,
  outputCapField,
  readOutputCap,
  upstreamFlavor,
  writeOutputCap,
  type OutputCapField,
  type OutputCapRead,
  type UpstreamEndpoint,
  type UpstreamRequest,
  type UpstreamRequestInput,
} from './adapter.js'
export { SseEventTooLarge, SseParser, sseEventBytesMaxDefault, type SseEventHandler } from './sse.js'
export { countTextTokens } from './count-tokens.js'
export {
  OpenAIStreamUsageTracker,
  openaiUsageFromBody,
  usageFromChatUsage,
  usageFromResponsesUsage,
} from './openai/usage.js'
export type { UsageWithModel } from './usage-with-model.js'
export { AnthropicStreamUsageTracker, anthropicUsageFromBody, usageFromAnthropicUsage } from './anthropic/usage.js'
export { createStreamUsageTracker, usageFromBody, type PromptAwareStreamUsageTracker } from './usage.js'
export {
  startMockUpstream,
  type MockFailure,
  type MockUpstream,
  type MockUpstreamOptions,
  type RecordedRequest,
} from './mock/mock-upstream.js'
export { mockCutStreamMarker, mockReplyWordsMax, type MockScript, type MockUsage } from './mock/mock-reply.js'
