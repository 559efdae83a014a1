/**
 * `cost_tickets` row → CostTicket, shared by the PostgreSQL and SQLite TicketStores. Both schemas
 * declare the same snake_case columns (src/store/postgres/schema.ts, src/store/sqlite/ticket-store.ts);
 * PostgreSQL's BIGINT columns arrive as JS numbers (the pool's type parser, src/store/postgres/db.ts)
 * and SQLite's INTEGER columns are numbers already, so one mapper reads both.
 */
import { micros } from '../../money/index.js'
import type { CostTicket, TicketStatus } from '../../tickets/types.js'

export type TicketRow = Record<string, string | number | null>

export function ticketOf(row: TicketRow): CostTicket {
  return {
    id: row.id as string,
    orgId: row.org_id as string,
    scope: row.scope as string,
    teamId: (row.team_id as string | null) ?? undefined,
    requestId: row.request_id as string,
    consumerName: row.consumer_name as string,
    model: row.model as string,
    estimateMicros: micros(row.estimate_micros as number),
    reason: row.reason as CostTicket['reason'],
    status: row.status as TicketStatus,
    createdAtMs: row.created_at_ms as number,
    expiresAtMs: row.expires_at_ms as number,
    resolvedAtMs: (row.resolved_at_ms as number | null) ?? undefined,
    resolvedBy: (row.resolved_by as string | null) ?? undefined,
    grantMicros: row.grant_micros === null ? undefined : micros(row.grant_micros as number),
    note: (row.note as string | null) ?? undefined,
    refusedCount: (row.refused_count as number | null) ?? 1,
    lastSeenAtMs: (row.last_seen_at_ms as number | null) ?? (row.created_at_ms as number),
    digestCount: (row.digest_count as number | null) ?? 1,
  }
}
