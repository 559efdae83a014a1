/**
 * Prometheus metrics for the data plane. One registry per app instance so tests can build
 * several apps in one process without "metric already registered" errors.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface Metrics {
  readonly registry: Registry
  readonly requests: Counter<'endpoint' | 'status' | 'decision'>
  readonly requestDuration: Histogram<'endpoint' | 'stream'>
  readonly costMicros: Counter<'provider' | 'model'>
  readonly upstreamErrors: Counter<'provider' | 'status'>
  readonly reservationsPending: Gauge
  readonly reservationsExpired: Counter
  readonly sweepFailures: Counter
  /** Calls whose cost could not be committed (the store failed); their reservations expire at the worst case. */
  readonly commitFailures: Counter
  /** Events sent to POST /v1/events, by what became of them. */
  readonly ingestedEvents: Counter<'result'>
  readonly ledgerDriftWallets: Gauge
  readonly ledgerDriftMicros: Gauge
}

/** Upstream pool state per target, read on scrape (proxy/upstream.ts). */
export interface UpstreamPoolGauges {
  stats(): ReadonlyArray<{ target: string; queued: number; running: number; connected: number }>
}

/**
 * `tollgate_upstream_queued_requests{target}`: calls waiting inside the gateway for a free
 * connection to their target (its `connections_max` is reached); with the running calls and open
 * connections, so a limit set too low shows before latency does.
 */
export function registerUpstreamPoolGauges(metrics: Metrics, pools: UpstreamPoolGauges): void {
  const gauge = (name: string, help: string, pick: (s: { queued: number; running: number; connected: number }) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['target'],
      registers: [metrics.registry],
      collect() {
        this.reset()
        for (const s of pools.stats()) this.set({ target: s.target }, pick(s))
      },
    })
  }
  gauge('tollgate_upstream_queued_requests', "Calls waiting for a free upstream connection (the target's connections_max is reached)", (s) => s.queued)
  gauge('tollgate_upstream_running_requests', 'Calls on an upstream connection, being sent or answered', (s) => s.running)
  gauge('tollgate_upstream_connections', 'Open connections to the upstream', (s) => s.connected)
}

/** Counters kept by a store (Redis commands and round trips), exposed as Prometheus counters on scrape. */
export interface StoreCounters {
  redisRoundTrips(): number
  redisCommands(): number
  /** Journal entries in Redis not yet applied to PostgreSQL. */
  journalBacklog(): Promise<number>
}

/** Adds the store's own counters to the registry (Redis + PostgreSQL storage only). */
export function registerStoreCounters(metrics: Metrics, counters: StoreCounters): void {
  const registry = metrics.registry
  new Counter({
    name: 'tollgate_redis_round_trips_total',
    help: 'Redis round trips awaited by the ledger since start (one per script or pipeline)',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(counters.redisRoundTrips())
    },
  })
  new Counter({
    name: 'tollgate_redis_commands_total',
    help: 'Redis commands sent by the ledger since start, awaited or not (a pipeline counts each of its commands)',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(counters.redisCommands())
    },
  })
  new Gauge({
    name: 'tollgate_journal_backlog',
    help: 'Ledger and usage journal entries in Redis not yet applied to PostgreSQL',
    registers: [registry],
    async collect() {
      this.set(await counters.journalBacklog().catch(() => -1))
    },
  })
}

/**
 * The process's own metrics (CPU, memory, heap, garbage collection, event-loop lag, handles): one
 * registry per process, since they describe the process, not an app instance. Made with the first
 * app, so garbage collection is counted from the start. What they add to a call (an observer of
 * collections, a sampled event-loop delay) is within the noise: `npm run bench -- --ab` with and
 * without them measured 1.003× CPU per enforced call.
 */
let processRegistry: Registry | undefined

function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/** The Prometheus text of `/metrics`: the gateway's metrics, then the process's. */
export async function metricsText(metrics: Metrics): Promise<string> {
  const [own, ofProcess] = await Promise.all([metrics.registry.metrics(), processMetrics().metrics()])
  return `${own}\n${ofProcess}`
}

export function createMetrics(): Metrics {
  processMetrics()
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
    sweepFailures: new Counter({
      name: 'tollgate_expiry_sweep_failures_total',
      help: 'Expiry sweeps that failed (the store could not be read or written); the next sweep retries',
      registers: [registry],
    }),
    commitFailures: new Counter({
      name: 'tollgate_commit_failures_total',
      help: 'Calls whose cost and usage event could not be committed; their reservations expire at the reserved amount',
      registers: [registry],
    }),
    ingestedEvents: new Counter({
      name: 'tollgate_ingested_events_total',
      help: 'Events sent to POST /v1/events, by result: created, duplicate (already stored) or rejected',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    ledgerDriftWallets: new Gauge({
      name: 'tollgate_ledger_drift_wallets',
      help: 'Wallet fields on which Redis and PostgreSQL disagreed at the last reconciliation',
      registers: [registry],
    }),
    ledgerDriftMicros: new Gauge({
      name: 'tollgate_ledger_drift_micros',
      help: 'Sum of |Redis − PostgreSQL| over drifting wallet fields at the last reconciliation, in micro-USD',
      registers: [registry],
    }),
  }
}
