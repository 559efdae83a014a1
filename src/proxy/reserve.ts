/**
 * Before dispatch: the worst-case cost and its reservation (SPEC §4.1–4.2). Pure planning helpers
 * plus `reserveForCall`, which owns the retry ladder: lower an absent output cap to what the funds
 * can cover, then open a cost ticket and, for consumers that hold, wait for its decision.
 */
import { newId } from '../lib/ids.js'
import type { Config } from '../config/types.js'
import type { LedgerStore, ReserveResult, WalletRef, BudgetCounterRef } from '../ledger/index.js'
import { type Micros } from '../money/index.js'
import {
  affordableOutputTokens,
  estimateInputTokens,
  promptTextOf,
  type PromptText,
  tokenizerFitOf,
  worstCaseCost,
  type ModelPrice,
} from '../pricing/index.js'
import { readOutputCap, writeOutputCap, type OutputCapRead } from '../providers/index.js'
import type { TicketService } from '../tickets/index.js'
import type { ProxyCall, RoutedModel } from './call.js'
import { proxyError, type ProxyError } from './refusal.js'

/** After an approval, how often and how far apart a held request tries to reserve again. */
const APPROVED_RESERVE_TRIES = 10
const APPROVED_RESERVE_RETRY_MS = 100

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export interface CapPlan {
  readonly read: OutputCapRead
  /** The cap the reservation covers and that is sent upstream; 0 for embeddings. */
  readonly outputTokensCap: number
}

/** The output cap: the client's, or the model's maximum / the configured default (SPEC §4.1). */
export function planOutputCap(call: ProxyCall, routed: RoutedModel, config: Config, degradeCap: number | undefined): CapPlan | ProxyError {
  const read = readOutputCap(call.endpoint, call.body, routed.target.provider)
  switch (read.kind) {
    case 'uncapped_endpoint':
      return { read, outputTokensCap: 0 }
    case 'invalid':
      return proxyError.invalidRequest(`"${read.field}" must be a non-negative integer.`)
    case 'set':
      return { read, outputTokensCap: degradeCap === undefined ? read.outputTokensMax : Math.min(read.outputTokensMax, degradeCap) }
    case 'absent': {
      const modelMax = routed.route?.outputTokensMax ?? config.reservations.defaultOutputTokens
      return { read, outputTokensCap: degradeCap === undefined ? modelMax : Math.min(modelMax, degradeCap) }
    }
  }
}

/**
 * Input tokens for the worst case, computed lazily and at most once each. `bound()` is the UTF-8
 * byte length (never below the true count, and nearly free); `counted()` runs the tokenizer for
 * prompts up to `tokenizerMaxBytes` — it is needed only when the bound does not fit the funds, or
 * to settle a stream cut before its usage arrived.
 */
export class PromptEstimate {
  private prompt: PromptText | undefined
  private boundTokens: number | undefined
  private countedTokens: number | undefined

  constructor(
    private readonly call: ProxyCall,
    private readonly routed: RoutedModel,
    private readonly tokenizerMaxBytes: number,
  ) {}

  bound(): number {
    return (this.boundTokens ??= this.estimate(0))
  }

  counted(): number {
    return (this.countedTokens ??= this.estimate(this.tokenizerMaxBytes))
  }

  private estimate(tokenizerMaxBytes: number): number {
    this.prompt ??= promptTextOf(this.call.endpoint, this.call.body)
    return estimateInputTokens(this.prompt, tokenizerMaxBytes, tokenizerFitOf(this.routed.target.provider, this.routed.upstreamModel)).tokens
  }
}

export function cascadeOf(call: Pick<ProxyCall, 'attribution'>): WalletRef[] {
  const cascade: WalletRef[] = []
  if (call.attribution.userId !== undefined) cascade.push({ scopeKind: 'user', scopeId: call.attribution.userId })
  if (call.attribution.teamId !== undefined) cascade.push({ scopeKind: 'team', scopeId: call.attribution.teamId })
  cascade.push({ scopeKind: 'org', scopeId: call.attribution.orgId })
  return cascade
}

/** The `block` entry of cost_tracking.budget_alerts caps what a wallet may spend of its allocation. */
export function walletCapPercent(config: Config): number {
  const block = config.costTracking.budgetAlerts.find((alert) => alert.action === 'block')
  return block?.thresholdPercent ?? 100
}

export type ReservationOutcome =
  | {
      readonly kind: 'reserved'
      readonly result: Extract<ReserveResult, { kind: 'reserved' }>
      readonly outputTokensCap: number
      /** Set when the cap was lowered to what the funds could cover. */
      readonly cappedTo: number | undefined
    }
  | { readonly kind: 'refused'; readonly result: Exclude<ReserveResult, { kind: 'reserved' | 'already_exists' }>; readonly ticketId: string | undefined }

