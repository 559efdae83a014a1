/**
 * The life of one proxied call, in one function (docs/architecture.md draws it):
 *
 *   route + price ─▶ budgets: decide ─▶ estimate ─▶ ledger: reserve ─▶ dispatch ─▶ settle | void ─▶ usage event
 *
 * Helpers compute; this file owns the control flow and every state change's order. The one rule
 * that matters most: a reservation, once taken, is resolved exactly once on every path — by
 * `resolve` when dispatch learns the outcome, by the `finally` if anything throws, and by the
 * expiry sweeper if the process dies.
 */
import { createHash } from 'node:crypto'
import type { Clock } from '../lib/clock.js'
import { newId } from '../lib/ids.js'
import type { Config } from '../config/types.js'
import {
  IDEMPOTENCY_BODY_BYTES_MAX,
  type BudgetCounterRef,
  type BudgetCrossing,
  type CommitResult,
  type IdempotencyStore,
  type LedgerStore,
  type Reservation,
  type ResolveResult,
  type StoredResponse,
} from '../ledger/index.js'
import type { FundsSignal } from '../ledger/funds-signal.js'
import { ZERO, formatUsd, micros, type Micros } from '../money/index.js'
import type { Metrics } from '../observability/metrics.js'
import type { Logger } from '../observability/logger.js'
import {
  fallbackPartsOf,
  foreignTokenizerScalePercent,
  priceAtServiceTier,
  priceForServerSearches,
  requestedServiceTier,
  serverSearchFeesMicros,
  serverSearchesOf,
  type ServerSearches,
  tierServingRequest,
  tokenizerFitOf,
  webSearchKindOf,
  type ModelPrice,
  type PriceBook,
} from '../pricing/index.js'
import { billsHiddenOutput, buildUpstreamRequest, emptyUsage, ensureStreamUsage, writeOutputCap, type Usage } from '../providers/index.js'
import { chargeOf, mayCountPrompt, type Charge, type ChargeBounds, type ChargeFailure } from './charge.js'
import type { TicketService } from '../tickets/index.js'
import type { UsageDecision, UsageEvent, UsageStatus } from '../usage/index.js'
import { routeModel, type ProxyCall, type RoutedModel } from './call.js'
import { dispatch, type Measured } from './dispatch.js'
import { H } from './headers.js'
import { errorBody, type ProxyError } from './refusal.js'
import {
  PromptEstimate,
  heldFieldLabel,
  heldInputBoundOf,
  inputNotBounded,
  planOutputCap,
  reserveForCall,
  type HeldInputBound,
  type ReservationOutcome,
} from './reserve.js'
import type { ResponseSink } from './response-sink.js'
import { usageDecisionOf, type PolicyDecision, type SpendPolicy } from './spend-policy.js'
import type { UpstreamPools } from './upstream.js'

export interface ProxyDeps {
  readonly config: Config
  readonly priceBook: PriceBook
  readonly ledger: LedgerStore
  readonly tickets: TicketService
  readonly policy: SpendPolicy
  readonly idempotency: IdempotencyStore
  /** Wakes held requests when a wallet is topped up in this process. */
  readonly funds: FundsSignal
  readonly pools: UpstreamPools
  readonly metrics: Metrics
  readonly logger: Logger
  readonly clock: Clock
}

