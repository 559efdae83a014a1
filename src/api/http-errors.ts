/**
 * The one table from errors to HTTP (OpenMeter's driver/errors.go), installed as the admin API's
 * error handler. Every admin response error has one envelope:
 * `{"error": {"type", "code", "message", "issues"?, "request_id"}}`. 5xx messages are never echoed.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { newId } from '../lib/ids.js'
import type { Logger } from '../observability/logger.js'
import { InvalidRequestError, TollgateError, type ApiErrorCode, ConflictError, ExportExpiredError, ExportQueueFullError } from './errors.js'
import { BudgetError } from '../budgets/index.js'
import { AllocationRefused } from '../ledger/index.js'

export const STATUS_OF: Record<ApiErrorCode, number> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  export_expired: 410,
  payload_too_large: 413,
  idempotency_key_reused: 422,
  insufficient_quota: 429,
  budget_cap_exceeded: 429,
  export_queue_full: 429,
  internal_error: 500,
  store_unavailable: 503,
}

const TYPE_OF: Record<ApiErrorCode, string> = {
  invalid_request: 'invalid_request_error',
  unauthorized: 'authentication_error',
  forbidden: 'permission_error',
  not_found: 'not_found_error',
  conflict: 'conflict_error',
  export_expired: 'not_found_error',
  payload_too_large: 'invalid_request_error',
  idempotency_key_reused: 'invalid_request_error',
  insufficient_quota: 'insufficient_quota',
  budget_cap_exceeded: 'budget_error',
  export_queue_full: 'rate_limit_error',
  internal_error: 'api_error',
  store_unavailable: 'api_error',
}

export function errorEnvelope(code: ApiErrorCode, message: string, requestId: string, extra: Record<string, unknown> = {}) {
  return { error: { type: TYPE_OF[code], code, message, ...extra, request_id: requestId } }
}

export function adminErrorHandler(logger: Logger) {
  return (error: FastifyError | Error, _request: FastifyRequest, reply: FastifyReply) => {
    const requestId = newId('req')
    if (error instanceof TollgateError) {
      const extra: Record<string, unknown> = {}
      if (error instanceof InvalidRequestError && error.issues.length > 0) extra.issues = error.issues
      if (error instanceof ConflictError || error instanceof ExportExpiredError || error instanceof ExportQueueFullError) Object.assign(extra, error.detail)
      return reply.code(STATUS_OF[error.code]).send(errorEnvelope(error.code, error.message, requestId, extra))
    }
    if (error instanceof BudgetError) {
      const issues = error.field === undefined ? {} : { issues: [{ path: error.field, message: error.message }] }
      return reply.code(STATUS_OF[error.code]).send(errorEnvelope(error.code, error.message, requestId, issues))
    }
    if (error instanceof AllocationRefused) {
      const code = error.reason === 'amount_limit' ? 'invalid_request' : 'conflict'
      return reply
        .code(STATUS_OF[code])
        .send(
          errorEnvelope(code, error.message, requestId, { issues: [{ path: error.reason === 'amount_limit' ? 'amount' : 'team_id', message: error.message }] }),
        )
    }
    const fastifyError = error as FastifyError
    if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send(errorEnvelope('payload_too_large', 'The request body is too large.', requestId))
    }
    if (fastifyError.statusCode !== undefined && fastifyError.statusCode < 500) {
      // Fastify's own 4xx (bad JSON, wrong content type): the message says what was wrong.
      return reply.code(fastifyError.statusCode).send(errorEnvelope('invalid_request', fastifyError.message, requestId))
    }
    logger.error({ err: error, requestId }, 'api: unhandled error')
    return reply.code(500).send(errorEnvelope('internal_error', `Internal error (request ${requestId}).`, requestId))
  }
}
