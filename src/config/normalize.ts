/**
 * Validated YAML shape → `Config`: applies the defaults from `defaults.ts`, resolves secrets,
 * converts money to Micros once, and checks what a schema cannot see (unique ids, references
 * between sections, time zones). Collects every issue and throws one `ConfigError` at the end.
 */
import { Context, sortIssues, type LoadOptions } from './context.js'
import { DEFAULTS } from './defaults.js'
import { ConfigError } from './errors.js'
import { deepFreeze } from './freeze.js'
import { normalizeBudgets, normalizeCostTracking, normalizeEscalationChannels } from './normalize-budgets.js'
import { normalizeConsumerGroups } from './normalize-consumers.js'
import { normalizeChannels } from './normalize-notifications.js'
import { normalizeModels, normalizeTargets } from './normalize-providers.js'
import { configFileSchema, type ConfigFile } from './schema.js'
import { messageFor, toConfigIssues } from './issues.js'
import type { Config, ExportSettings, NotificationDelivery, ProviderTarget, ReservationSettings, ServerSettings, StorageSettings } from './types.js'

/** Validates a parsed YAML document (plain data) and returns the deep-frozen Config. */
export function configFromData(data: unknown, source: string, options: LoadOptions = {}): Config {
  const sections = typeof data === 'object' && data !== null ? Object.keys(data) : []
  const parsed = configFileSchema.safeParse(data, { error: messageFor })
  // Semantic checks need a well-shaped file, so they run only once the shape is right.
  if (!parsed.success) throw new ConfigError(source, sortIssues(toConfigIssues(parsed.error.issues), sections))
  const ctx = new Context(options)
  const config = normalize(parsed.data, source, ctx)
  if (ctx.issues.length > 0) throw new ConfigError(source, sortIssues(ctx.issues, sections))
  return deepFreeze(config)
}

function normalize(file: ConfigFile, source: string, ctx: Context): Config {
  const targets = normalizeTargets(file.providers?.targets, ctx)
  const notificationChannels = normalizeChannels(file.notifications?.channels, ctx)
  const reservations = normalizeReservations(file.reservations, targets, ctx)
  const endpointTiers = { ...(file.endpoint_tiers ?? {}) }
  return {
    source,
    server: normalizeServer(file.server, ctx),
    storage: normalizeStorage(file.storage, ctx),
    targets,
    consumerGroups: normalizeConsumerGroups(file.consumer_groups, ctx),
    costTracking: normalizeCostTracking(file.cost_tracking, ctx),
    models: normalizeModels(file.models, targets, ctx),
    budgets: normalizeBudgets(
      file.budgets,
      notificationChannels.map((c) => c.id),
      endpointTiers,
      ctx,
    ),
    notificationChannels,
    notificationDelivery: normalizeDelivery(file.notifications?.delivery, ctx),
    reservations,
    endpointTiers,
    escalationChannels: normalizeEscalationChannels(
      file.notifications?.escalation_channels,
      notificationChannels.map((c) => c.id),
      ctx,
    ),
    exports: normalizeExports(file.exports, ctx),
  }
}

function normalizeExports(input: ConfigFile['exports'], ctx: Context): ExportSettings {
  const defaults = DEFAULTS.exports
  const jobsPendingMax = input?.jobs_pending_max ?? defaults.jobsPendingMax
  // The team's default follows a smaller org limit; an explicit one above it could never apply.
  const teamJobsPendingMax = input?.team_jobs_pending_max ?? Math.min(defaults.teamJobsPendingMax, jobsPendingMax)
  if (teamJobsPendingMax > jobsPendingMax) {
    ctx.report('exports.team_jobs_pending_max', `must not be above exports.jobs_pending_max (${jobsPendingMax}), got ${teamJobsPendingMax}`)
  }
  return {
    dir: input?.dir,
    leaseMs: input?.lease_ms ?? defaults.leaseMs,
    retentionHours: input?.retention_hours ?? defaults.retentionHours,
    jobsPendingMax,
    teamJobsPendingMax,
    teamFilesKeptMax: input?.team_files_kept_max ?? defaults.teamFilesKeptMax,
    teamBytesKeptMax: input?.team_bytes_kept_max ?? defaults.teamBytesKeptMax,
    diskFreeMinBytes: input?.disk_free_min_bytes ?? defaults.diskFreeMinBytes,
  }
}

