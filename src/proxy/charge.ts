/**
 * What a call is charged, from what dispatch measured — exact when the provider reported the
 * whole usage, otherwise never below what the provider can bill (pure; table-tested):
 *
 * | measured                                                  | usage source | charged                                   |
 * | --------------------------------------------------------- | ------------ | ----------------------------------------- |
 * | usage reported in full                                    | reported     | the usage at the catalogue's prices        |
 * | a whole stream without usage (upstream ignored the ask)   | counted      | counted input + delivered output           |
 * | a stream cut before its usage                             | counted      | counted input + delivered output           |
 * | …on a model that bills hidden reasoning                   | estimated    | input + the output cap (≥ delivered)       |
 * | a 200 without usage; a body cut after the 200; a timeout  | estimated    | the worst case: input + the output cap     |
 * | an upstream error status; a connection refused           | —            | nothing (voided)                           |
 *
 * Estimates price every token at the model's dearest price of its kind, so they bound the bill
 * from above; each says why it is an estimate.
 */
import type { Usage } from '../providers/index.js'
import { emptyUsage } from '../providers/index.js'
import {
  callsCost,
  costOfUsage,
  fileSearchMicrosPerKcall,
  webSearchMicrosPerKcall,
  type CostBreakdown,
  type CostPartLine,
  type ModelPrice,
  type ServerSearches,
} from '../pricing/index.js'
import { costOfTokens, micros, ZERO, type Micros } from '../money/index.js'
import type { Measured } from './dispatch.js'

export type ChargeSource = 'reported' | 'counted' | 'estimated'

/** Why a charge is not the provider's reported usage. */
export type ChargeNote =
  | 'no_usage_reported'
  | 'cut_before_usage'
  | 'hidden_reasoning'
  | 'cut_after_response_started'
  | 'timed_out'
  | 'dispatch_failed'
  | 'usage_unpriceable'

/** Charged at the worst case whatever was measured: dispatch threw, or the measured usage could not be priced. */
export type ChargeFailure = 'dispatch_failed' | 'usage_unpriceable'

export interface ChargeBounds {
  /** Input tokens as the tokenizer counts the prompt (an upper bound of the provider's count). */
  readonly promptTokens: () => number
  /**
   * Counts the prompt without holding the event loop (in slices); `promptTokens()` then answers at
   * once. Awaited before a charge that may need the count (`mayCountPrompt`).
   */
  readonly countPrompt: () => Promise<number>
  /** The most output the call could produce: its cap × `n`. */
  readonly outputTokensMax: number
  /** The model may bill output it does not stream (providers' `billsHiddenOutput`). */
  readonly hiddenReasoning: boolean
  /** The server-side searches the request allows (what its worst case reserved); undefined without search tools. */
  readonly serverSearches?: ServerSearches | undefined
}

export interface Charge {
  /** False: nothing was spent (void the reservation). */
  readonly spent: boolean
  readonly usage: Usage
  readonly source: ChargeSource
  readonly note: ChargeNote | undefined
  readonly breakdown: CostBreakdown | undefined
  readonly costMicros: Micros
}

/** Whether `chargeOf` may read `promptTokens()` for this measurement: only when usage was not reported. */
export function mayCountPrompt(measured: Measured, failure: ChargeFailure | undefined): boolean {
  if (failure !== undefined) return true
  if (measured.kind === 'upstream_error' || measured.kind === 'unreachable') return false
  return !(measured.usage !== undefined && measured.usageSource === 'reported')
}

