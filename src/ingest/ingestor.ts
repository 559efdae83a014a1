/**
 * Ingestion: usage events for calls that never passed through the gateway, recorded as if they
 * had. Each event is attributed with the same rules as a proxied call (the key's org, team and
 * own user win; a named user needs a key that allows it; the environment is the key's), priced
 * from the catalogue, and written with ONE `LedgerStore.commit` — the event and its budget spend
 * together, deduplicated on `externalRequestId` per org and team by the store itself, so a replay
 * or two racing posts count once, and no team's key can claim the ids of another team's events. Once `ingest` resolves, every created event is durable.
 *
 * What ingested spend moves: budget counters of the current period (soft thresholds fire, hard
 * budgets see it for later calls), never a wallet — the commit path for spend without a
 * reservation does not debit wallets, and nothing was reserved. `dataMode: demo` events are
 * stored and reported but counted against no budget.
 */
import { newId } from '../lib/ids.js'
import type { Clock } from '../lib/clock.js'
import { userFromKeyOf, type Consumer } from '../auth/index.js'
import { counterRefOf, type BudgetService } from '../budgets/index.js'
import type { BudgetCounterRef, LedgerStore } from '../ledger/index.js'
import type { Logger } from '../observability/logger.js'
import { chatSearchFeeAt, costOfUsage, fallbackPartsOf, priceForWebSearchKind, type PriceBook, type ModelPrice, type WebSearchKind } from '../pricing/index.js'
import type { ProviderKind, Usage } from '../providers/index.js'
import type { Attribution, UsageEvent } from '../usage/index.js'
import {
  type INGEST_ERROR_CODES,
  INGEST_STATUSES,
  OCCURRED_AT_SKEW_MS,
  isProblem,
  parseEvent,
  type EventPayload,
  type EventProblem,
  type IngestWebSearchKind,
} from './payload.js'

export interface IngestDeps {
  readonly priceBook: PriceBook
  readonly ledger: LedgerStore
  readonly budgets: BudgetService
  readonly clock: Clock
  readonly logger: Logger
}

/** What became of one event of a request. */
export type IngestResult =
  | { readonly status: 'created'; readonly event: UsageEvent }
  | { readonly status: 'duplicate'; readonly externalRequestId: string }
  | { readonly status: 'rejected'; readonly problem: IngestProblem }

export interface IngestProblem {
  readonly code: Extract<(typeof INGEST_ERROR_CODES)[number], EventProblem['code'] | 'store_unavailable'>
  readonly message: string
  readonly field: string | undefined
}

export class Ingestor {
  constructor(private readonly deps: IngestDeps) {}

  /**
   * Validates and prices each event, then commits every valid one in ONE `commitIngested`: one
   * atomic step per request, each duplicate found by the store, each budget counter moved once by
   * the batch's sum. An invalid event is rejected alone; results are in input order.
   */
  async ingest(consumer: Consumer, inputs: readonly unknown[]): Promise<IngestResult[]> {
    const nowMs = this.deps.clock.nowMs()
    const results = new Array<IngestResult>(inputs.length)
    const valid: Array<{ event: UsageEvent; budgets: BudgetCounterRef[] }> = []
    const positions: number[] = []
    for (let i = 0; i < inputs.length; i++) {
      const built = this.eventOf(consumer, inputs[i], nowMs)
      if ('code' in built) {
        results[i] = { status: 'rejected', problem: built }
      } else {
        valid.push(built)
        positions.push(i)
      }
    }
    if (valid.length === 0) return results
    try {
      const { stored, budgetCrossings } = await this.deps.ledger.commitIngested({ atMs: nowMs, events: valid })
      for (let k = 0; k < valid.length; k++) {
        const { event } = valid[k]!
        results[positions[k]!] = stored[k] ? { status: 'created', event } : { status: 'duplicate', externalRequestId: event.externalRequestId! }
      }
      if (budgetCrossings.length > 0) void this.deps.budgets.onSpendSettled(budgetCrossings, { atMs: nowMs })
    } catch (error) {
      this.deps.logger.error({ err: error, events: valid.length }, 'ingest: could not store the events')
      const problem: IngestProblem = {
        code: 'store_unavailable',
        message: 'the event could not be stored; send it again (it is idempotent)',
        field: undefined,
      }
      for (const k of positions) results[k] = { status: 'rejected', problem }
    }
    return results
  }