export async function handleProxyCall(call: ProxyCall, deps: ProxyDeps, sink: ResponseSink): Promise<void> {
  if (call.idempotencyKey === undefined) {
    await runCall(call, deps, sink)
    return
  }
  const key = `${call.consumer.apiKeyHash.slice(0, 16)}:${call.endpoint}:${call.idempotencyKey}`
  const requestHash = createHash('sha256').update(JSON.stringify(call.body)).digest('hex')
  const claim = await deps.idempotency.claim(key, requestHash, deps.clock.nowMs(), 24 * 3_600_000)
  switch (claim.kind) {
    case 'replay': {
      const { status, headers, bodyBase64 } = claim.response
      sink.send(status, Object.assign({}, headers, { [H.idempotentReplay]: 'true' }), Buffer.from(bodyBase64, 'base64'))
      return
    }
    case 'in_progress':
      refuse(call, sink, {
        status: 409,
        code: 'idempotency_in_progress',
        message: 'A request with this Idempotency-Key is still in progress; retry when it has finished.',
      })
      return
    case 'mismatch':
      refuse(call, sink, { status: 422, code: 'idempotency_key_reused', message: 'This Idempotency-Key was used with a different request body.' })
      return
    case 'claimed':
      break
  }
  let charged = false
  try {
    charged = await runCall(call, deps, sink)
  } finally {
    const stored = charged ? (sink.stored() ?? (sink.isTooLargeToStore ? tooLargeToReplay(call) : undefined)) : undefined
    // Refused before dispatch, or an upstream error that spent nothing: nothing was charged, so a
    // retry (say, after a top-up or the upstream's Retry-After) starts afresh. A cut response is
    // not stored either (`stored()` is undefined): its retry is a new, separately charged call.
    if (stored) await deps.idempotency.complete(key, stored)
    else await deps.idempotency.release(key)
  }
}

/**
 * What a retry of a charged call whose answer was too large to keep gets instead of the answer: a
 * 409 saying so. Running it again would make the provider bill the same request twice.
 */
function tooLargeToReplay(call: ProxyCall): StoredResponse {
  const error: ProxyError = {
    status: 409,
    code: 'idempotency_replay_too_large',
    message: `The request with this Idempotency-Key was answered and charged, but its answer was larger than ${IDEMPOTENCY_BODY_BYTES_MAX / 1024 / 1024} MiB and was not kept for replay; it is not sent again. Use a new key to make a new, separately charged call.`,
  }
  const body = Buffer.from(JSON.stringify(errorBody(call.flavor, error, call.requestId)))
  return { status: 409, headers: { 'content-type': 'application/json', [H.requestId]: call.requestId }, bodyBase64: body.toString('base64') }
}