function normalizeDelivery(input: NonNullable<ConfigFile['notifications']>['delivery'], ctx: Context): NotificationDelivery {
  const defaults = DEFAULTS.notificationDelivery
  const delivery = {
    attemptsMax: input?.attempts_max ?? defaults.attemptsMax,
    backoffBaseMs: input?.backoff_base_ms ?? defaults.backoffBaseMs,
    backoffCapMs: input?.backoff_cap_ms ?? Math.max(defaults.backoffCapMs, input?.backoff_base_ms ?? 0),
    pollIntervalMs: input?.poll_interval_ms ?? defaults.pollIntervalMs,
  }
  if (delivery.backoffCapMs < delivery.backoffBaseMs) {
    ctx.report('notifications.delivery.backoff_cap_ms', `must not be below backoff_base_ms (${delivery.backoffBaseMs}), got ${delivery.backoffCapMs}`)
  }
  return delivery
}

function normalizeServer(input: ConfigFile['server'], ctx: Context): ServerSettings {
  const tokenRef = input?.metrics_token_ref
  let metrics: ServerSettings['metrics'] = { kind: 'open' }
  if (tokenRef !== undefined) {
    const path = 'server.metrics_token_ref.env'
    const token = ctx.resolveSecret(tokenRef.env, path)
    // A scrape token sits in Prometheus's config and in every scrape: long enough not to be guessed.
    if (token !== undefined && token.length < METRICS_TOKEN_CHARS_MIN) {
      ctx.report(path, `the metrics token must be at least ${METRICS_TOKEN_CHARS_MIN} characters (it has ${token.length})`)
    }
    metrics = { kind: 'token', token }
  }
  return {
    host: input?.host ?? DEFAULTS.server.host,
    port: input?.port ?? DEFAULTS.server.port,
    bodyLimitBytes: input?.body_limit_bytes ?? DEFAULTS.server.bodyLimitBytes,
    listenBacklog: input?.listen_backlog ?? DEFAULTS.server.listenBacklog,
    metrics,
  }
}

const METRICS_TOKEN_CHARS_MIN = 16

/** `sqlite: PATH` alone, or `postgres: URL` with `redis: URL` (several gateway processes). */
function normalizeStorage(input: ConfigFile['storage'], ctx: Context): StorageSettings {
  const fallback: StorageSettings = { kind: 'sqlite', path: DEFAULTS.storage.sqlitePath }
  if (input === undefined) return fallback
  const { sqlite, postgres, redis } = input
  if (sqlite !== undefined) {
    if (postgres !== undefined || redis !== undefined) {
      ctx.report('storage', 'use either sqlite, or postgres together with redis — not both')
    }
    return { kind: 'sqlite', path: sqlite }
  }
  if (postgres === undefined && redis === undefined) return fallback
  if (postgres === undefined) ctx.report('storage.postgres', 'required together with storage.redis')
  if (redis === undefined) ctx.report('storage.redis', 'required together with storage.postgres')
  if (postgres !== undefined && !hasProtocol(postgres, ['postgres:', 'postgresql:'])) {
    ctx.report('storage.postgres', 'expected a postgres:// or postgresql:// URL')
  }
  if (redis !== undefined && !hasProtocol(redis, ['redis:', 'rediss:'])) {
    ctx.report('storage.redis', 'expected a redis:// or rediss:// URL')
  }
  return { kind: 'postgres', postgresUrl: postgres ?? '', redisUrl: redis ?? '' }
}

// The URLs are not echoed: they usually carry a password.
function hasProtocol(text: string, protocols: readonly string[]): boolean {
  try {
    return protocols.includes(new URL(text).protocol)
  } catch {
    return false
  }
}

function normalizeReservations(input: ConfigFile['reservations'], targets: readonly ProviderTarget[], ctx: Context): ReservationSettings {
  const ttlMs = input?.ttl_ms ?? DEFAULTS.reservations.ttlMs
  // A reservation that expired while its request was still waiting on the upstream would be
  // settled at the reserved amount and then settled again by the request.
  const slowest = targets.reduce<ProviderTarget | undefined>((a, t) => (a === undefined || t.timeoutMs > a.timeoutMs ? t : a), undefined)
  if (slowest !== undefined && ttlMs < slowest.timeoutMs) {
    ctx.report('reservations.ttl_ms', `must not be shorter than the longest target timeout (${slowest.timeoutMs} ms, target "${slowest.id}"), got ${ttlMs}`)
  }
  return {
    ttlMs,
    sweepIntervalMs: input?.sweep_interval_ms ?? DEFAULTS.reservations.sweepIntervalMs,
    defaultOutputTokens: input?.default_output_tokens ?? DEFAULTS.reservations.defaultOutputTokens,
    tokenizerMaxBytes: input?.tokenizer_max_bytes ?? DEFAULTS.reservations.tokenizerMaxBytes,
  }
}
