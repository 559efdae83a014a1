/**
 * Usage → money. Every token is priced exactly once (see `Usage` in providers/types.ts):
 * cache reads, cache writes and audio input are carved out of `inputTokens`; audio output out of
 * `outputTokens`. Reasoning tokens stay in output, at the output price. Inconsistent counts are a
 * bug in an adapter and fail an assertion; nothing is clamped.
 */
import { assert } from '../lib/assert.js'
import { costOfTokens, micros } from '../money/index.js'
import type { Usage } from '../providers/types.js'
import type { CostBreakdown, ModelPrice } from './types.js'

export function costOfUsage(usage: Usage, price: ModelPrice): CostBreakdown {
  const { inputTokens, cacheReadTokens, cacheWriteTokens, audioInputTokens } = usage
  const { outputTokens, reasoningTokens, audioOutputTokens } = usage
  // Explicit checks rather than a loop over Object.entries: this runs once per request.
  assertCount(inputTokens, 'inputTokens')
  assertCount(cacheReadTokens, 'cacheReadTokens')
  assertCount(cacheWriteTokens, 'cacheWriteTokens')
  assertCount(audioInputTokens, 'audioInputTokens')
  assertCount(outputTokens, 'outputTokens')
  assertCount(reasoningTokens, 'reasoningTokens')
  assertCount(audioOutputTokens, 'audioOutputTokens')
  const carvedInput = cacheReadTokens + cacheWriteTokens + audioInputTokens
  assert(
    carvedInput <= inputTokens,
    `usage: cache read ${cacheReadTokens} + cache write ${cacheWriteTokens} + audio input ${audioInputTokens} exceed input ${inputTokens}`,
  )
  assert(reasoningTokens <= outputTokens, `usage: reasoning ${reasoningTokens} exceeds output ${outputTokens}`)
  assert(audioOutputTokens <= outputTokens, `usage: audio output ${audioOutputTokens} exceeds output ${outputTokens}`)

  const uncachedInputMicros = costOfTokens(inputTokens - carvedInput, price.inputMicrosPerMtok)
  const cacheReadMicros = costOfTokens(cacheReadTokens, price.cacheReadMicrosPerMtok)
  const cacheWriteMicros = costOfTokens(cacheWriteTokens, price.cacheWriteMicrosPerMtok)
  const audioInputMicros = costOfTokens(audioInputTokens, price.audioInputMicrosPerMtok)
  const outputMicros = costOfTokens(outputTokens - audioOutputTokens, price.outputMicrosPerMtok)
  const audioOutputMicros = costOfTokens(audioOutputTokens, price.audioOutputMicrosPerMtok)
  const totalMicros = micros(
    uncachedInputMicros + cacheReadMicros + cacheWriteMicros + audioInputMicros + outputMicros + audioOutputMicros,
  )
  return {
    uncachedInputMicros,
    cacheReadMicros,
    cacheWriteMicros,
    audioInputMicros,
    outputMicros,
    audioOutputMicros,
    totalMicros,
  }
}

function assertCount(value: number, name: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, `usage.${name}: ${value}`)
}