/** Returns true when the call reached the upstream and was charged (answered, or cut after producing output). */
async function runCall(call: ProxyCall, deps: ProxyDeps, sink: ResponseSink): Promise<boolean> {
  const { config, clock } = deps
  let routed = routeModel(config, deps.priceBook, call.flavor, call.modelRequested)
  if ('code' in routed) return refuse(call, sink, routed)

  const decision = await deps.policy.decide({
    attribution: call.attribution,
    model: call.modelRequested,
    provider: routed.target.provider,
    atMs: call.receivedAtMs,
  })
  if (decision.kind === 'block') {
    deps.policy.onBlocked({ budgetId: decision.budgetId, periodKey: periodKeyOf(decision, decision.budgetId) }, policyInput(call, routed))
    await recordRefusal(call, deps, routed, 'budget_cap_exceeded')
    return refuse(
      call,
      sink,
      blockedError(decision.scope, `${decision.budgetName} (${decision.periodLabel})`, decision.resetAtMs, clock.nowMs(), decision.explanation),
    )
  }
  const headers: Record<string, string> = { [H.requestId]: call.requestId }
  const degraded = decision.kind === 'degrade' ? degradeCall(call, decision, routed, deps, headers) : undefined
  if (degraded) routed = degraded.routed
  const degradeCap = degraded?.outputTokensMax
  if (decision.kind === 'would_block') headers[H.decision] = 'would_block'

  const cap = planOutputCap(call, routed, config, deps.priceBook, degradeCap)
  if ('code' in cap) return refuse(call, sink, cap)
  const upstreamBody: Record<string, unknown> = Object.assign({}, call.body, { model: routed.upstreamModel })
  const dropInjectedUsage = call.endpoint === 'chat_completions' && call.isStream ? !ensureStreamUsage(upstreamBody) : false
  // A call that asks for a dearer service tier (OpenAI `priority`, or `auto` on a target whose
  // project serves it at priority) reserves at that tier's prices, and a call with server-side
  // search tools the fees of the searches it allows.
  const serverSearches = serverSearchesOf(call.endpoint, call.body, routed.upstreamModel)
  const price = worstPriceOf(call, routed, serverSearches)
  const needsReservation = (config.costTracking.enabled && config.costTracking.walletEnforcement) || decision.counters.some((c) => c.limitMicros !== undefined)
  // Input the provider holds or fetches (a previous response, a server-side tool) is not in the
  // body: the worst case takes the model's whole context window, and a call that must be capped
  // is refused when that window is unknown.
  const heldInput = heldInputBoundOf(call, routed, deps.priceBook)
  if (heldInput !== undefined && heldInput.contextWindow === undefined && needsReservation) {
    return refuse(call, sink, inputNotBounded(heldInput, routed.upstreamModel))
  }
  // Counted lazily: a reservation first tries the byte bound; only a refusal or a stream cut
  // before its usage arrived runs the tokenizer.
  const prompt = new PromptEstimate(call, routed, config.reservations.tokenizerMaxBytes, heldInput?.contextWindow)

  let reservation: Reservation | undefined
  let reservedCall: ReservedCall | undefined
  if (needsReservation) {
    const reserved = await reserveForCall(
      { config, ledger: deps.ledger, tickets: deps.tickets, funds: deps.funds, nowMs: () => clock.nowMs(), logger: deps.logger },
      call,
      routed,
      price,
      prompt,
      cap,
      decision.counters,
      upstreamBody,
      sink,
      serverSearchFeesMicros(serverSearches, price),
    )
    if (reserved.kind === 'client_gone') {
      // A held request whose client hung up is never sent: nobody would receive the answer.
      deps.logger.info({ requestId: call.requestId, ticketId: reserved.ticketId }, 'proxy: held request abandoned by its client; not sent')
      return false
    }
    if (reserved.kind === 'refused') {
      const refusal = reserved.result
      if (refusal.kind === 'budget_cap_exceeded') {
        deps.policy.onBlocked({ budgetId: refusal.budgetId, periodKey: refusal.periodKey }, policyInput(call, routed))
      } else if (refusal.kind === 'insufficient_quota') {
        deps.policy.onWalletRefused(refusal.scope, policyInput(call, routed), refusal.availableMicrosMax)
      }
      if (refusal.kind !== 'store_unavailable') await recordRefusal(call, deps, routed, refusal.kind)
      return refuse(call, sink, reservationRefusal(reserved, decision, clock.nowMs(), heldInput))
    }
    reservation = reserved.result.reservation
    reservedCall = { reservation, walletAvailableMicros: reserved.result.walletAvailableMicros, outputTokensCap: reserved.outputTokensCap }
    headers[H.costReserved] = formatUsd(reservation.amountMicros)
    if (reservation.scope !== undefined) headers[H.wallet] = reservation.scope
    if (reserved.cappedTo !== undefined) headers[H.outputCapped] = String(reserved.cappedTo)
  }

  // Without a reservation the cap planning still holds: a consumer's default or a degrade is sent.
  if (!needsReservation && cap.writeUpstream) writeOutputCap(call.endpoint, upstreamBody, cap.outputTokensCap, routed.target.provider)

  const target = routed.target
  const upstream = buildUpstreamRequest({
    endpoint: call.endpoint,
    provider: target.provider,
    baseUrl: target.baseUrl!,
    apiKey: target.apiKey,
    body: upstreamBody,
    clientHeaders: call.headers,
  })
  const bounds: ChargeBounds = {
    promptTokens: () => prompt.counted(),
    countPrompt: () => prompt.countedInSlices(),
    outputTokensMax: (reservedCall?.outputTokensCap ?? cap.outputTokensCap) * cap.choices,
    hiddenReasoning: billsHiddenOutput(call.endpoint, routed.upstreamModel, upstreamBody),
    serverSearches,
  }
  let resolved = false
  const resolve = (measured: Measured): Promise<Record<string, string>> => {
    resolved = true
    return settleCall(call, deps, routed as RoutedModel, decision, reservedCall, bounds, price, measured)
  }
  let outcome: Measured | undefined
  try {
    outcome = await dispatch({
      call,
      routed,
      upstreamBody,
      dropInjectedUsage,
      countScalePercent: tokenizerFitOf(target.provider, routed.upstreamModel) === 'o200k' ? 100 : foreignTokenizerScalePercent,
      promptTokensEstimate: () => prompt.countedInSlices(),
      sink,
      headers,
      pools: deps.pools,
      upstream,
      resolve,
      onRelayError: (error) =>
        deps.logger.warn({ err: error, requestId: call.requestId, target: routed.target.id }, 'proxy: upstream relay failed mid-response'),
    })
  } catch (error) {
    if (resolved) throw error
    // Dispatch threw before learning the outcome: the call may have run upstream, so it is
    // charged its worst case rather than risk undercharging; the event says why.
    resolved = true
    deps.logger.error({ err: error, requestId: call.requestId, reservationId: reservation?.id }, 'proxy: dispatch failed unexpectedly; charging the worst case')
    await settleCall(
      call,
      deps,
      routed,
      decision,
      reservedCall,
      bounds,
      price,
      { kind: 'cut', status: 502, usage: undefined, usageSource: 'none', modelServed: undefined },
      'dispatch_failed',
    )
    throw error
  }
  // Charged exactly when settleCall settles rather than voids.
  return outcome.usage !== undefined || outcome.kind === 'ok'
}

