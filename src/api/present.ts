/** Domain records → JSON for the admin API: USD numbers at the edge, exact micros beside them. */
import { micros, toUsd, type Micros } from '../money/index.js'
import type { LedgerEntry, Reservation, Wallet } from '../ledger/index.js'
import type { CostTicket } from '../tickets/index.js'
import type { UsageEvent } from '../usage/index.js'

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())
const usd = (m: Micros | undefined) => (m === undefined ? null : toUsd(m))

export function presentWallet(w: Wallet) {
  return {
    id: w.id,
    scope: `${w.scopeKind}:${w.scopeId}`,
    scope_kind: w.scopeKind,
    scope_id: w.scopeId,
    team_id: w.teamId ?? (w.scopeKind === 'team' ? w.scopeId : null),
    currency: w.currency,
    allocated_usd: usd(w.allocatedMicros),
    spent_usd: usd(w.spentMicros),
    reserved_usd: usd(w.reservedMicros),
    available_usd: usd(w.availableMicros),
    allocated_micros: w.allocatedMicros,
    spent_micros: w.spentMicros,
    reserved_micros: w.reservedMicros,
    available_micros: w.availableMicros,
    created_at: iso(w.createdAtMs),
  }
}

export function presentEntry(e: LedgerEntry) {
  return {
    id: e.id,
    kind: e.kind,
    amount_usd: usd(e.amountMicros),
    amount_micros: e.amountMicros,
    reservation_id: e.reservationId ?? null,
    description: e.description ?? null,
    at: iso(e.atMs),
  }
}

export function presentReservation(r: Reservation) {
  return {
    id: r.id,
    status: r.status,
    scope: r.scope ?? null,
    wallet_id: r.walletId ?? null,
    amount_usd: usd(r.amountMicros),
    amount_micros: r.amountMicros,
    settled_usd: usd(r.settledMicros),
    unbilled_usd: usd(r.unbilledMicros),
    created_at: iso(r.createdAtMs),
    expires_at: iso(r.expiresAtMs),
    resolved_at: iso(r.resolvedAtMs),
  }
}

export function presentTicket(t: CostTicket) {
  return {
    id: t.id,
    status: t.status,
    reason: t.reason,
    scope: t.scope,
    team_id: t.teamId ?? null,
    request_id: t.requestId,
    consumer: t.consumerName,
    model: t.model,
    estimate_usd: usd(t.estimateMicros),
    grant_usd: usd(t.grantMicros),
    note: t.note ?? null,
    resolved_by: t.resolvedBy ?? null,
    created_at: iso(t.createdAtMs),
    expires_at: iso(t.expiresAtMs),
    resolved_at: iso(t.resolvedAtMs),
    refused_count: t.refusedCount,
    first_seen_at: iso(t.createdAtMs),
    last_seen_at: iso(t.lastSeenAtMs),
  }
}

/**
 * One usage event as `GET /v1/usage/events` lists it: who, what, every kind of token, the cost
 * and how it was made (per-part breakdown, price source), and where the numbers came from.
 */
export function presentUsageEvent(e: UsageEvent) {
  const a = e.attribution
  const u = e.usage
  return {
    id: e.id,
    request_id: e.requestId,
    external_request_id: e.externalRequestId ?? null,
    occurred_at: new Date(e.atMs).toISOString(),
    team_id: a.teamId ?? null,
    user_id: a.userId ?? null,
    agent_id: a.agentId ?? null,
    key_name: a.keyName ?? null,
    endpoint_tag: a.endpointTag ?? null,
    prompt_version: a.promptVersion ?? null,
    environment: a.environment,
    provider: e.provider,
    model_requested: e.modelRequested,
    model_served: e.modelServed,
    endpoint: e.endpoint,
    status: e.status,
    http_status: e.httpStatus,
    is_stream: e.isStream,
    decision: e.decision,
    data_mode: e.dataMode,
    source: e.source,
    tokens: {
      input: u.inputTokens,
      cache_read: u.cacheReadTokens,
      cache_write_5m: u.cacheWriteTokens - u.cacheWrite1hTokens,
      cache_write_1h: u.cacheWrite1hTokens,
      output: u.outputTokens,
      reasoning: u.reasoningTokens,
      audio_input: u.audioInputTokens,
      audio_output: u.audioOutputTokens,
    },
    web_searches: u.webSearches ?? 0,
    file_searches: u.fileSearches ?? 0,
    web_search_kind: e.webSearchKind ?? null,
    cost_usd: toUsd(e.costMicros),
    cost_micros: e.costMicros,
    reported_cost_usd: usd(e.reportedCostMicros),
    price_source: e.priceSource,
    usage_source: e.usageSource,
    usage_note: e.usageNote ?? null,
    cost_breakdown:
      e.costBreakdown === undefined
        ? null
        : {
            tier: e.costBreakdown.tier,
            service_tier:
              e.costBreakdown.serviceTier === undefined
                ? null
                : {
                    name: e.costBreakdown.serviceTier.name,
                    price_percent: e.costBreakdown.serviceTier.pricePercent,
                    upper_bound: e.costBreakdown.serviceTier.upperBound,
                  },
            total_micros: e.costBreakdown.totalMicros,
            parts: e.costBreakdown.parts.map((p) => ({
              part: p.part,
              tokens: p.tokens,
              unit_usd_per_mtok: toUsd(micros(p.unitMicrosPerMtok)),
              unit_micros_per_mtok: p.unitMicrosPerMtok,
              cost_usd: toUsd(p.costMicros),
              cost_micros: p.costMicros,
              fallback: p.fallback,
            })),
          },
    latency_ms: e.latencyMs,
    reservation_id: e.reservationId ?? null,
    wallet_id: e.walletId ?? null,
  }
}
