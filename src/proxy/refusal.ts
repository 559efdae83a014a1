/**
 * The only file that knows the proxy's error envelopes: OpenAI's `{"error": {…}}` for
 * /v1/chat/completions, /v1/responses and /v1/embeddings; Anthropic's `{"type": "error",
 * "error": {…}}` for /v1/messages, with Tollgate's extra fields inside `error`.
 */
import type { ApiFlavor } from '../providers/types.js'

/** Every code a proxied call can be refused with; docs/errors.md lists each (a test keeps them in sync). */
export const PROXY_ERROR_CODES = [
  'invalid_api_key',
  'invalid_request',
  'invalid_json',
  'body_too_large',
  'model_not_priced',
  'model_not_routed',
  'input_not_bounded',
  'insufficient_quota',
  'budget_cap_exceeded',
  'idempotency_in_progress',
  'idempotency_key_reused',
  'idempotency_replay_too_large',
  'upstream_unreachable',
  'upstream_timeout',
  'store_unavailable',
  'internal_error',
] as const
export type ProxyErrorCode = (typeof PROXY_ERROR_CODES)[number]

export interface ProxyError {
  readonly status: number
  readonly code: ProxyErrorCode
  readonly message: string
  /** Refusal fields: scope, reset_at, ticket_id. */
  readonly extra?: Readonly<Record<string, string | number | undefined>>
  readonly headers?: Readonly<Record<string, string>>
}

const OPENAI_TYPE: Record<ProxyErrorCode, string> = {
  invalid_api_key: 'invalid_request_error',
  invalid_request: 'invalid_request_error',
  invalid_json: 'invalid_request_error',
  body_too_large: 'invalid_request_error',
  model_not_priced: 'invalid_request_error',
  model_not_routed: 'invalid_request_error',
  input_not_bounded: 'invalid_request_error',
  insufficient_quota: 'insufficient_quota',
  budget_cap_exceeded: 'budget_error',
  idempotency_in_progress: 'invalid_request_error',
  idempotency_key_reused: 'invalid_request_error',
  idempotency_replay_too_large: 'invalid_request_error',
  upstream_unreachable: 'api_error',
  upstream_timeout: 'api_error',
  store_unavailable: 'api_error',
  internal_error: 'api_error',
}

/** Anthropic's error types (docs: invalid_request_error, authentication_error, rate_limit_error, api_error …). */
function anthropicType(error: ProxyError): string {
  if (error.code === 'invalid_api_key') return 'authentication_error'
  if (error.status === 429) return error.code === 'budget_cap_exceeded' ? 'budget_error' : 'rate_limit_error'
  if (error.status >= 500) return 'api_error'
  if (error.status === 413) return 'request_too_large'
  return 'invalid_request_error'
}

export function errorBody(flavor: ApiFlavor, error: ProxyError, requestId: string): Record<string, unknown> {
  const extra: Record<string, string | number> = {}
  for (const [key, value] of Object.entries(error.extra ?? {})) if (value !== undefined) extra[key] = value
  if (flavor === 'anthropic') {
    return {
      type: 'error',
      error: { type: anthropicType(error), code: error.code, message: error.message, ...extra, request_id: requestId },
    }
  }
  return {
    error: { message: error.message, type: OPENAI_TYPE[error.code], param: null, code: error.code, ...extra, request_id: requestId },
  }
}

export const proxyError = {
  invalidKey: (): ProxyError => ({
    status: 401,
    code: 'invalid_api_key',
    message: 'Missing or unknown Tollgate key: send it as "Authorization: Bearer KEY" or "x-api-key: KEY".',
  }),
  invalidRequest: (message: string, status = 400): ProxyError => ({ status, code: 'invalid_request', message }),
  notPriced: (model: string): ProxyError => ({
    status: 400,
    code: 'model_not_priced',
    message: `Model "${model}" has no known price, so its cost cannot be capped. Add it under models: with pricing: in the Tollgate config.`,
  }),
  notRouted: (what: string): ProxyError => ({ status: 400, code: 'model_not_routed', message: what }),
  inputNotBounded: (message: string): ProxyError => ({ status: 400, code: 'input_not_bounded', message }),
}
