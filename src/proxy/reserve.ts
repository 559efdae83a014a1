/**
 * Before dispatch: the worst-case cost and its reservation. Pure planning helpers plus
 * `reserveForCall`, which owns the retry ladder: lower an absent output cap to what the funds can
 * cover, then open (or join) a cost ticket and, for consumers that hold, wait until the ticket is
 * approved or the wallet is topped up — unless the client hangs up first.
 */
import { newId } from '../lib/ids.js'
import type { BudgetAlert, Config } from '../config/types.js'
import type { BudgetCounterRef, CascadeStep, FundsSignal, LedgerStore, ReserveResult } from '../ledger/index.js'
import { TOKENS_MAX, micros, type Micros } from '../money/index.js'
import {
  affordableOutputTokens,
  estimateInputTokens,
  estimateInputTokensInSlices,
  heldInputOf,
  mediaAllowancesOf,
  promptTextOf,
  type HeldInput,
  type PromptText,
  tokenizerFitOf,
  worstCaseCost,
  type ModelPrice,
  type PriceBook,
} from '../pricing/index.js'
import { readOutputCap, writeOutputCap, type OutputCapRead } from '../providers/index.js'
import type { Logger } from '../observability/logger.js'
import type { TicketService } from '../tickets/index.js'
import type { ProxyCall, RoutedModel } from './call.js'
import type { ResponseSink } from './response-sink.js'
import { proxyError, type ProxyError } from './refusal.js'

/** A held request tries to reserve again at least this often (other processes' top-ups are seen so). */
const HOLD_RETRY_MS = 250

/** OpenAI's own limit on `n` (completions per chat request). */
export const CHOICES_MAX = 128

export interface CapPlan {
  readonly read: OutputCapRead
  /** The cap per answer the reservation covers; 0 for embeddings. */
  readonly outputTokensCap: number
  /** Answers the provider bills for (`n` on chat completions, else 1): the worst case reserves cap × choices. */
  readonly choices: number
  /**
   * Whether the cap is written into the upstream body. A cap the client did not set is written
   * only when it is below the model's own maximum (a consumer's default, a degrade, an unknown
   * model's configured default) or the API requires one (Messages): the model's maximum itself
   * bounds the answer without Tollgate cutting it.
   */
  readonly writeUpstream: boolean
}

/** Where the cap of a request that set none comes from, most specific first. */
type DefaultCap = { readonly tokens: number; readonly isModelMaximum: boolean }

/**
 * The cap of a request that sets none: the consumer's `default_output_tokens`; else the model's
 * maximum — `models[].max_output_tokens`, the provider's published limit, or the catalogue's
 * context window; else `reservations.default_output_tokens` (a model priced only by an override).
 */
export function defaultCapOf(call: Pick<ProxyCall, 'consumer'>, routed: RoutedModel, config: Config, priceBook: PriceBook): DefaultCap {
  if (call.consumer.defaultOutputTokens !== undefined) return { tokens: call.consumer.defaultOutputTokens, isModelMaximum: false }
  if (routed.route?.outputTokensMax !== undefined) return { tokens: routed.route.outputTokensMax, isModelMaximum: true }
  const known = priceBook.outputTokensMax(routed.target.provider, routed.upstreamModel)
  if (known !== undefined) return { tokens: known.tokens, isModelMaximum: true }
  return { tokens: config.reservations.defaultOutputTokens, isModelMaximum: false }
}

/** The output cap: the client's, or the default of a request that set none (`defaultCapOf`), lowered by a degrade. */
export function planOutputCap(
  call: ProxyCall,
  routed: RoutedModel,
  config: Config,
  priceBook: PriceBook,
  degradeCap: number | undefined,
): CapPlan | ProxyError {
  const choices = choicesOf(call)
  if (typeof choices !== 'number') return choices
  const read = readOutputCap(call.endpoint, call.body, routed.target.provider)
  switch (read.kind) {
    case 'uncapped_endpoint':
      return { read, outputTokensCap: 0, choices, writeUpstream: false }
    case 'invalid':
      return proxyError.invalidRequest(`"${read.field}" must be a non-negative integer.`)
    case 'set': {
      if (read.outputTokensMax * choices > TOKENS_MAX) {
        return proxyError.invalidRequest(`"${read.field}"${choices > 1 ? ' × "n"' : ''} must be at most ${TOKENS_MAX} output tokens.`)
      }
      return {
        read,
        outputTokensCap: degradeCap === undefined ? read.outputTokensMax : Math.min(read.outputTokensMax, degradeCap),
        choices,
        writeUpstream: true,
      }
    }
    case 'absent': {
      const base = defaultCapOf(call, routed, config, priceBook)
      const tokens = degradeCap === undefined ? base.tokens : Math.min(base.tokens, degradeCap)
      const writeUpstream = !base.isModelMaximum || tokens < base.tokens || call.endpoint === 'messages'
      return { read, outputTokensCap: tokens, choices, writeUpstream }
    }
  }
}

