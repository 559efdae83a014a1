/**
 * Usage → money. Every token is priced exactly once (see `Usage` in providers/types.ts): cache
 * reads, cache writes (5-minute and 1-hour apart) and audio input are carved out of
 * `inputTokens`; reasoning and audio output out of `outputTokens`. Inconsistent counts are a bug
 * in an adapter and fail an assertion; nothing is clamped.
 */
import { assert } from '../lib/assert.js'
import { costOfTokens, micros } from '../money/index.js'
import type { Usage } from '../providers/types.js'
import { callsCost, fileSearchMicrosPerKcall, webSearchMicrosPerKcall } from './tool-fees.js'
import type { CostBreakdown, CostPart, CostPartLine, ModelPrice } from './types.js'

export function costOfUsage(usage: Usage, price: ModelPrice): CostBreakdown {
  const { inputTokens, cacheReadTokens, cacheWriteTokens, cacheWrite1hTokens, audioInputTokens } = usage
  const { outputTokens, reasoningTokens, audioOutputTokens } = usage
  // Explicit checks rather than a loop over Object.entries: this runs once per request.
  assertCount(inputTokens, 'inputTokens')
  assertCount(cacheReadTokens, 'cacheReadTokens')
  assertCount(cacheWriteTokens, 'cacheWriteTokens')
  assertCount(cacheWrite1hTokens, 'cacheWrite1hTokens')
  assertCount(audioInputTokens, 'audioInputTokens')
  assertCount(outputTokens, 'outputTokens')
  assertCount(reasoningTokens, 'reasoningTokens')
  assertCount(audioOutputTokens, 'audioOutputTokens')
  const carvedInput = cacheReadTokens + cacheWriteTokens + audioInputTokens
  // Each message is built only when its check fails: this runs on every call.
  if (carvedInput > inputTokens) {
    assert(false, `usage: cache read ${cacheReadTokens} + cache write ${cacheWriteTokens} + audio input ${audioInputTokens} exceed input ${inputTokens}`)
  }
  if (cacheWrite1hTokens > cacheWriteTokens) assert(false, `usage: 1-hour cache writes ${cacheWrite1hTokens} exceed cache writes ${cacheWriteTokens}`)
  if (reasoningTokens + audioOutputTokens > outputTokens) {
    assert(false, `usage: reasoning ${reasoningTokens} + audio output ${audioOutputTokens} exceed output ${outputTokens}`)
  }

  const parts: CostPartLine[] = []
  let total = 0
  const add = (part: CostPart, tokens: number, unit: number) => {
    if (tokens === 0) return
    const costMicros = costOfTokens(tokens, unit)
    total += costMicros
    parts.push({ part, tokens, unitMicrosPerMtok: unit, costMicros, fallback: price.fallbackParts.includes(part) })
  }
  add('input', inputTokens - carvedInput, price.inputMicrosPerMtok)
  add('cache_read', cacheReadTokens, price.cacheReadMicrosPerMtok)
  add('cache_write_5m', cacheWriteTokens - cacheWrite1hTokens, price.cacheWriteMicrosPerMtok)
  add('cache_write_1h', cacheWrite1hTokens, price.cacheWrite1hMicrosPerMtok)
  add('audio_input', audioInputTokens, price.audioInputMicrosPerMtok)
  add('output', outputTokens - reasoningTokens - audioOutputTokens, price.outputMicrosPerMtok)
  add('reasoning', reasoningTokens, price.outputMicrosPerMtok)
  add('audio_output', audioOutputTokens, price.audioOutputMicrosPerMtok)
  // Tool fees: a price the source lacks is a documented default, flagged like any fallback.
  const addCalls = (part: CostPart, calls: number | undefined, microsPerKcall: number, isDefault: boolean) => {
    if (calls === undefined || calls === 0) return
    assertCount(calls, part)
    const costMicros = callsCost(calls, microsPerKcall)
    total += costMicros
    parts.push({ part, tokens: calls, unitMicrosPerMtok: microsPerKcall * 1_000, costMicros, fallback: isDefault || price.fallbackParts.includes(part) })
  }
  addCalls('web_search', usage.webSearches, webSearchMicrosPerKcall(price), price.webSearchMicrosPerKcall === undefined)
  addCalls('file_search', usage.fileSearches, fileSearchMicrosPerKcall(price), price.fileSearchMicrosPerKcall === undefined)
  const breakdown: CostBreakdown = { parts, totalMicros: micros(total), tier: price.tier }
  return price.serviceTier === undefined ? breakdown : Object.assign(breakdown, { serviceTier: price.serviceTier })
}

/** The parts this cost charged at a fallback price (`audio_output`, …), for the event's price source. */
export function fallbackPartsOf(breakdown: CostBreakdown): CostPart[] {
  return breakdown.parts.filter((p) => p.fallback).map((p) => p.part)
}

function assertCount(value: number, name: string): void {
  if (!(Number.isSafeInteger(value) && value >= 0)) assert(false, `usage.${name}: ${value}`)
}
