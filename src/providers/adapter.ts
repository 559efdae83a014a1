/**
 * The request side of the adapters: where a call goes upstream and with which headers, which
 * body field caps the output, and the stream-usage opt-in. Wire names (`max_tokens`,
 * `max_completion_tokens`, `stream_options`) stay in this file.
 */
import { assert } from '../lib/assert.js'
import { flavorOf, type Endpoint, type ProviderKind } from './types.js'

/** `models` is the GET /v1/models listing; the other endpoints are POSTed JSON calls. */
export type UpstreamEndpoint = Endpoint | 'models'

export interface UpstreamRequestInput {
  endpoint: UpstreamEndpoint
  provider: ProviderKind
  /** OpenAI-style providers include the version (`https://api.openai.com/v1`); Anthropic does not (`https://api.anthropic.com`). */
  baseUrl: string
  apiKey: string | undefined
  body: Record<string, unknown>
  clientHeaders: Record<string, string | string[] | undefined>
}

export interface UpstreamRequest {
  /** `https://api.openai.com` — scheme, host and port only. */
  origin: string
  /** `/v1/chat/completions` — the base URL's path plus the endpoint's. */
  path: string
  headers: Record<string, string>
}

export const anthropicVersionDefault = '2023-06-01'

const endpointPaths: Record<UpstreamEndpoint, string> = {
  chat_completions: '/chat/completions',
  responses: '/responses',
  embeddings: '/embeddings',
  messages: '/messages',
  models: '/models',
}

/** Client headers passed upstream unchanged when present. Nothing else is forwarded. */
const forwardedHeaders = {
  openai: ['accept', 'openai-organization', 'openai-project'],
  anthropic: ['accept', 'anthropic-beta'],
} as const

/**
 * The client's own `authorization` / `x-api-key` are Tollgate consumer keys and are never
 * forwarded: only the configured provider key goes upstream. The auth style follows the API that
 * was called (Anthropic's `x-api-key` for messages, `Bearer` otherwise), so the mock and
 * openai-compatible upstreams can serve both.
 */
export function buildUpstreamRequest(input: UpstreamRequestInput): UpstreamRequest {
  const { origin, path } = upstreamAddress(input.baseUrl, input.provider, input.endpoint)

  const isAnthropicFlavor = upstreamFlavor(input.endpoint, input.provider) === 'anthropic'
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    // The proxy reads usage out of the body: a compressed reply would have to be inflated first.
    'accept-encoding': 'identity',
  }
  const forwarded = isAnthropicFlavor ? forwardedHeaders.anthropic : forwardedHeaders.openai
  for (const name of forwarded) {
    const value = headerValue(input.clientHeaders, name)
    if (value !== undefined) headers[name] = value
  }
  if (isAnthropicFlavor) {
    headers['anthropic-version'] = headerValue(input.clientHeaders, 'anthropic-version') ?? anthropicVersionDefault
    if (input.apiKey !== undefined) headers['x-api-key'] = input.apiKey
  } else if (input.apiKey !== undefined) {
    headers['authorization'] = `Bearer ${input.apiKey}`
  }
  return { origin, path, headers }
}

type Address = { readonly origin: string; readonly path: string }

/**
 * Origin and path by base URL, provider and endpoint: a few per configured target, parsed once
 * each instead of per call. Nested rather than under one joined key: the three
 * strings are the config's and the code's own and keep their hashes, where a joined key would be
 * a new string to hash on every call.
 */
const addresses = new Map<string, Map<ProviderKind, Map<UpstreamEndpoint, Address>>>()

function upstreamAddress(baseUrl: string, provider: ProviderKind, endpoint: UpstreamEndpoint): Address {
  let byProvider = addresses.get(baseUrl)
  if (byProvider === undefined) addresses.set(baseUrl, (byProvider = new Map()))
  let byEndpoint = byProvider.get(provider)
  if (byEndpoint === undefined) byProvider.set(provider, (byEndpoint = new Map()))
  let address = byEndpoint.get(endpoint)
  if (address === undefined) {
    const url = new URL(baseUrl)
    const basePath = url.pathname.replace(/\/+$/, '')
    // Anthropic's base URL has no version segment; tolerate one configured with it.
    const versionPath = provider === 'anthropic' && !basePath.endsWith('/v1') ? '/v1' : ''
    address = { origin: url.origin, path: `${basePath}${versionPath}${endpointPaths[endpoint]}` }
    byEndpoint.set(endpoint, address)
  }
  return address
}

/** Node lower-cases incoming header names; repeated headers are joined as HTTP allows. */
function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name]
  if (value === undefined) return undefined
  return Array.isArray(value) ? value.join(', ') : value
}

export type OutputCapField = 'max_completion_tokens' | 'max_tokens' | 'max_output_tokens'

/**
 * Which body field holds the output-token cap, whether or not the client set it: the field the
 * client used, else the one Tollgate should write. Chat prefers `max_completion_tokens` (the only
 * one o-series models accept) but `max_tokens` for openai-compatible upstreams, many of which
 * know only that. Embeddings have no output, hence no cap.
 */
