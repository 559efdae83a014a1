/**
 * Prometheus metrics for the data plane. One registry per app instance so tests can build
 * several apps in one process without "metric already registered" errors.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export interface Metrics {
  readonly registry: Registry
  readonly requests: Counter<'endpoint' | 'status' | 'decision'>
  readonly requestDuration: Histogram<'endpoint' | 'stream'>
  readonly costMicros: Counter<'provider' | 'model'>
  readonly upstreamErrors: Counter<'provider' | 'status'>
  readonly reservationsPending: Gauge
  readonly reservationsExpired: Counter
  readonly usageQueueDepth: Gauge
  readonly ledgerDriftWallets: Gauge
  readonly ledgerDriftMicros: Gauge
  readonly redisRoundTrips: Gauge
}

export function createMetrics(): Metrics {
  const registry = new Registry()
  return {
    registry,
    requests: new Counter({
      name: 'tollgate_requests_total',
      help: 'Proxied calls by endpoint, HTTP status and spend decision',
      labelNames: ['endpoint', 'status', 'decision'],
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'tollgate_request_duration_seconds',
      help: 'Time from request to last byte, upstream included',
      labelNames: ['endpoint', 'stream'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    costMicros: new Counter({
      name: 'tollgate_cost_micros_total',
      help: 'Settled cost in micro-USD',
      labelNames: ['provider', 'model'],
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: 'tollgate_upstream_errors_total',
      help: 'Upstream calls that failed: HTTP status, or "network"',
      labelNames: ['provider', 'status'],
      registers: [registry],
    }),
    reservationsPending: new Gauge({
      name: 'tollgate_reservations_pending',
      help: 'Reservations not yet settled or voided (all processes)',
      registers: [registry],
    }),
    reservationsExpired: new Counter({
      name: 'tollgate_reservations_expired_total',
      help: 'Reservations settled at their reserved amount by the sweeper',
      registers: [registry],
    }),
    usageQueueDepth: new Gauge({
      name: 'tollgate_usage_queue_depth',
      help: 'Usage events waiting to be written',
      registers: [registry],
    }),
    ledgerDriftWallets: new Gauge({
      name: 'tollgate_ledger_drift_wallets',
      help: 'Wallet fields on which Redis and PostgreSQL disagreed at the last reconciliation',
      registers: [registry],
    }),
    redisRoundTrips: new Gauge({
      name: 'tollgate_redis_round_trips_total',
      help: 'Redis round trips made by the ledger since start (Redis + PostgreSQL storage only)',
      registers: [registry],
    }),
    ledgerDriftMicros: new Gauge({
      name: 'tollgate_ledger_drift_micros',
      help: 'Sum of |Redis − PostgreSQL| over drifting wallet fields at the last reconciliation, in micro-USD',
      registers: [registry],
    }),
  }
}