/**
 * Every parameter that multiplies billable output is in the worst case: chat's `n` answers are
 * each up to the output cap. (The Responses, Messages and Embeddings APIs have no such field.)
 */
function choicesOf(call: ProxyCall): number | ProxyError {
  if (call.endpoint !== 'chat_completions') return 1
  const n = call.body['n']
  if (n === undefined || n === null) return 1
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > CHOICES_MAX) {
    return proxyError.invalidRequest(`"n" must be an integer from 1 to ${CHOICES_MAX}.`)
  }
  return n
}

/** Anthropic's beta header that lets some Claude models read up to 1M input tokens. */
const ANTHROPIC_CONTEXT_1M = 'context-1m'
const ANTHROPIC_CONTEXT_1M_TOKENS = 1_000_000

/** A call whose body does not hold all its input, and the most input its model can take (undefined: unknown). */
export interface HeldInputBound {
  readonly held: HeldInput
  readonly contextWindow: number | undefined
}

/**
 * For a call whose input is partly held or fetched by the provider (`heldInputOf`): the model's
 * context window, which bounds the whole input however much the provider adds. Anthropic's
 * `context-1m` beta header raises it to 1M tokens. Undefined for an ordinary call (one check per
 * field and per message part; no text is read).
 */
export function heldInputBoundOf(
  call: Pick<ProxyCall, 'endpoint' | 'body' | 'flavor' | 'headers'>,
  routed: RoutedModel,
  priceBook: PriceBook,
): HeldInputBound | undefined {
  const held = heldInputOf(call.endpoint, call.body)
  if (held === undefined) return undefined
  let contextWindow = priceBook.contextWindow(routed.target.provider, routed.upstreamModel)
  if (contextWindow !== undefined && call.flavor === 'anthropic') {
    const beta = call.headers['anthropic-beta']
    const betas = Array.isArray(beta) ? beta.join(',') : (beta ?? '')
    if (betas.includes(ANTHROPIC_CONTEXT_1M)) contextWindow = Math.max(contextWindow, ANTHROPIC_CONTEXT_1M_TOKENS)
  }
  return { held, contextWindow }
}

/** `"tools[0]" (web_search)`, or just `"conversation"` when the field says what it is. */
export function heldFieldLabel(held: HeldInput): string {
  return held.field === held.what ? `"${held.field}"` : `"${held.field}" (${held.what})`
}

/** A call whose input the gateway cannot bound is refused when its cost must be capped (`input_not_bounded`). */
export function inputNotBounded(bound: HeldInputBound, model: string): ProxyError {
  const { held } = bound
  const [what, instead] = {
    server_tool: [`${heldFieldLabel(held)} is a server-side tool whose results the provider bills as input`, 'run the tool on the client'],
    provider_context: [`${heldFieldLabel(held)} makes the provider add input it holds`, 'send the whole input in the body'],
    file_reference: [`${heldFieldLabel(held)} is a file the provider fetches and bills as input`, 'send the file inline (base64) in the body'],
  }[held.kind]
  return proxyError.inputNotBounded(
    `${what}, and the request body does not show that input. Tollgate bounds it by the model's context window, but the context window of "${model}" is unknown, so the cost of this call cannot be capped. Use a model whose context window the price catalogue knows, or ${instead}.`,
  )
}

/**
 * Input tokens for the worst case, computed lazily and at most once each. `bound()` is the UTF-8
 * byte length (never below the true count, and nearly free); `counted()` runs the tokenizer for
 * prompts up to `tokenizerMaxBytes` — it is needed only when the bound does not fit the funds, or
 * to settle a call whose usage never arrived. The request path waits for `countedInSlices()`,
 * which tokenizes a long prompt in slices with turns of the event loop between them, so a prompt
 * of megabytes does not hold up every other call; `counted()` then answers from it at once. A
 * call with input the body does not hold is bounded by its model's context window instead
 * (`heldInputTokens`): both answers are that window.
 */
export class PromptEstimate {
  private prompt: PromptText | undefined
  private boundTokens: number | undefined
  private countedTokens: number | undefined
  private counting: Promise<number> | undefined

  constructor(
    private readonly call: ProxyCall,
    private readonly routed: RoutedModel,
    private readonly tokenizerMaxBytes: number,
    private readonly heldInputTokens?: number,
  ) {}

  bound(): number {
    return (this.boundTokens ??= this.heldInputTokens ?? estimateInputTokens(this.promptText(), 0, this.fit()).tokens)
  }

