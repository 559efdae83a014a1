/**
 * Parse and attribute one proxied call: who is spending (consumer key + attribution headers +
 * OpenAI's `user` field), on what (model → target, upstream name, price). Pure: no I/O.
 */
import type { Config, ModelRoute, ProviderTarget } from '../config/types.js'
import { userFromKeyOf, type Consumer } from '../auth/index.js'
import type { PriceBook, ModelPrice } from '../pricing/index.js'
import { flavorOf, type ApiFlavor, type Endpoint } from '../providers/types.js'
import type { Attribution } from '../usage/types.js'
import { controlCharMessage, controlCharOf } from '../lib/text.js'
import { proxyError, type ProxyError } from './refusal.js'

export interface ProxyCall {
  readonly requestId: string
  readonly endpoint: Endpoint
  readonly flavor: ApiFlavor
  readonly consumer: Consumer
  readonly attribution: Attribution
  readonly body: Record<string, unknown>
  readonly isStream: boolean
  readonly modelRequested: string
  readonly receivedAtMs: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly idempotencyKey: string | undefined
}

export interface RoutedModel {
  readonly target: ProviderTarget
  readonly route: ModelRoute | undefined
  /** The name sent upstream. */
  readonly upstreamModel: string
  readonly price: ModelPrice
}

const HEADER_VALUE_CHARS_MAX = 256

/** The attribution a call may give, each stored with its usage event and shown in reports. */
const ATTRIBUTION_HEADERS = ['x-tollgate-user', 'x-tollgate-agent', 'x-tollgate-endpoint', 'x-tollgate-prompt-version'] as const

function header(headers: ProxyCall['headers'], name: string): string | undefined {
  const value = headers[name]
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined || text.length === 0) return undefined
  return text.slice(0, HEADER_VALUE_CHARS_MAX)
}

export function buildCall(input: {
  requestId: string
  endpoint: Endpoint
  consumer: Consumer
  headers: ProxyCall['headers']
  body: unknown
  receivedAtMs: number
}): ProxyCall | ProxyError {
  const { body, consumer, headers } = input
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return proxyError.invalidRequest('The request body must be a JSON object.')
  }
  const record = body as Record<string, unknown>
  const model = record.model
  if (typeof model !== 'string' || model.length === 0) {
    return proxyError.invalidRequest('"model" is required and must be a non-empty string.')
  }
  const stream = record.stream
  if (stream !== undefined && typeof stream !== 'boolean') {
    return proxyError.invalidRequest('"stream" must be true or false.')
  }
  if (stream === true && input.endpoint === 'embeddings') {
    return proxyError.invalidRequest('Embeddings cannot be streamed.')
  }
  const missing = missingInput(input.endpoint, record)
  if (missing !== undefined) return proxyError.invalidRequest(missing)
  const unprintable = unprintableAttribution(headers, record)
  if (unprintable !== undefined) return proxyError.invalidRequest(unprintable)
  const bodyUser = typeof record.user === 'string' && record.user.length > 0 ? record.user.slice(0, HEADER_VALUE_CHARS_MAX) : undefined
  const namedUser = header(headers, 'x-tollgate-user') ?? bodyUser
  if (namedUser !== undefined && !consumer.allowNamedUsers) {
    return proxyError.invalidRequest(
      'This key may not name a user: remove the x-tollgate-user header and the "user" field, or use a key that allows named users.',
    )
  }
  // The key's own user always wins: a key bound to bob cannot bill carol (or dodge bob's budget).
  const userFromKey = userFromKeyOf(consumer)
  const attribution: Attribution = {
    orgId: consumer.orgId,
    teamId: consumer.teamId,
    userId: consumer.userId ?? namedUser,
    userFromKey,
    agentId: header(headers, 'x-tollgate-agent') ?? consumer.agentId,
    keyName: consumer.name,
    endpointTag: header(headers, 'x-tollgate-endpoint') ?? consumer.endpointTag,
    promptVersion: header(headers, 'x-tollgate-prompt-version'),
    environment: consumer.environment,
  }
  return {
    requestId: input.requestId,
    endpoint: input.endpoint,
    flavor: flavorOf(input.endpoint),
    consumer,
    attribution,
    body: record,
    isStream: stream === true,
    modelRequested: model,
    receivedAtMs: input.receivedAtMs,
    headers,
    idempotencyKey: header(headers, 'idempotency-key'),
  }
}

/**
 * What a call names itself by (model, user, agent, endpoint tag, prompt version) is stored and shown
 * in the console, CLI tables, exports and notifications: one line of printable text, or the call is
 * refused before anything is reserved. Node already refuses most control characters in a header
 * value, but not a tab.
 */
function unprintableAttribution(headers: ProxyCall['headers'], body: Record<string, unknown>): string | undefined {
  // No list of the values built first: this runs on every call, and almost always finds nothing.
  const unprintable = (name: string, value: unknown) => {
    const char = typeof value === 'string' ? controlCharOf(value) : undefined
    return char === undefined ? undefined : `${name} ${controlCharMessage(char)}.`
  }
  let found = unprintable('"model"', body.model) ?? unprintable('"user"', body.user)
  for (let i = 0; found === undefined && i < ATTRIBUTION_HEADERS.length; i++) {
    const name = ATTRIBUTION_HEADERS[i]!
    found = unprintable(name, header(headers, name))
  }
  return found
}

/**
 * A call with nothing to send is refused before anything is reserved: chat and Messages need a
 * non-empty `messages` array, Responses and Embeddings an `input`.
 */
function missingInput(endpoint: ProxyCall['endpoint'], body: Record<string, unknown>): string | undefined {
  switch (endpoint) {
    case 'chat_completions':
    case 'messages': {
      const messages = body['messages']
      return Array.isArray(messages) && messages.length > 0 ? undefined : '"messages" is required and must be a non-empty array.'
    }
    case 'responses':
    case 'embeddings': {
      // A Responses call may name a stored prompt instead of sending input.
      if (endpoint === 'responses' && body['prompt'] !== undefined) return undefined
      const value = body['input']
      const empty = value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)
      return empty ? '"input" is required and must not be empty.' : undefined
    }
  }
}

/** Which targets can serve an API: the mock speaks both; OpenAI-style targets serve the OpenAI endpoints. */
function speaks(target: ProviderTarget, flavor: ApiFlavor): boolean {
  if (target.provider === 'mock') return true
  return flavor === 'anthropic' ? target.provider === 'anthropic' : target.provider !== 'anthropic'
}

/** model → target, upstream name and price; a model we cannot price is refused (a call we cannot price is a call we cannot cap). */
export function routeModel(config: Config, priceBook: PriceBook, flavor: ApiFlavor, model: string): RoutedModel | ProxyError {
  const route = config.models.find((m) => m.name === model)
  let target: ProviderTarget | undefined
  if (route?.target !== undefined) {
    target = config.targets.find((t) => t.id === route.target)
    if (target && !speaks(target, flavor)) {
      return proxyError.notRouted(`Model "${model}" is routed to target "${target.id}" (${target.provider}), which does not serve this API.`)
    }
  } else {
    target = config.targets.find((t) => speaks(t, flavor))
  }
  if (!target) return proxyError.notRouted(`No configured provider target serves ${flavor === 'anthropic' ? 'the Anthropic Messages API' : 'the OpenAI API'}.`)
  const upstreamModel = route?.upstreamModel ?? model
  const price = priceBook.lookup(target.provider, model) ?? priceBook.lookup(target.provider, upstreamModel)
  if (!price) return proxyError.notPriced(model)
  return { target, route, upstreamModel, price }
}