export function chargeOf(
  measured: Measured,
  bounds: ChargeBounds,
  priceFor: (usage: Usage) => ModelPrice,
  dearest: ModelPrice,
  failure?: ChargeFailure,
): Charge {
  if (failure) return estimated(bounds, dearest, bounds.promptTokens(), 0, failure)
  if (measured.kind === 'upstream_error' || measured.kind === 'unreachable') {
    return { spent: false, usage: emptyUsage(), source: 'reported', note: undefined, breakdown: undefined, costMicros: ZERO }
  }
  const usage = measured.usage
  if (usage !== undefined && measured.usageSource === 'reported') {
    // A chat answer reports no searches, yet its request made them.
    const charged = bounds.serverSearches?.chatSearch === undefined ? usage : withSearchesAllowed(usage, bounds.serverSearches)
    return priced(charged, 'reported', undefined, priceFor(charged))
  }
  if (usage !== undefined && measured.usageSource === 'counted') {
    const note: ChargeNote = measured.kind === 'ok' ? 'no_usage_reported' : 'cut_before_usage'
    // Delivered text says nothing of reasoning the model billed and never streamed.
    if (bounds.hiddenReasoning) return estimated(bounds, dearest, usage.inputTokens, usage.outputTokens, 'hidden_reasoning')
    return priced(withSearchesAllowed(usage, bounds.serverSearches), 'counted', note, priceFor(usage))
  }
  // Nothing measured: a 200 that reported no usage, a body cut after the 200, a timeout.
  const note: ChargeNote = measured.kind === 'ok' ? 'no_usage_reported' : measured.status === 504 ? 'timed_out' : 'cut_after_response_started'
  return estimated(bounds, dearest, bounds.promptTokens(), 0, note)
}

/** Counted usage knows no search count it can trust: it is charged the searches the request allows, or more if seen. */
function withSearchesAllowed(usage: Usage, searches: ServerSearches | undefined): Usage {
  if (searches === undefined) return usage
  return Object.assign({}, usage, {
    webSearches: Math.max(usage.webSearches ?? 0, searches.webSearches),
    fileSearches: Math.max(usage.fileSearches ?? 0, searches.fileSearches),
  })
}

function priced(usage: Usage, source: ChargeSource, note: ChargeNote | undefined, price: ModelPrice): Charge {
  const breakdown = costOfUsage(usage, price)
  return { spent: true, usage, source, note, breakdown, costMicros: breakdown.totalMicros }
}

/**
 * An upper bound: every input token at the dearest input-side price, and the output cap (never
 * less than what was delivered) at the dearest output-side price.
 */
function estimated(bounds: ChargeBounds, dearest: ModelPrice, inputTokens: number, deliveredOutput: number, note: ChargeNote): Charge {
  const input = Math.max(inputTokens, bounds.promptTokens())
  const output = Math.max(bounds.outputTokensMax, deliveredOutput)
  const inputUnit = Math.max(
    dearest.inputMicrosPerMtok,
    dearest.cacheReadMicrosPerMtok,
    dearest.cacheWriteMicrosPerMtok,
    dearest.cacheWrite1hMicrosPerMtok,
    dearest.audioInputMicrosPerMtok,
  )
  const outputUnit = Math.max(dearest.outputMicrosPerMtok, dearest.audioOutputMicrosPerMtok)
  const inputMicros = costOfTokens(input, inputUnit)
  const outputMicros = costOfTokens(output, outputUnit)
  const webSearches = bounds.serverSearches?.webSearches ?? 0
  const fileSearches = bounds.serverSearches?.fileSearches ?? 0
  const webUnit = webSearchMicrosPerKcall(dearest)
  const fileUnit = fileSearchMicrosPerKcall(dearest)
  const parts: CostPartLine[] = [
    { part: 'input' as const, tokens: input, unitMicrosPerMtok: inputUnit, costMicros: inputMicros, fallback: false },
    { part: 'output' as const, tokens: output, unitMicrosPerMtok: outputUnit, costMicros: outputMicros, fallback: false },
    // The searches the request allows, each at its fee.
    { part: 'web_search' as const, tokens: webSearches, unitMicrosPerMtok: webUnit * 1_000, costMicros: callsCost(webSearches, webUnit), fallback: false },
    { part: 'file_search' as const, tokens: fileSearches, unitMicrosPerMtok: fileUnit * 1_000, costMicros: callsCost(fileSearches, fileUnit), fallback: false },
  ].filter((p) => p.tokens > 0)
  const costMicros = micros(parts.reduce((sum, p) => sum + p.costMicros, 0))
  return {
    spent: true,
    usage: Object.assign(emptyUsage(), { inputTokens: input, outputTokens: output }, webSearches > 0 && { webSearches }, fileSearches > 0 && { fileSearches }),
    source: 'estimated',
    note,
    breakdown: { parts, totalMicros: costMicros, tier: dearest.tier, ...(dearest.serviceTier !== undefined && { serviceTier: dearest.serviceTier }) },
    costMicros,
  }
}