export interface ReserveDeps {
  readonly config: Config
  readonly ledger: LedgerStore
  readonly tickets: TicketService
  readonly nowMs: () => number
}

export async function reserveForCall(
  deps: ReserveDeps,
  call: ProxyCall,
  routed: RoutedModel,
  price: ModelPrice,
  prompt: PromptEstimate,
  cap: CapPlan,
  counters: readonly BudgetCounterRef[],
  upstreamBody: Record<string, unknown>,
): Promise<ReservationOutcome> {
  const { config, ledger } = deps
  let inputTokens = prompt.bound()
  const attempt = (outputTokensCap: number) => {
    const now = deps.nowMs()
    return ledger.reserve({
      reservationId: newId('rsv', now),
      orgId: call.attribution.orgId,
      cascade: cascadeOf(call),
      walletRequired: config.costTracking.enabled && config.costTracking.walletEnforcement,
      walletCapPercent: walletCapPercent(config),
      amountMicros: worstCaseCost({ inputTokens, outputTokensCap, price }),
      budgets: counters,
      requestId: call.requestId,
      atMs: now,
      expiresAtMs: now + config.reservations.ttlMs,
      failMode: { mode: call.consumer.failMode, emergencyAllowanceMicros: call.consumer.emergencyAllowanceMicros },
    })
  }

  let outputTokensCap = cap.outputTokensCap
  let cappedTo: number | undefined
  let result = await attempt(outputTokensCap)
  // The byte bound over-counts (about 4× for English): when it does not fit, count exactly.
  if (result.kind !== 'reserved' && prompt.counted() < inputTokens) {
    inputTokens = prompt.counted()
    result = await attempt(outputTokensCap)
  }
  // A request that set no cap is not refused for a maximum it never asked for: lower the cap to
  // what the funds can cover and say so in a header (SPEC §4.1).
  if (result.kind !== 'reserved' && cap.read.kind === 'absent') {
    const funds = fundsOf(result)
    const affordable = funds === undefined ? 0 : Math.min(affordableOutputTokens(funds, inputTokens, price), outputTokensCap)
    if (affordable >= 1) {
      outputTokensCap = affordable
      cappedTo = affordable
      result = await attempt(outputTokensCap)
    }
  }
  if (cap.read.kind !== 'uncapped_endpoint') writeOutputCap(call.endpoint, upstreamBody, outputTokensCap, routed.target.provider)
  if (result.kind === 'reserved') return { kind: 'reserved', result, outputTokensCap, cappedTo }
  if (result.kind === 'already_exists') throw new Error('reservation id collision')
  if (result.kind !== 'insufficient_quota') return { kind: 'refused', result, ticketId: undefined }

  const ticket = await deps.tickets.open({
    orgId: call.attribution.orgId,
    scope: result.scope,
    teamId: call.attribution.teamId,
    requestId: call.requestId,
    consumerName: call.consumer.name,
    model: call.modelRequested,
    estimateMicros: worstCaseCost({ inputTokens, outputTokensCap, price }),
    reason: 'insufficient_quota',
  })
  if (call.consumer.onInsufficientFunds !== 'hold') return { kind: 'refused', result, ticketId: ticket.id }
  // Hold: keep the request open while the ticket waits; an approval adds funds, so try again.
  const decision = await deps.tickets.waitForDecision(ticket.id, call.consumer.holdTimeoutMs)
  if (decision === 'approved') {
    // The approver marks the ticket approved, then adds the funds: a held request in another
    // process may see the approval a moment before the money, so it tries a few times.
    for (let tryIndex = 0; tryIndex < APPROVED_RESERVE_TRIES; tryIndex++) {
      const retried = await attempt(outputTokensCap)
      if (retried.kind === 'reserved') return { kind: 'reserved', result: retried, outputTokensCap, cappedTo }
      if (retried.kind !== 'insufficient_quota' || tryIndex === APPROVED_RESERVE_TRIES - 1) {
        if (retried.kind !== 'already_exists') return { kind: 'refused', result: retried, ticketId: ticket.id }
      }
      await sleep(APPROVED_RESERVE_RETRY_MS)
    }
  }
  return { kind: 'refused', result, ticketId: ticket.id }
}

function fundsOf(result: ReserveResult): Micros | undefined {
  if (result.kind === 'insufficient_quota') return result.availableMicrosMax
  if (result.kind === 'budget_cap_exceeded') return result.remainingMicros
  return undefined
}