  counted(): number {
    return (this.countedTokens ??= this.heldInputTokens ?? estimateInputTokens(this.promptText(), this.tokenizerMaxBytes, this.fit()).tokens)
  }

  countedInSlices(): Promise<number> {
    if (this.countedTokens !== undefined) return Promise.resolve(this.countedTokens)
    if (this.heldInputTokens !== undefined) return Promise.resolve((this.countedTokens = this.heldInputTokens))
    this.counting ??= estimateInputTokensInSlices(this.promptText(), this.tokenizerMaxBytes, this.fit()).then(({ tokens }) => (this.countedTokens = tokens))
    return this.counting
  }

  private promptText(): PromptText {
    // Media allowances follow the model the provider bills: gpt-4o-mini bills an image as far more tokens.
    return (this.prompt ??= promptTextOf(this.call.endpoint, this.call.body, mediaAllowancesOf(this.routed.upstreamModel)))
  }

  private fit() {
    return tokenizerFitOf(this.routed.target.provider, this.routed.upstreamModel)
  }
}

/**
 * user → team → org. The key's own user pays from any wallet of that user; a user named by the
 * call only from a user wallet of the key's team (a wallet of another team is skipped).
 */
export function cascadeOf(call: Pick<ProxyCall, 'attribution'>): CascadeStep[] {
  const cascade: CascadeStep[] = []
  const { userId, userFromKey, teamId } = call.attribution
  if (userId !== undefined) cascade.push(userFromKey ? { scopeKind: 'user', scopeId: userId } : { scopeKind: 'user', scopeId: userId, teamOf: teamId ?? '' })
  if (call.attribution.teamId !== undefined) cascade.push({ scopeKind: 'team', scopeId: call.attribution.teamId })
  cascade.push({ scopeKind: 'org', scopeId: call.attribution.orgId })
  return cascade
}

/** The `block` entry of cost_tracking.budget_alerts caps what a wallet may spend of its allocation. */
export function walletCapPercent(config: Pick<Config, 'costTracking'>): number {
  return walletCapPercentOf(config.costTracking.budgetAlerts)
}

/** The percent of its allocation a wallet may spend under these alerts (100 without a `block`). */
export function walletCapPercentOf(alerts: readonly BudgetAlert[]): number {
  return alerts.find((alert) => alert.action === 'block')?.thresholdPercent ?? 100
}

export type ReservationOutcome =
  | {
      readonly kind: 'reserved'
      readonly result: Extract<ReserveResult, { kind: 'reserved' }>
      readonly outputTokensCap: number
      /** Set when the cap was lowered to what the funds could cover. */
      readonly cappedTo: number | undefined
    }
  | {
      readonly kind: 'refused'
      readonly result: Exclude<ReserveResult, { kind: 'reserved' | 'already_exists' }>
      readonly ticketId: string | undefined
      /** The worst case that could not be reserved. */
      readonly worstCaseMicros: Micros
    }
  /** A held request whose client hung up while it waited: nothing is sent upstream. */
  | { readonly kind: 'client_gone'; readonly ticketId: string }