  /** The usage event and the budget counters it counts against, or why it cannot be recorded. */
  private eventOf(consumer: Consumer, input: unknown, nowMs: number): { event: UsageEvent; budgets: BudgetCounterRef[] } | IngestProblem {
    const payload = parseEvent(input)
    if (isProblem(payload)) return payload
    const attribution = attributionOf(consumer, payload)
    if ('code' in attribution) return attribution
    const atMs = payload.occurredAt ?? nowMs
    if (atMs > nowMs + OCCURRED_AT_SKEW_MS) {
      return {
        code: 'invalid_request',
        field: 'occurredAt',
        message: `occurredAt: ${new Date(atMs).toISOString()} is in the future (more than 5 minutes past the gateway's clock)`,
      }
    }
    const usage = usageOf(payload)
    const catalogued = priceOf(this.deps.priceBook, payload.provider, payload.model, usage.inputTokens)
    if (!catalogued) {
      return {
        code: 'model_not_priced',
        field: 'model',
        message: `model: neither the price catalogue nor models[].pricing prices "${payload.model}" from provider "${payload.provider}"`,
      }
    }
    const webSearchKind = ingestedWebSearchKindOf(payload.provider, payload.model, usage, payload.webSearchKind)
    if (typeof webSearchKind === 'object') return webSearchKind
    const price = priceForWebSearchKind(catalogued, webSearchKind, payload.model)
    const breakdown = costOfUsage(usage, price)
    const fallbacks = fallbackPartsOf(breakdown)
    const event: UsageEvent = {
      id: newId('evt', nowMs),
      requestId: payload.externalRequestId,
      atMs,
      attribution,
      // Priced whatever its case; stored in one spelling so reports group it once.
      provider: payload.provider.toLowerCase(),
      targetId: undefined,
      modelRequested: payload.model,
      modelServed: payload.model,
      endpoint: 'ingested',
      usage,
      ...(webSearchKind !== undefined && { webSearchKind }),
      usageSource: 'reported',
      usageNote: undefined,
      costBreakdown: breakdown,
      costMicros: breakdown.totalMicros,
      priceSource: fallbacks.length > 0 ? `${price.source};fallback:${fallbacks.join(',')}` : price.source,
      latencyMs: payload.latencyMs ?? 0,
      status: INGEST_STATUSES[payload.status ?? 'success'],
      httpStatus: (payload.status ?? 'success') === 'success' ? 200 : 0,
      isStream: false,
      // Nothing was decided: the call had happened before Tollgate heard of it.
      decision: 'unenforced',
      reservationId: undefined,
      walletId: undefined,
      dataMode: payload.dataMode ?? 'real',
      source: 'ingest',
      externalRequestId: payload.externalRequestId,
      reportedCostMicros: payload.costUsd,
    }
    return { event, budgets: this.budgetsFor(event, nowMs) }
  }

  /**
   * Budgets whose period holding the event is still running. A demo event counts against none;
   * an event from a period already over is reported, but reopens no closed period's thresholds.
   */
  private budgetsFor(event: UsageEvent, nowMs: number) {
    if (event.dataMode === 'demo' || event.costMicros <= 0) return []
    return this.deps.budgets
      .applicableBudgets(event.attribution, event.modelRequested, event.provider, event.atMs)
      .filter(({ period }) => period.endMs > nowMs)
      .map(({ budget, period }) => counterRefOf(budget, period))
  }
}

/**
 * The proxy's attribution rules (proxy/call.ts), for a body instead of headers: org and team are
 * always the key's; the key's own user wins over a named one, and naming a user needs a key that
 * allows it; the agent and endpoint tag default to the key's. The environment is the key's: a
 * proxied call cannot choose another, so an ingested event cannot either.
 */