function policyInput(call: ProxyCall, routed: RoutedModel) {
  return { attribution: call.attribution, model: call.modelRequested, provider: routed.target.provider, atMs: call.receivedAtMs }
}

function periodKeyOf(decision: PolicyDecision, budgetId: string): string {
  return decision.counters.find((c) => c.budgetId === budgetId)?.periodKey ?? ''
}

/** A `degrade` decision: route to the cheaper model when it can be served, and/or cap the output. */
function degradeCall(
  call: ProxyCall,
  decision: Extract<PolicyDecision, { kind: 'degrade' }>,
  routed: RoutedModel,
  deps: ProxyDeps,
  headers: Record<string, string>,
): { routed: RoutedModel; outputTokensMax: number | undefined } {
  let served = routed
  if (decision.degradeTo !== undefined && decision.degradeTo !== call.modelRequested) {
    const cheaper = routeModel(deps.config, deps.priceBook, call.flavor, decision.degradeTo)
    if (!('code' in cheaper)) {
      headers[H.degraded] = `${call.modelRequested}->${decision.degradeTo}`
      served = cheaper
    }
  }
  if (decision.outputTokensMax !== undefined) headers[H.degraded] ??= `output_tokens<=${decision.outputTokensMax}`
  return { routed: served, outputTokensMax: decision.outputTokensMax }
}

