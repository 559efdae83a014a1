/**
 * The ingestion payload (`POST /v1/events`): one telemetry event, camelCase, as SDKs and log
 * shippers send it. Each event is checked on its own, so one bad event in a batch of 1,000 is
 * rejected alone, with the field that is wrong. Unknown fields are refused (a typo such as
 * `inputTokes` must not silently record zero tokens).
 */
import { z } from 'zod'
import { AMOUNT_MICROS_MAX, TOKENS_MAX, parseUsd, type Micros } from '../money/index.js'
import { controlCharOf, printable } from '../lib/text.js'

/** Events per request: one object, or `{"events": [...]}` of at most this many. */
export const EVENTS_PER_REQUEST_MAX = 1_000

/** Telemetry statuses a caller may report, and the usage status each is stored as. */
export const INGEST_STATUSES = { success: 'ok', error: 'error', cancelled: 'cut' } as const
export type IngestStatus = keyof typeof INGEST_STATUSES

/** Instants an event may claim: not before 2000, not more than five minutes ahead of the gateway's clock. */
const OCCURRED_AT_MIN_MS = Date.UTC(2000, 0, 1)
export const OCCURRED_AT_SKEW_MS = 5 * 60_000

const TOKENS_MESSAGE = `expected a whole number of tokens from 0 to ${TOKENS_MAX.toLocaleString('en-US')}`
const tokens = z.number({ error: TOKENS_MESSAGE }).int({ error: TOKENS_MESSAGE }).min(0, { error: TOKENS_MESSAGE }).max(TOKENS_MAX, { error: TOKENS_MESSAGE })

/** Server-side searches one call may report: far above any real call's (the proxy reserves 20 for a tool with no limit). */
export const SEARCHES_PER_EVENT_MAX = 10_000
const SEARCHES_MESSAGE = `expected a whole number of searches from 0 to ${SEARCHES_PER_EVENT_MAX.toLocaleString('en-US')}`
const searches = z
  .number({ error: SEARCHES_MESSAGE })
  .int({ error: SEARCHES_MESSAGE })
  .min(0, { error: SEARCHES_MESSAGE })
  .max(SEARCHES_PER_EVENT_MAX, { error: SEARCHES_MESSAGE })

/**
 * How an event's web searches were billed, when not at the model's own web search fee: OpenAI's
 * older `web_search_preview` tool, or a chat search model's `web_search_options` at a context
 * size. `web_search` says the model's own fee outright (what an event that says nothing gets).
 */
export const INGEST_WEB_SEARCH_KINDS = ['web_search', 'web_search_preview', 'chat:low', 'chat:medium', 'chat:high'] as const
export type IngestWebSearchKind = (typeof INGEST_WEB_SEARCH_KINDS)[number]

/** Field lengths, shared by the schema and the fast path (which must never accept more). */
const ID_CHARS_MAX = 200
const NAME_CHARS_MAX = 100
const TAG_CHARS_MAX = 256
const LATENCY_MS_MAX = 86_400_000

/** Ids, names and tags: one line of printable text (no control characters: they end up in tables, CSV and notifications). */
function text(max: number) {
  return printable(
    z
      .string({ error: `expected a string of 1 to ${max} characters` })
      .trim()
      .min(1, { error: 'must not be empty' })
      .max(max, { error: `at most ${max} characters` }),
  )
}

/** `null` is read as "not given": telemetry libraries often send every key. */
const optional = <S extends z.ZodType>(schema: S) => schema.nullish().transform((v) => v ?? undefined)

/** An occurredAt (a string of at most 40 characters, or a number) as epoch ms, or undefined when it is not one. */
function occurredAtMs(value: string | number): number | undefined {
  const ms = typeof value === 'number' ? value : /^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:?\d{2})$/.test(value) ? Date.parse(value) : Number.NaN
  return Number.isSafeInteger(ms) && ms >= OCCURRED_AT_MIN_MS ? ms : undefined
}

