/**
 * `usage_events` row → UsageEvent, shared by the SQLite and PostgreSQL usage stores (both schemas
 * declare the same columns; PostgreSQL's BIGINTs arrive as numbers through the pool's parser).
 * The event list pages by a cursor over (at_ms, id), newest first.
 */
import { micros } from '../../money/index.js'
import { webSearchKindFrom, type CostBreakdown } from '../../pricing/index.js'
import type { UsageEvent } from '../../usage/types.js'

export type UsageEventRow = Record<string, string | number | null>

const text = (value: string | number | null | undefined): string | undefined => (value === null || value === undefined ? undefined : String(value))

export function usageEventOf(row: UsageEventRow): UsageEvent {
  const n = (name: string) => Number(row[name] ?? 0)
  const webSearchKind = webSearchKindFrom(row.web_search_kind)
  return {
    id: row.id as string,
    requestId: row.request_id as string,
    atMs: n('at_ms'),
    attribution: {
      orgId: row.org_id as string,
      teamId: text(row.team_id),
      userId: text(row.user_id),
      // Unknown (NULL) for events stored before it was: read as false.
      userFromKey: n('user_from_key') === 1,
      agentId: text(row.agent_id),
      keyName: text(row.key_name),
      endpointTag: text(row.endpoint_tag),
      promptVersion: text(row.prompt_version),
      environment: row.environment as string,
    },
    provider: row.provider as string,
    targetId: text(row.target_id),
    modelRequested: row.model_requested as string,
    modelServed: row.model_served as string,
    endpoint: row.endpoint as UsageEvent['endpoint'],
    usage: {
      inputTokens: n('input_tokens'),
      cacheReadTokens: n('cache_read_tokens'),
      cacheWriteTokens: n('cache_write_tokens'),
      cacheWrite1hTokens: n('cache_write_1h_tokens'),
      outputTokens: n('output_tokens'),
      reasoningTokens: n('reasoning_tokens'),
      audioInputTokens: n('audio_input_tokens'),
      audioOutputTokens: n('audio_output_tokens'),
      ...(n('web_searches') > 0 && { webSearches: n('web_searches') }),
      ...(n('file_searches') > 0 && { fileSearches: n('file_searches') }),
    },
    ...(webSearchKind !== undefined && { webSearchKind }),
    usageSource: row.usage_source as UsageEvent['usageSource'],
    usageNote: text(row.usage_note),
    costBreakdown:
      row.cost_breakdown_json === null || row.cost_breakdown_json === undefined ? undefined : (JSON.parse(String(row.cost_breakdown_json)) as CostBreakdown),
    costMicros: micros(n('cost_micros')),
    priceSource: row.price_source as string,
    latencyMs: n('latency_ms'),
    status: row.status as UsageEvent['status'],
    httpStatus: n('http_status'),
    isStream: n('is_stream') === 1,
    decision: row.decision as UsageEvent['decision'],
    reservationId: text(row.reservation_id),
    walletId: text(row.wallet_id),
    dataMode: row.data_mode as UsageEvent['dataMode'],
    source: row.source as UsageEvent['source'],
    externalRequestId: text(row.external_request_id),
    reportedCostMicros: row.reported_cost_micros === null || row.reported_cost_micros === undefined ? undefined : micros(Number(row.reported_cost_micros)),
  }
}

/** An opaque page cursor: the last event's (at_ms, id). */
export function encodeEventCursor(event: Pick<UsageEvent, 'atMs' | 'id'>): string {
  return Buffer.from(`${event.atMs}:${event.id}`).toString('base64url')
}

export function decodeEventCursor(cursor: string): { atMs: number; id: string } | undefined {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const colon = text.indexOf(':')
  const atMs = Number(text.slice(0, colon))
  const id = text.slice(colon + 1)
  return colon > 0 && Number.isSafeInteger(atMs) && /^[a-z]+_[0-9a-z]+$/.test(id) ? { atMs, id } : undefined
}

/** The filter columns of an event list query, by query field. */
export const EVENT_FILTER_COLUMN = {
  teamId: 'team_id',
  userId: 'user_id',
  model: 'model_served',
  endpointTag: 'endpoint_tag',
  environment: 'environment',
  dataMode: 'data_mode',
  usageSource: 'usage_source',
  source: 'source',
} as const