export function outputCapField(endpoint: Endpoint, body: Record<string, unknown>, provider?: ProviderKind): OutputCapField | undefined {
  switch (endpoint) {
    case 'chat_completions':
      if (isPresent(body['max_completion_tokens'])) return 'max_completion_tokens'
      if (isPresent(body['max_tokens'])) return 'max_tokens'
      return provider === 'openai-compatible' ? 'max_tokens' : 'max_completion_tokens'
    case 'responses':
      return 'max_output_tokens'
    case 'messages':
      return 'max_tokens'
    case 'embeddings':
      return undefined
  }
}

export type OutputCapRead =
  | { kind: 'uncapped_endpoint' }
  | { kind: 'absent'; field: OutputCapField }
  | { kind: 'set'; field: OutputCapField; outputTokensMax: number }
  /** Not a non-negative safe integer: leave it alone, the upstream will answer 400. */
  | { kind: 'invalid'; field: OutputCapField; value: unknown }

export function readOutputCap(endpoint: Endpoint, body: Record<string, unknown>, provider?: ProviderKind): OutputCapRead {
  const field = outputCapField(endpoint, body, provider)
  if (field === undefined) return { kind: 'uncapped_endpoint' }
  const value = body[field]
  if (!isPresent(value)) return { kind: 'absent', field }
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
    return { kind: 'set', field, outputTokensMax: value }
  }
  return { kind: 'invalid', field, value }
}

/**
 * Sets the cap (a request without one gets one, lowered to what can be afforded).
 * On chat, a second cap field the client also set is lowered too, so that neither lets more
 * through than was reserved. Returns the field written, undefined for embeddings.
 */
export function writeOutputCap(
  endpoint: Endpoint,
  body: Record<string, unknown>,
  outputTokensMax: number,
  provider?: ProviderKind,
): OutputCapField | undefined {
  if (!Number.isSafeInteger(outputTokensMax)) assert(false, `outputTokensMax is not an integer: ${outputTokensMax}`)
  if (!(outputTokensMax >= 0)) assert(false, `outputTokensMax is negative: ${outputTokensMax}`)
  const field = outputCapField(endpoint, body, provider)
  if (field === undefined) return undefined
  body[field] = outputTokensMax
  if (endpoint === 'chat_completions') {
    const other = field === 'max_tokens' ? 'max_completion_tokens' : 'max_tokens'
    const otherValue = body[other]
    if (isPresent(otherValue) && !(typeof otherValue === 'number' && otherValue <= outputTokensMax)) {
      body[other] = outputTokensMax
    }
  }
  return field
}

/**
 * For chat.completions streams: sets `stream_options.include_usage = true` so the final chunk
 * reports usage (keeping any other stream_options). Returns false exactly when Tollgate injected
 * it, i.e. when the proxy must drop the usage-only chunk (`tracker.isInjectedUsageChunk`) because
 * the client did not ask for it. Non-stream bodies are left alone (returns true: nothing to drop).
 */
export function ensureStreamUsage(body: Record<string, unknown>): boolean {
  if (body['stream'] !== true) return true
  const streamOptions = body['stream_options']
  const options = typeof streamOptions === 'object' && streamOptions !== null && !Array.isArray(streamOptions) ? (streamOptions as Record<string, unknown>) : {}
  if (options['include_usage'] === true) return true
  body['stream_options'] = Object.assign({}, options, { include_usage: true })
  return false
}

/** The API flavour of an upstream endpoint's error envelope (`models` answers OpenAI-style on OpenAI upstreams). */
export function upstreamFlavor(endpoint: UpstreamEndpoint, provider: ProviderKind): 'openai' | 'anthropic' {
  if (endpoint === 'models') return provider === 'anthropic' ? 'anthropic' : 'openai'
  return flavorOf(endpoint)
}

function isPresent(value: unknown): boolean {
  return value !== undefined && value !== null
}

/**
 * Whether the model may bill output it never streams (hidden reasoning): OpenAI's o-series and
 * GPT-5 family (reasoning by default), any request that asks for reasoning, and Anthropic
 * extended thinking (Claude 4 streams only a summary of what it bills). When such a stream is cut
 * before its usage arrives, what was delivered says little about the bill.
 */
export function billsHiddenOutput(endpoint: Endpoint, model: string, body: Record<string, unknown>): boolean {
  if (endpoint === 'embeddings') return false
  if (endpoint === 'messages') {
    const thinking = body['thinking']
    return typeof thinking === 'object' && thinking !== null && (thinking as Record<string, unknown>)['type'] === 'enabled'
  }
  const name = model.slice(model.lastIndexOf('/') + 1).toLowerCase()
  if (/^(o\d|gpt-5|gpt-6|codex)/.test(name)) return true
  return isPresent(body['reasoning_effort']) || isPresent(body['reasoning'])
}
