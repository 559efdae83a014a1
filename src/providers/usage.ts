/**
 * Usage measurement by endpoint, whichever upstream served it: the wire format follows the API
 * that was called (messages → Anthropic, the rest → OpenAI), not the provider kind.
 */
import { AnthropicStreamUsageTracker, anthropicUsageFromBody } from './anthropic/usage.js'
import { OpenAIStreamUsageTracker, openaiUsageFromBody } from './openai/usage.js'
import type { Endpoint, StreamUsageTracker } from './types.js'
import type { UsageWithModel } from './usage-with-model.js'

/** Undefined when the body reports no usage: the proxy then falls back to its estimate. */
export function usageFromBody(endpoint: Endpoint, body: unknown): UsageWithModel | undefined {
  return endpoint === 'messages' ? anthropicUsageFromBody(body) : openaiUsageFromBody(endpoint, body)
}

/** A stream tracker that can also take the proxy's input estimate for a stream cut early. */
export interface PromptAwareStreamUsageTracker extends StreamUsageTracker {
  setPromptTokensEstimate(inputTokens: number): void
}

/**
 * Undefined for embeddings, which do not stream. `countScalePercent` scales the tokenizer's count of
 * delivered text for models whose own tokenizer is not o200k (see DeliveredText).
 */
export function createStreamUsageTracker(endpoint: Endpoint, countScalePercent = 100): PromptAwareStreamUsageTracker | undefined {
  switch (endpoint) {
    case 'chat_completions':
    case 'responses':
      return new OpenAIStreamUsageTracker(endpoint, countScalePercent)
    case 'messages':
      return new AnthropicStreamUsageTracker(countScalePercent)
    case 'embeddings':
      return undefined
  }
}