/** The refusal for a reservation the ledger turned down (in the called API’s error shape), naming the worst case it could not cover. */
function reservationRefusal(
  reserved: Extract<ReservationOutcome, { kind: 'refused' }>,
  decision: PolicyDecision,
  nowMs: number,
  heldInput: HeldInputBound | undefined,
): ProxyError {
  const r = reserved.result
  const worstCase = `$${formatUsd(reserved.worstCaseMicros)}${
    heldInput?.contextWindow === undefined
      ? ''
      : `, its input taken at the model's ${heldInput.contextWindow}-token context window because ${heldFieldLabel(heldInput.held)} adds input the body does not show`
  }`
  switch (r.kind) {
    case 'insufficient_quota':
      return {
        status: 429,
        code: 'insufficient_quota',
        message: `No wallet in the cascade for ${r.scope} can cover this request's worst-case cost (${worstCase}). A cost ticket was opened for approval.`,
        extra: { scope: r.scope, ticket_id: reserved.ticketId },
      }
    case 'store_unavailable':
      return {
        status: 503,
        code: 'store_unavailable',
        message: `Spend controls are unavailable (${r.message}); this consumer fails closed.`,
        headers: { 'retry-after': '5' },
      }
    case 'budget_cap_exceeded': {
      const counter = decision.counters.find((c) => c.budgetId === r.budgetId)
      const label = decision.labelOf?.(r.budgetId)
      const what = label ? `${label.name} (${label.periodLabel})` : `budget ${r.budgetId}`
      const why = [label?.reason, `this request's worst-case cost is ${worstCase}`].filter((part) => part !== undefined).join('; ')
      return blockedError(label?.scope ?? `budget:${r.budgetId}`, what, counter?.periodEndMs ?? nowMs, nowMs, why)
    }
  }
}

/**
 * Turns what dispatch measured into money and makes it durable: the cost is computed from the
 * usage, then ONE ledger commit resolves the reservation (or counts the spend of an unreserved
 * call) and stores the usage event. Dispatch awaits it before the client's last bytes go out, so
 * a call the client received in full is in the store for good. Thresholds and notifications
 * follow off the response path.
 */