/** A costUsd as micros, or undefined when it is not one. */
function costUsdMicros(value: unknown): Micros | undefined {
  const parsed = typeof value === 'number' || typeof value === 'string' ? parseUsd(value) : undefined
  return parsed === undefined || parsed > AMOUNT_MICROS_MAX ? undefined : parsed
}

/** ISO-8601 with a time zone, or epoch milliseconds; checked against the clock later (`occurredAtProblem`). */
const occurredAt = z.union([z.string().max(40), z.number()], { error: 'expected an ISO-8601 instant or epoch milliseconds' }).transform((value, ctx) => {
  const ms = occurredAtMs(value)
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected an ISO-8601 instant with a time zone (2026-12-01T10:00:00Z) or epoch milliseconds after 2000, got ${JSON.stringify(value)}`,
    })
    return z.NEVER
  }
  return ms
})

/** A reported cost: kept beside the catalogue price, never used instead of it. */
const costUsd = z.unknown().transform((value, ctx): Micros => {
  const parsed = costUsdMicros(value)
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a non-negative number of USD with at most 6 decimals, got ${JSON.stringify(value ?? null)}` })
    return z.NEVER
  }
  return parsed
})

export const EventPayload = z
  .strictObject({
    externalRequestId: text(ID_CHARS_MAX),
    provider: text(NAME_CHARS_MAX),
    model: text(ID_CHARS_MAX),
    endpointTag: optional(text(TAG_CHARS_MAX)),
    promptVersion: optional(text(TAG_CHARS_MAX)),
    userId: optional(text(TAG_CHARS_MAX)),
    agentId: optional(text(TAG_CHARS_MAX)),
    inputTokens: tokens,
    outputTokens: tokens,
    /** Part of `inputTokens` (OpenAI's convention): read from the cache. */
    cachedInputTokens: optional(tokens),
    /** Part of `inputTokens`: written to the cache (all of them, 5-minute and 1-hour). */
    cacheWriteTokens: optional(tokens),
    /** Part of `cacheWriteTokens`: written with a 1-hour lifetime. */
    cacheWrite1hTokens: optional(tokens),
    /** Part of `outputTokens`: hidden reasoning. */
    reasoningTokens: optional(tokens),
    /** Server-side web searches the provider billed, each at its per-call fee on top of the tokens. */
    webSearches: optional(searches),
    /** OpenAI file search calls the provider billed, each at its per-call fee. */
    fileSearches: optional(searches),
    /** Which fee `webSearches` paid (INGEST_WEB_SEARCH_KINDS); checked against the provider and model by the ingestor. */
    webSearchKind: optional(z.enum(INGEST_WEB_SEARCH_KINDS, { error: `expected ${INGEST_WEB_SEARCH_KINDS.join(' | ')}` })),
    latencyMs: optional(
      z
        .number({ error: `expected milliseconds (a whole number from 0 to ${LATENCY_MS_MAX.toLocaleString('en-US')})` })
        .int()
        .min(0)
        .max(LATENCY_MS_MAX),
    ),
    status: optional(
      z.enum(Object.keys(INGEST_STATUSES) as [IngestStatus, ...IngestStatus[]], { error: `expected ${Object.keys(INGEST_STATUSES).join(' | ')}` }),
    ),
    dataMode: optional(z.enum(['real', 'demo'], { error: 'expected real | demo' })),
    environment: optional(text(NAME_CHARS_MAX)),
    occurredAt: optional(occurredAt),
    costUsd: optional(costUsd),
  })
  .superRefine((e, ctx) => {
    // The same accounting as every usage event: parts are carved out of their totals.
    if ((e.cachedInputTokens ?? 0) + (e.cacheWriteTokens ?? 0) > e.inputTokens) {
      ctx.addIssue({
        code: 'custom',
        path: [e.cachedInputTokens ? 'cachedInputTokens' : 'cacheWriteTokens'],
        message: 'cachedInputTokens + cacheWriteTokens are part of inputTokens and cannot exceed it',
      })
    }
    if ((e.cacheWrite1hTokens ?? 0) > (e.cacheWriteTokens ?? 0)) {
      ctx.addIssue({ code: 'custom', path: ['cacheWrite1hTokens'], message: 'cacheWrite1hTokens are part of cacheWriteTokens and cannot exceed it' })
    }
    if ((e.reasoningTokens ?? 0) > e.outputTokens) {
      ctx.addIssue({ code: 'custom', path: ['reasoningTokens'], message: 'reasoningTokens are part of outputTokens and cannot exceed it' })
    }
  })
