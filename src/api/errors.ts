/**
 * Domain-free errors raised on purpose by the admin API; `code` is public API and listed in
 * docs/errors.md. `http-errors.ts` maps them to statuses in one table.
 */
export interface Issue {
  readonly path: string
  readonly message: string
}

export abstract class TollgateError extends Error {
  abstract readonly code: ApiErrorCode
}

/** Every code the admin API answers with; docs/errors.md lists each (a test keeps them in sync). */
export const API_ERROR_CODES = [
  'invalid_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'export_expired',
  'idempotency_key_reused',
  'payload_too_large',
  'insufficient_quota',
  'budget_cap_exceeded',
  'export_queue_full',
  'internal_error',
  'store_unavailable',
] as const
export type ApiErrorCode = (typeof API_ERROR_CODES)[number]

export class InvalidRequestError extends TollgateError {
  readonly code = 'invalid_request'
  constructor(
    message: string,
    readonly issues: readonly Issue[] = [],
  ) {
    super(message)
  }
}

export class UnauthorizedError extends TollgateError {
  readonly code = 'unauthorized'
  constructor() {
    super('Missing or unknown admin token: send it as "Authorization: Bearer TOKEN".')
  }
}

export class ForbiddenError extends TollgateError {
  readonly code = 'forbidden'
}

export class NotFoundError extends TollgateError {
  readonly code = 'not_found'
  constructor(resource: string, id: string) {
    super(`${resource} ${id} does not exist`)
  }
}

/** The same Idempotency-Key with a different request. */
export class IdempotencyKeyReusedError extends TollgateError {
  readonly code = 'idempotency_key_reused'
  constructor() {
    super('This Idempotency-Key was already used with a different request; use a new key for a new request.')
  }
}

export class ConflictError extends TollgateError {
  readonly code = 'conflict'
  constructor(
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message)
  }
}

/** An export job's file was deleted once its retention had passed (410: it will not come back). */
export class ExportExpiredError extends TollgateError {
  readonly code = 'export_expired'
  constructor(
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message)
  }
}

/** An org (or a team) already has as many export jobs waiting or running as it may. */
export class ExportQueueFullError extends TollgateError {
  readonly code = 'export_queue_full'
  constructor(
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message)
  }
}