async function settleCall(
  call: ProxyCall,
  deps: ProxyDeps,
  routed: RoutedModel,
  decision: PolicyDecision,
  reserved: ReservedCall | undefined,
  bounds: ChargeBounds,
  /** The route's price at the tier asked for, with search fees (`worstPriceOf`): what estimates are priced at. */
  dearest: ModelPrice,
  measured: Measured,
  failure?: ChargeFailure,
): Promise<Record<string, string>> {
  // Read before `now`, in the same turn: a budget this process knew of by then counts the call
  // here, and the seed of one created later counts it by its settle time (SETTLED_BEFORE_END).
  const joined = decision.countersJoined?.() ?? NO_COUNTERS
  const now = deps.clock.nowMs()
  const provider = routed.target.provider
  const reservation = reserved?.reservation
  const requestedTier = requestedTierOf(call, routed)
  // The tier the answer names decides the prices; an answer that names none is taken at the tier
  // asked for (`auto` or none: the one the target's project serves them at).
  const priceFor = (usage: Usage) =>
    priceAtServiceTier(
      priceForServerSearches(deps.priceBook.lookup(provider, routedName(routed, call), usage.inputTokens) ?? routed.price, bounds.serverSearches),
      call.flavor === 'openai' && usage.serviceTier !== undefined && usage.serviceTier !== 'auto' ? usage.serviceTier : requestedTier,
    )
  // A long prompt is counted here, a slice at a time, rather than inside chargeOf in one block
  // (a count that fails is left to chargeOf, which counts again, as it always did).
  if (mayCountPrompt(measured, failure)) await bounds.countPrompt().catch(() => undefined)
  let charge: Charge
  try {
    charge = chargeOf(measured, bounds, priceFor, dearest, failure)
  } catch (error) {
    // Usage the arithmetic refuses (counts that contradict each other): the call is still settled,
    // at its worst case, so its reservation never waits for the sweeper and the client gets its answer.
    deps.logger.error({ err: error, requestId: call.requestId, usage: measured.usage }, 'proxy: could not price the reported usage; charging the worst case')
    charge = chargeOf(measured, bounds, priceFor, dearest, 'usage_unpriceable')
  }
  const { spent, costMicros } = charge
  const fallbacks = charge.breakdown ? fallbackPartsOf(charge.breakdown) : []
  const priceSource = `${charge.source === 'reported' || charge.source === 'counted' ? priceFor(charge.usage).source : dearest.source}${fallbacks.length > 0 ? `;fallback:${fallbacks.join(',')}` : ''}`
  const event = usageEventOf(
    call,
    routed,
    measured,
    STATUS_OF[measured.kind],
    charge,
    priceSource,
    decisionLabel(decision, reservation, deps.config),
    reservation,
    now,
    bounds.serverSearches,
  )
  const headers: Record<string, string> = { [H.cost]: formatUsd(costMicros) }
  if (spent) headers[H.usageSource] = charge.source
  // What an unreserved call's spend counts toward. A reservation knows its own counters; budgets
  // that joined since count a settlement's charge in the same commit (`alsoCount`).
  const counted = countersWith(decision.counters, joined)
  let result: CommitResult | undefined
  try {
    result = await deps.ledger.commit({
      orgId: call.attribution.orgId,
      atMs: now,
      event,
      ...(reservation && {
        resolve: {
          reservationId: reservation.id,
          outcome: spent ? 'settled' : 'voided',
          actualMicros: spent ? costMicros : ZERO,
          ...(joined.length > 0 && { alsoCount: joined }),
        },
      }),
      ...(!reservation && costMicros > 0 && counted.length > 0 && { spend: { budgets: counted, amountMicros: costMicros } }),
    })
  } catch (error) {
    // The answer is delivered all the same (the provider has charged for it); the reservation
    // expires at its worst case, never under-charged. The failure is loud.
    deps.metrics.commitFailures.inc()
    deps.logger.error(
      { err: error, requestId: call.requestId, reservationId: reservation?.id },
      'proxy: could not record the call; its reservation will expire at the reserved amount',
    )
  }
  const resolution: ResolveResult | undefined = result?.kind === 'committed' ? result.resolution : undefined
  let expiredCrossings = NO_CROSSINGS
  if (resolution?.kind === 'already_expired') {
    // The charge is what the expiry took, and the client is told so, as the recorded event says.
    const recorded = await recordAfterExpiry(deps, call, event, resolution.reservation, joined)
    expiredCrossings = recorded.crossings
    headers[H.cost] = formatUsd(recorded.chargedMicros)
    // The wallet was charged exactly what was reserved: it holds what it held right after the reserve.
    if (reserved?.walletAvailableMicros !== undefined) headers[H.walletRemaining] = formatUsd(reserved.walletAvailableMicros)
  } else if (resolution && (resolution.kind === 'settled' || resolution.kind === 'voided') && resolution.walletAvailableMicros !== undefined) {
    headers[H.walletRemaining] = formatUsd(resolution.walletAvailableMicros)
  } else if (reservation && reserved.walletAvailableMicros !== undefined) {
    // Not committed (store failure): what the wallet would hold, never above what it could cover.
    const charged = spent ? Math.min(costMicros, reservation.amountMicros + reserved.walletAvailableMicros) : 0
    headers[H.walletRemaining] = formatUsd(micros(reserved.walletAvailableMicros + reservation.amountMicros - charged))
  }
  if (result?.kind === 'committed') {
    const walletCrossing = resolution && (resolution.kind === 'settled' || resolution.kind === 'voided') ? resolution.walletCrossing : undefined
    // An expired reservation's joined budgets counted its charge with its event, above.
    deps.policy.onSpend({
      attribution: call.attribution,
      model: routedName(routed, call),
      provider,
      atMs: now,
      budgetCrossings: expiredCrossings.length === 0 ? result.budgetCrossings : [...result.budgetCrossings, ...expiredCrossings],
      walletCrossing,
    })
  }
  if (deps.logger.isLevelEnabled('debug')) {
    deps.logger.debug(
      {
        requestId: call.requestId,
        endpoint: call.endpoint,
        model: routedName(routed, call),
        status: measured.status,
        outcome: measured.kind,
        costMicros,
        reservationId: reservation?.id,
      },
      'proxy: call settled',
    )
  }
  deps.metrics.requests.inc({ endpoint: call.endpoint, status: String(measured.status), decision: decision.kind })
  deps.metrics.requestDuration.observe({ endpoint: call.endpoint, stream: call.isStream ? 'true' : 'false' }, (now - call.receivedAtMs) / 1000)
  if (costMicros > 0) deps.metrics.costMicros.inc({ provider, model: routedName(routed, call) }, costMicros)
  if (measured.kind === 'upstream_error' || measured.kind === 'unreachable') {
    deps.metrics.upstreamErrors.inc({ provider, status: measured.kind === 'unreachable' ? 'network' : String(measured.status) })
  }
  return headers
}