export function attributionOf(consumer: Consumer, payload: EventPayload): Attribution | IngestProblem {
  if (payload.userId !== undefined && consumer.userId === undefined && !consumer.allowNamedUsers) {
    return { code: 'invalid_request', field: 'userId', message: 'userId: this key may not name a user; remove userId or use a key that allows named users' }
  }
  if (payload.environment !== undefined && payload.environment !== consumer.environment) {
    return {
      code: 'invalid_request',
      field: 'environment',
      message: `environment: this key records into "${consumer.environment}" only; omit environment or use a key of "${payload.environment}"`,
    }
  }
  return {
    orgId: consumer.orgId,
    teamId: consumer.teamId,
    userId: consumer.userId ?? payload.userId,
    userFromKey: userFromKeyOf(consumer),
    agentId: payload.agentId ?? consumer.agentId,
    keyName: consumer.name,
    endpointTag: payload.endpointTag ?? consumer.endpointTag,
    promptVersion: payload.promptVersion,
    environment: consumer.environment,
  }
}

export function usageOf(payload: EventPayload): Usage {
  const webSearches = payload.webSearches ?? 0
  const fileSearches = payload.fileSearches ?? 0
  return {
    inputTokens: payload.inputTokens,
    cacheReadTokens: payload.cachedInputTokens ?? 0,
    cacheWriteTokens: payload.cacheWriteTokens ?? 0,
    cacheWrite1hTokens: payload.cacheWrite1hTokens ?? 0,
    outputTokens: payload.outputTokens,
    reasoningTokens: payload.reasoningTokens ?? 0,
    audioInputTokens: 0,
    audioOutputTokens: 0,
    ...(webSearches > 0 && { webSearches }),
    ...(fileSearches > 0 && { fileSearches }),
  }
}

/**
 * The fee an ingested event's web searches are priced at when not the model's own, or why the
 * kind the event declares (`webSearchKind`) cannot be how its call searched.
 *
 * An OpenAI chat search model (the only OpenAI models whose name says `search`) searches through
 * `web_search_options` at a fee by context size: `chat:low|medium|high` when the event says which,
 * else the model's dearest (`chat:unknown`, flagged as an upper bound). `web_search_preview` is
 * OpenAI's older tool, for the other OpenAI models. Without a declared kind, any other model's
 * searches are priced at its own web search fee, as the proxy prices Anthropic's web search tool
 * and OpenAI's Responses `web_search`. An event with no web searches records no kind.
 */
export function ingestedWebSearchKindOf(
  provider: string,
  model: string,
  usage: Usage,
  declared: IngestWebSearchKind | undefined,
): WebSearchKind | undefined | EventProblem {
  const openai = provider.toLowerCase() === 'openai'
  const chatSearchModel = openai && chatSearchFeeAt(model, undefined) !== undefined
  const problem = (message: string): EventProblem => ({ code: 'invalid_request', field: 'webSearchKind', message: `webSearchKind: ${message}` })
  let kind: WebSearchKind | undefined
  if (declared === undefined) {
    kind = chatSearchModel ? 'chat:unknown' : undefined
  } else if (declared.startsWith('chat:')) {
    if (!chatSearchModel)
      return problem(`${declared} is the fee of an OpenAI chat search model (such as gpt-4o-search-preview); "${model}" from "${provider}" is not one`)
    kind = declared as WebSearchKind
  } else if (chatSearchModel) {
    return problem(`"${model}" searches through web_search_options at a fee by context size: say chat:low, chat:medium or chat:high`)
  } else if (declared === 'web_search_preview') {
    if (!openai) return problem(`web_search_preview is OpenAI's tool; this event's provider is "${provider}"`)
    kind = 'web_search_preview'
  }
  return (usage.webSearches ?? 0) > 0 ? kind : undefined
}

/**
 * The catalogue price of `model` from `provider`: OpenAI and Anthropic by their own catalogues;
 * any other provider (google, mistral, azure, …) as the catalogue spells `provider/model`, else by
 * the model name alone. `models[].pricing` overrides win, as on the proxy.
 */
export function priceOf(priceBook: PriceBook, provider: string, model: string, inputTokens: number): ModelPrice | undefined {
  const name = provider.toLowerCase()
  if (name === 'openai' || name === 'anthropic') return priceBook.lookup(name as ProviderKind, model, inputTokens)
  const byName = priceBook.lookup('openai-compatible', model, inputTokens)
  if (byName?.source.startsWith('override:') === true) return byName
  return priceBook.lookup('openai-compatible', `${name}/${model}`, inputTokens) ?? byName
}
