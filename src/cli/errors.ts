/**
 * What can go wrong in a CLI run, sorted by the exit code a script may branch on: 1 the server
 * refused (any 4xx/5xx), 2 a usage or config error found before anything was sent, 3 the gateway
 * could not be reached. Each error renders as ONE line on stderr, never with a stack trace and
 * never with a secret.
 */

export const EXIT_OK = 0
export const EXIT_REFUSED = 1
export const EXIT_USAGE = 2
export const EXIT_UNREACHABLE = 3

export abstract class CliError extends Error {
  abstract readonly exitCode: number
  /** The one line printed on stderr (without the `tollgate: ` prefix). */
  line(): string {
    return this.message
  }
}

/** Bad flags, a missing token, an unreadable or malformed file: nothing was sent. */
export class UsageError extends CliError {
  readonly exitCode = EXIT_USAGE
}

export interface ApiIssue {
  readonly path: string
  readonly message: string
}

/** The admin error envelope `{"error":{"type","code","message","issues"?,"request_id"}}`, or what we could make of another body. */
export interface ApiErrorBody {
  readonly code: string | undefined
  readonly message: string
  readonly issues: readonly ApiIssue[]
  readonly requestId: string | undefined
}

/** The gateway answered with a 4xx or 5xx. */
export class ApiError extends CliError {
  readonly exitCode = EXIT_REFUSED
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.message)
  }

  override line(): string {
    return formatApiError(this.status, this.body)
  }
}

/** No HTTP answer at all: connection refused, DNS failure, a timeout, a reset. */
export class UnreachableError extends CliError {
  readonly exitCode = EXIT_UNREACHABLE
}

/**
 * `invalid_request (HTTP 400): amount_usd: expected a positive number [request req_…]`. Issues
 * whose path the message does not already name are appended, so every failing field is shown.
 */
export function formatApiError(status: number, body: ApiErrorBody): string {
  const missing = body.issues.filter((issue) => !body.message.includes(`${issue.path}:`))
  const issues = missing.length === 0 ? '' : ` (${missing.map((i) => `${i.path}: ${i.message}`).join('; ')})`
  const request = body.requestId === undefined ? '' : ` [request ${body.requestId}]`
  const code = body.code ?? 'error'
  return oneLine(`${code} (HTTP ${status}): ${body.message}${issues}${request}`)
}

/** Reads whatever a failing response carried into an ApiErrorBody; never throws. */
export function apiErrorBodyOf(status: number, text: string): ApiErrorBody {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    const snippet = oneLine(text).slice(0, ERROR_SNIPPET_CHARS_MAX)
    return { code: undefined, message: snippet || `the gateway answered HTTP ${status} with no body`, issues: [], requestId: undefined }
  }
  const envelope = isRecord(parsed) && isRecord(parsed.error) ? parsed.error : undefined
  if (envelope !== undefined) {
    return {
      code: typeof envelope.code === 'string' ? envelope.code : undefined,
      message: typeof envelope.message === 'string' ? envelope.message : `HTTP ${status}`,
      issues: Array.isArray(envelope.issues) ? envelope.issues.filter(isIssue) : [],
      requestId: typeof envelope.request_id === 'string' ? envelope.request_id : undefined,
    }
  }
  // Fastify's own answers (an unknown route: {"message":"Route GET:/x not found","error":"Not Found"}).
  const message = isRecord(parsed) && typeof parsed.message === 'string' ? parsed.message : `HTTP ${status}`
  const unknownRoute = status === 404 && /^Route \S+ not found$/.test(message)
  return {
    code: status === 404 ? 'not_found' : undefined,
    message: unknownRoute ? `${message}: this gateway does not serve that route (is it older than this CLI?)` : message,
    issues: [],
    requestId: undefined,
  }
}

/** A long HTML or text error page is cut to this many characters in the one-line message. */
const ERROR_SNIPPET_CHARS_MAX = 200

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim()
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isIssue(value: unknown): value is ApiIssue {
  return isRecord(value) && typeof value.path === 'string' && typeof value.message === 'string'
}