const NO_COUNTERS: readonly BudgetCounterRef[] = []
const NO_CROSSINGS: readonly BudgetCrossing[] = []

function countersWith(counters: readonly BudgetCounterRef[], joined: readonly BudgetCounterRef[]): readonly BudgetCounterRef[] {
  return joined.length === 0 ? counters : [...counters, ...joined]
}

/**
 * The call outlived its reservation (a stream longer than `reservations.ttl_ms`): the sweeper
 * already charged the reservation's full amount, and that stays the charge — never less than the
 * call cost. The call is still recorded, at what it was charged, so reports agree with the ledger,
 * and that charge counts toward the budgets that joined while it ran (the expiry moved the
 * others); returns the charge and those budgets' crossings.
 */
async function recordAfterExpiry(
  deps: ProxyDeps,
  call: ProxyCall,
  event: UsageEvent,
  reservation: Reservation,
  joined: readonly BudgetCounterRef[],
): Promise<{ chargedMicros: Micros; crossings: readonly BudgetCrossing[] }> {
  const charged: UsageEvent = Object.assign({}, event, {
    costMicros: reservation.settledMicros ?? reservation.amountMicros,
    usageNote: event.usageNote === undefined ? 'reservation_expired' : `${event.usageNote};reservation_expired`,
    priceSource: `${event.priceSource};reservation-expired`,
  })
  try {
    const result = await deps.ledger.commit({
      orgId: call.attribution.orgId,
      atMs: deps.clock.nowMs(),
      event: charged,
      ...(joined.length > 0 && charged.costMicros > 0 && { spend: { budgets: joined, amountMicros: charged.costMicros } }),
    })
    return { chargedMicros: charged.costMicros, crossings: result.kind === 'committed' ? result.budgetCrossings : NO_CROSSINGS }
  } catch (error) {
    deps.metrics.commitFailures.inc()
    deps.logger.error({ err: error, requestId: call.requestId, reservationId: reservation.id }, 'proxy: could not record a call whose reservation had expired')
    return { chargedMicros: charged.costMicros, crossings: NO_CROSSINGS }
  }
}

/** A reservation taken for a call, with what its wallet had left right after and the output cap it covers. */
interface ReservedCall {
  readonly reservation: Reservation
  readonly walletAvailableMicros: Micros | undefined
  readonly outputTokensCap: number
}

/**
 * The `service_tier` an OpenAI-API call asks for, `auto` or none taken as the tier its target's
 * project serves those at. Anthropic's tiers do not change per-token prices.
 */
function requestedTierOf(call: ProxyCall, routed: RoutedModel): string | undefined {
  return call.flavor === 'openai' ? tierServingRequest(requestedServiceTier(call.body), routed.target.serviceTierDefault) : undefined
}

/** The route's price at the service tier the call asks for, with its search tools' fees: what its worst case and estimates are priced at. */
function worstPriceOf(call: ProxyCall, routed: RoutedModel, searches: ServerSearches | undefined): ModelPrice {
  return priceAtServiceTier(priceForServerSearches(routed.price, searches), requestedTierOf(call, routed))
}

function routedName(routed: RoutedModel, call: ProxyCall): string {
  return routed.route?.name ?? (routed.upstreamModel === call.modelRequested ? call.modelRequested : routed.upstreamModel)
}

function decisionLabel(decision: PolicyDecision, reservation: Reservation | undefined, config: Config): UsageDecision {
  return usageDecisionOf(decision.kind, reservation !== undefined, config.costTracking.enabled && config.costTracking.walletEnforcement)
}