export interface ReserveDeps {
  readonly config: Config
  readonly ledger: LedgerStore
  readonly tickets: TicketService
  readonly funds: FundsSignal
  readonly nowMs: () => number
  readonly logger: Logger
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
  sink: ResponseSink,
  /** Per-call fees of the server-side searches the request allows, on top of its tokens. */
  toolFeesMicros: Micros = micros(0),
): Promise<ReservationOutcome> {
  const { config, ledger } = deps
  let inputTokens = prompt.bound()
  const worstCase = (outputTokensCap: number) => micros(worstCaseCost({ inputTokens, outputTokensCap: outputTokensCap * cap.choices, price }) + toolFeesMicros)
  const attempt = (outputTokensCap: number) => {
    const now = deps.nowMs()
    return ledger.reserve({
      reservationId: newId('rsv', now),
      orgId: call.attribution.orgId,
      cascade: cascadeOf(call),
      walletRequired: config.costTracking.enabled && config.costTracking.walletEnforcement,
      walletCapPercent: walletCapPercent(config),
      amountMicros: worstCase(outputTokensCap),
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
  if (result.kind !== 'reserved') {
    const counted = await prompt.countedInSlices()
    if (counted < inputTokens) {
      inputTokens = counted
      result = await attempt(outputTokensCap)
    }
  }
  // A request that set no cap is not refused for a maximum it never asked for: lower the cap to
  // what the funds can cover and say so in a header.
  if (result.kind !== 'reserved' && cap.read.kind === 'absent') {
    const funds = fundsOf(result)
    const affordable =
      funds === undefined || funds < toolFeesMicros
        ? 0
        : Math.min(Math.floor(affordableOutputTokens(micros(funds - toolFeesMicros), inputTokens, price) / cap.choices), outputTokensCap)
    if (affordable >= 1) {
      outputTokensCap = affordable
      cappedTo = affordable
      result = await attempt(outputTokensCap)
    }
  }
  if (cap.writeUpstream || cappedTo !== undefined) writeOutputCap(call.endpoint, upstreamBody, outputTokensCap, routed.target.provider)
  if (result.kind === 'reserved') return { kind: 'reserved', result, outputTokensCap, cappedTo }
  if (result.kind === 'already_exists') throw new Error('reservation id collision')
  const worstCaseMicros = worstCase(outputTokensCap)
  if (result.kind !== 'insufficient_quota') return { kind: 'refused', result, ticketId: undefined, worstCaseMicros }

  // Refusals of one scope and consumer join one open ticket: a runaway loop is one incident.
  const ticket = await openTicket(deps, call, result, worstCaseMicros)
  // No ticket (its store is down): the refusal stands, without a ticket to approve or wait on.
  if (ticket === undefined) return { kind: 'refused', result, ticketId: undefined, worstCaseMicros }
  if (call.consumer.onInsufficientFunds !== 'hold') return { kind: 'refused', result, ticketId: ticket.id, worstCaseMicros }
  return holdForFunds(
    deps,
    call,
    ticket.id,
    () => attempt(outputTokensCap),
    worstCaseMicros,
    result,
    sink,
    (reserved) => ({ kind: 'reserved', result: reserved, outputTokensCap, cappedTo }),
  )
}

async function openTicket(
  deps: ReserveDeps,
  call: ProxyCall,
  result: Extract<ReserveResult, { kind: 'insufficient_quota' }>,
  estimateMicros: Micros,
): Promise<{ id: string } | undefined> {
  try {
    return await deps.tickets.openOrJoin({
      orgId: call.attribution.orgId,
      scope: result.scope,
      teamId: call.attribution.teamId,
      requestId: call.requestId,
      consumerName: call.consumer.name,
      model: call.modelRequested,
      estimateMicros,
      reason: 'insufficient_quota',
    })
  } catch (error) {
    deps.logger.error({ err: error, requestId: call.requestId, scope: result.scope }, 'proxy: could not open a cost ticket; refusing without one')
    return undefined
  }
}

/**
 * Hold: keep the request open while its ticket waits. It goes through once the wallet can cover
 * it — the ticket approved (the grant lands a moment after), or the wallet topped up — and never
 * once its client has hung up. Denied, out of time, or the process shutting down: refused (the
 * ticket stays open for its owner).
 */
async function holdForFunds(
  deps: ReserveDeps,
  call: ProxyCall,
  ticketId: string,
  attempt: () => Promise<ReserveResult>,
  worstCaseMicros: Micros,
  refused: Extract<ReserveResult, { kind: 'insufficient_quota' }>,
  sink: ResponseSink,
  onReserved: (result: Extract<ReserveResult, { kind: 'reserved' }>) => ReservationOutcome,
): Promise<ReservationOutcome> {
  const gone = sink.clientGone()
  const deadlineMs = deps.nowMs() + call.consumer.holdTimeoutMs
  let last: ReserveResult = refused
  for (;;) {
    const waitMs = Math.min(HOLD_RETRY_MS, deadlineMs - deps.nowMs())
    if (gone.aborted) return { kind: 'client_gone', ticketId }
    if (waitMs <= 0) break
    const round = new AbortController()
    const stop = () => round.abort()
    gone.addEventListener('abort', stop, { once: true })
    const decision = await Promise.race([
      deps.tickets.waitForDecision(ticketId, waitMs, round.signal),
      deps.funds.next(call.attribution.orgId, waitMs, round.signal).then(() => 'funds' as const),
    ])
    round.abort()
    gone.removeEventListener('abort', stop)
    if (gone.aborted) return { kind: 'client_gone', ticketId }
    if (decision === 'denied') break
    last = await attempt()
    // Shutting down: one last try (an approval may just have landed), then the hold ends.
    if (deps.funds.isClosing && last.kind !== 'reserved') break
    if (last.kind === 'reserved') {
      if (decision !== 'approved') await deps.tickets.releaseByTopUp(ticketId)
      return onReserved(last)
    }
    if (last.kind !== 'insufficient_quota' && last.kind !== 'already_exists') return { kind: 'refused', result: last, ticketId, worstCaseMicros }
  }
  return { kind: 'refused', result: last.kind === 'insufficient_quota' ? last : refused, ticketId, worstCaseMicros }
}

function fundsOf(result: ReserveResult): Micros | undefined {
  if (result.kind === 'insufficient_quota') return result.availableMicrosMax
  if (result.kind === 'budget_cap_exceeded') return result.remainingMicros
  return undefined
}