export type EventPayload = z.infer<typeof EventPayload>

/** Every code `POST /v1/events` answers with, per event or for the request; docs/errors.md lists each. */
export const INGEST_ERROR_CODES = [
  'invalid_request',
  'model_not_priced',
  'unauthorized',
  'forbidden',
  'payload_too_large',
  'store_unavailable',
  'internal_error',
] as const

/** Why one event was not stored: a code a client can branch on, and the field to fix. */
export interface EventProblem {
  readonly code: 'invalid_request' | 'model_not_priced'
  readonly message: string
  readonly field: string | undefined
}

/** The event, or the first thing wrong with it (by field). */
export function parseEvent(input: unknown): EventPayload | EventProblem {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { code: 'invalid_request', message: 'an event must be a JSON object', field: undefined }
  }
  return fastEvent(input as Record<string, unknown>) ?? parseWithZod(input)
}

/** The schema's verdict and its message for the first issue: the source of truth, and the only path for a bad event (exported for the test that the fast path agrees). */
export function parseWithZod(input: object): EventPayload | EventProblem {
  const result = EventPayload.safeParse(input)
  if (result.success) return result.data
  const issue = result.error.issues[0]!
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!
    return { code: 'invalid_request', message: `unknown field "${key}"; an event takes ${Object.keys(EventPayload.shape).join(', ')}`, field: key }
  }
  const field = issue.path.length > 0 ? issue.path.join('.') : undefined
  const missing = issue.code === 'invalid_type' && issue.path.length === 1 && !Object.hasOwn(input, issue.path[0] as PropertyKey)
  const message = missing ? 'required' : issue.message
  return { code: 'invalid_request', message: field === undefined ? message : `${field}: ${message}`, field }
}

// ---------------------------------------------------------------------------------------------
// The fast path: the same checks as EventPayload, by hand

/**
 * EventPayload's parse of an event that is valid, checked by hand (zod cost ~13% of a batch's CPU);
 * undefined for anything it does not accept, which then goes to zod for the verdict and the
 * message. So it may refuse more than the schema (that only costs time) but must never accept
 * what the schema refuses, nor return a different value: payload.test.ts pins both on random input.
 */