const STATUS_OF: Record<Measured['kind'], UsageStatus> = { ok: 'ok', upstream_error: 'upstream_error', cut: 'cut', unreachable: 'upstream_error' }

function usageEventOf(
  call: ProxyCall,
  routed: RoutedModel,
  measured: Measured,
  status: UsageStatus,
  charge: Pick<Charge, 'usage' | 'source' | 'note' | 'breakdown' | 'costMicros'>,
  priceSource: string,
  decision: UsageDecision,
  reservation: Reservation | undefined,
  atMs: number,
  /** The searches the request allows: which fee its web searches were charged (`webSearchKind`). */
  searches?: ServerSearches,
): UsageEvent {
  const webSearchKind = (charge.usage.webSearches ?? 0) > 0 ? webSearchKindOf(searches) : undefined
  return {
    id: newId('evt', atMs),
    requestId: call.requestId,
    atMs: call.receivedAtMs,
    attribution: call.attribution,
    provider: routed.target.provider,
    targetId: routed.target.id,
    modelRequested: call.modelRequested,
    modelServed: measured.modelServed ?? routed.upstreamModel,
    endpoint: call.endpoint,
    usage: charge.usage,
    usageSource: charge.source,
    usageNote: charge.note,
    costBreakdown: charge.breakdown,
    costMicros: charge.costMicros,
    priceSource,
    latencyMs: atMs - call.receivedAtMs,
    status,
    httpStatus: measured.status,
    isStream: call.isStream,
    decision,
    reservationId: reservation?.id,
    walletId: reservation?.walletId,
    dataMode: 'real',
    source: 'gateway',
    externalRequestId: undefined,
    // Last: a spread followed by further keys puts V8's literal on its slow path.
    ...(webSearchKind !== undefined && { webSearchKind }),
  }
}

/** A refused call is recorded with zero cost so reports and replay can see what was refused. */
async function recordRefusal(call: ProxyCall, deps: ProxyDeps, routed: RoutedModel, decision: 'budget_cap_exceeded' | 'insufficient_quota'): Promise<void> {
  const now = deps.clock.nowMs()
  const nothing: Measured = { kind: 'ok', status: 429, usage: undefined, usageSource: 'none', modelServed: undefined }
  const charge = { usage: emptyUsage(), source: 'reported' as const, note: undefined, breakdown: undefined, costMicros: ZERO }
  const event = usageEventOf(call, routed, nothing, 'refused', charge, routed.price.source, decision, undefined, now)
  await deps.ledger.commit({ orgId: call.attribution.orgId, atMs: now, event }).catch((error: unknown) => {
    deps.metrics.commitFailures.inc()
    deps.logger.error({ err: error, requestId: call.requestId }, 'proxy: could not record a refused call')
  })
  deps.metrics.requests.inc({ endpoint: call.endpoint, status: '429', decision })
}

function blockedError(scope: string, what: string, resetAtMs: number, nowMs: number, why?: string): ProxyError {
  const retryAfterSeconds = Math.max(1, Math.ceil((resetAtMs - nowMs) / 1000))
  return {
    status: 429,
    code: 'budget_cap_exceeded',
    message: `Spending limit reached for ${scope}: ${what}${why === undefined ? '' : `: ${why}`}. Contact your administrator.`,
    extra: { scope, reset_at: new Date(resetAtMs).toISOString() },
    headers: { 'retry-after': String(retryAfterSeconds) },
  }
}

/** Sends a refusal in the called API's envelope; returns false (nothing reached the upstream). */
export function refuse(call: Pick<ProxyCall, 'flavor' | 'requestId'>, sink: ResponseSink, error: ProxyError): false {
  sink.sendJson(error.status, { [H.requestId]: call.requestId, ...error.headers }, errorBody(call.flavor, error, call.requestId))
  return false
}