function fastEvent(input: Record<string, unknown>): EventPayload | undefined {
  for (const key in input) if (!EVENT_KEYS.has(key)) return undefined
  const externalRequestId = fastText(input.externalRequestId, ID_CHARS_MAX)
  const provider = fastText(input.provider, NAME_CHARS_MAX)
  const model = fastText(input.model, ID_CHARS_MAX)
  const inputTokens = fastTokens(input.inputTokens)
  const outputTokens = fastTokens(input.outputTokens)
  if (externalRequestId === undefined || provider === undefined || model === undefined || inputTokens === undefined || outputTokens === undefined)
    return undefined
  const endpointTag = fastOptional(input.endpointTag, fastText, TAG_CHARS_MAX)
  const promptVersion = fastOptional(input.promptVersion, fastText, TAG_CHARS_MAX)
  const userId = fastOptional(input.userId, fastText, TAG_CHARS_MAX)
  const agentId = fastOptional(input.agentId, fastText, TAG_CHARS_MAX)
  const environment = fastOptional(input.environment, fastText, NAME_CHARS_MAX)
  const cachedInputTokens = fastOptional(input.cachedInputTokens, fastTokens)
  const cacheWriteTokens = fastOptional(input.cacheWriteTokens, fastTokens)
  const cacheWrite1hTokens = fastOptional(input.cacheWrite1hTokens, fastTokens)
  const reasoningTokens = fastOptional(input.reasoningTokens, fastTokens)
  const webSearches = fastOptional(input.webSearches, fastWhole, SEARCHES_PER_EVENT_MAX)
  const fileSearches = fastOptional(input.fileSearches, fastWhole, SEARCHES_PER_EVENT_MAX)
  const webSearchKind = fastOptional(input.webSearchKind, fastOneOf, INGEST_WEB_SEARCH_KINDS)
  const latencyMs = fastOptional(input.latencyMs, fastWhole, LATENCY_MS_MAX)
  const status = fastOptional(input.status, fastOneOf, INGEST_STATUS_NAMES)
  const dataMode = fastOptional(input.dataMode, fastOneOf, DATA_MODES)
  const occurred = fastOptional(input.occurredAt, fastOccurredAt)
  const cost = fastOptional(input.costUsd, costUsdMicros)
  if (
    endpointTag === INVALID ||
    promptVersion === INVALID ||
    userId === INVALID ||
    agentId === INVALID ||
    environment === INVALID ||
    cachedInputTokens === INVALID ||
    cacheWriteTokens === INVALID ||
    cacheWrite1hTokens === INVALID ||
    reasoningTokens === INVALID ||
    webSearches === INVALID ||
    fileSearches === INVALID ||
    webSearchKind === INVALID ||
    latencyMs === INVALID ||
    status === INVALID ||
    dataMode === INVALID ||
    occurred === INVALID ||
    cost === INVALID
  ) {
    return undefined
  }
  // The schema's superRefine: parts cannot exceed their totals.
  if ((cachedInputTokens ?? 0) + (cacheWriteTokens ?? 0) > inputTokens) return undefined
  if ((cacheWrite1hTokens ?? 0) > (cacheWriteTokens ?? 0)) return undefined
  if ((reasoningTokens ?? 0) > outputTokens) return undefined
  return {
    externalRequestId,
    provider,
    model,
    endpointTag,
    promptVersion,
    userId,
    agentId,
    inputTokens,
    outputTokens,
    cachedInputTokens,
    cacheWriteTokens,
    cacheWrite1hTokens,
    reasoningTokens,
    webSearches,
    fileSearches,
    webSearchKind: webSearchKind as IngestWebSearchKind | undefined,
    latencyMs,
    status: status as IngestStatus | undefined,
    dataMode: dataMode as 'real' | 'demo' | undefined,
    environment,
    occurredAt: occurred,
    costUsd: cost,
  }
}

const EVENT_KEYS: ReadonlySet<string> = new Set(Object.keys(EventPayload.shape))
const INGEST_STATUS_NAMES: readonly string[] = Object.keys(INGEST_STATUSES)
const DATA_MODES: readonly string[] = ['real', 'demo']
/** A present optional field the fast path does not accept (distinct from undefined: absent). */
const INVALID = Symbol('invalid')

/** `optional(schema)`: null and absent are undefined; anything else must pass `check`. */
function fastOptional<T, A>(value: unknown, check: (value: unknown, arg: A) => T | undefined, arg?: A): T | undefined | typeof INVALID {
  if (value === undefined || value === null) return undefined
  return check(value, arg as A) ?? INVALID
}

/** `text(max)`: a string, trimmed, of 1 to `max` characters, without control characters. */
function fastText(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined
  const trimmed = value.trim()
  return trimmed.length >= 1 && trimmed.length <= max && controlCharOf(trimmed) === undefined ? trimmed : undefined
}

function fastWhole(value: unknown, max: number): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max ? value : undefined
}

function fastTokens(value: unknown): number | undefined {
  return fastWhole(value, TOKENS_MAX)
}

function fastOneOf(value: unknown, names: readonly string[]): string | undefined {
  return typeof value === 'string' && names.includes(value) ? value : undefined
}

function fastOccurredAt(value: unknown): number | undefined {
  if (typeof value === 'number') return occurredAtMs(value)
  return typeof value === 'string' && value.length <= 40 ? occurredAtMs(value) : undefined
}

export function isProblem(value: EventPayload | EventProblem): value is EventProblem {
  return 'code' in value
}
