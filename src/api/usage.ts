/**
 * Usage reports: totals and a time series grouped by any attribution dimension, filtered by
 * environment and data mode, with the spike hours of the range.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { toUsd } from '../money/index.js'
import { addTotals, USAGE_GROUP_BY, zeroTotals, type UsageGroupBy, type UsageReport, type UsageSeriesPoint, type UsageTotals } from '../usage/index.js'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { principalOf, teamFilter } from './principal.js'
import type { Principal } from '../auth/index.js'
import { SPIKE_TRAILING_HOURS, spikeHours } from './usage-spikes.js'
import { doc } from './openapi.js'
import { presentUsageEvent } from './present.js'
import { decodeEventCursor, encodeEventCursor } from '../store/rows/usage.js'
import type { SpikeHourView } from './contract/wire.js'

const HOUR_MS = 3_600_000

const DAY_MS = 86_400_000
const RANGE_MS_MAX = 366 * DAY_MS
const BUCKETS = { minute: 60_000, hour: 3_600_000, day: DAY_MS } as const
const TOP_LIMIT_MAX = 100
const SERIES_GROUPS_MAX = 100
const EVENTS_LIMIT_MAX = 1000

/** Instants a report may name: 1970-01-01 to 9999-12-31 (anything else is not a date range anyone means). */
const INSTANT_MS_MAX = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

export const instant = z
  .string()
  .max(40)
  .transform((value, ctx) => {
    const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value)
    if (!Number.isSafeInteger(ms) || ms < 0 || ms > INSTANT_MS_MAX) {
      ctx.addIssue({ code: 'custom', message: `expected an ISO-8601 date or epoch milliseconds between 1970 and 9999, got "${value.slice(0, 40)}"` })
      return z.NEVER
    }
    return ms
  })

/** `real` or `demo` events only (`tollgate demo` traffic is `demo`); absent: both. */
const dataMode = z.enum(['real', 'demo'], { error: 'expected real | demo' }).optional()

const groupBy = z
  .string()
  .optional()
  .transform((value, ctx) => {
    const names = value
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : []
    for (const name of names) {
      if (!(USAGE_GROUP_BY as readonly string[]).includes(name)) {
        ctx.addIssue({ code: 'custom', message: `unknown dimension "${name}": expected ${USAGE_GROUP_BY.join(' | ')}` })
        return z.NEVER
      }
    }
    return names as UsageGroupBy[]
  })

const UsageQuery = z
  .object({
    from: instant.optional(),
    to: instant.optional(),
    group_by: groupBy,
    bucket: z.enum(['minute', 'hour', 'day']).default('day'),
    environment: z.string().max(100).optional(),
    data_mode: dataMode,
    /** The series keeps the first N groups' points; the rest become one `other` point per bucket (see `foldSeries`). */
    series_groups: z.coerce.number().int().min(1).max(SERIES_GROUPS_MAX).optional(),
  })
  .superRefine((q, ctx) => {
    if (q.from !== undefined && q.to !== undefined && q.from >= q.to) ctx.addIssue({ code: 'custom', path: ['from'], message: '"from" must be before "to"' })
  })

const TopQuery = z.object({
  from: instant.optional(),
  to: instant.optional(),
  by: z.enum(USAGE_GROUP_BY).default('user'),
  limit: z.coerce.number().int().min(1).max(TOP_LIMIT_MAX).default(10),
  environment: z.string().max(100).optional(),
  data_mode: dataMode,
})

/** A text filter; empty (an unfilled search box) means no filter. */
const textFilter = (max: number) =>
  z
    .string()
    .max(max)
    .optional()
    .transform((value) => (value === '' ? undefined : value))

const EventsQuery = z
  .object({
    from: instant.optional(),
    to: instant.optional(),
    team: textFilter(256),
    user: textFilter(256),
    model: textFilter(256),
    endpoint: textFilter(256),
    environment: textFilter(100),
    data_mode: dataMode,
    usage_source: z.enum(['reported', 'counted', 'estimated'], { error: 'expected reported | counted | estimated' }).optional(),
    source: z.enum(['gateway', 'ingest', 'direct'], { error: 'expected gateway | ingest | direct' }).optional(),
    limit: z.coerce.number().int().min(1).max(EVENTS_LIMIT_MAX).default(100),
    cursor: z
      .string()
      .max(200)
      .optional()
      .transform((value, ctx) => {
        if (value === undefined || value === '') return undefined
        const decoded = decodeEventCursor(value)
        if (!decoded) ctx.addIssue({ code: 'custom', message: 'not a cursor this API returned (pass next_cursor unchanged)' })
        return decoded
      }),
  })
  .superRefine((q, ctx) => {
    if (q.from !== undefined && q.to !== undefined && q.from >= q.to) ctx.addIssue({ code: 'custom', path: ['from'], message: '"from" must be before "to"' })
  })

function presentTotals(t: UsageTotals) {
  return {
    requests: t.requests,
    cost_usd: toUsd(t.costMicros),
    cost_micros: t.costMicros,
    input_tokens: t.inputTokens,
    output_tokens: t.outputTokens,
    cache_read_tokens: t.cacheReadTokens,
    cache_write_5m_tokens: t.cacheWriteTokens - t.cacheWrite1hTokens,
    cache_write_1h_tokens: t.cacheWrite1hTokens,
    reasoning_tokens: t.reasoningTokens,
    audio_input_tokens: t.audioInputTokens,
    audio_output_tokens: t.audioOutputTokens,
  }
}

type FoldedPoint = UsageSeriesPoint & { other?: true }

/**
 * The series with only the first `groups` groups' points (groups come most expensive first); in
 * each bucket the other groups' points are summed into one point `{ key: {}, other: true }`, after
 * the bucket's named points. Why: the console stacks the 8 largest keys and "Other", and a week by
 * user in hours is ~8 000 points (2.5 MB) of which it draws one cost per key and bucket; folded,
 * the answer is a sixth of that and the gateway serialises a sixth of the objects.
 */
function foldSeries(groupBy: readonly UsageGroupBy[], report: UsageReport, groups: number | undefined): readonly FoldedPoint[] {
  if (groups === undefined || report.groups.length <= groups) return report.series
  // The same key text as the store's merge: absent and '' differ.
  const keyText = (key: UsageSeriesPoint['key']) => groupBy.map((g) => (key[g] === null || key[g] === undefined ? '\u0000' : `\u0001${key[g]}\u0002`)).join('')
  const named = new Set(report.groups.slice(0, groups).map((g) => keyText(g.key)))
  const folded: FoldedPoint[] = []
  let other: FoldedPoint | undefined
  for (const p of report.series) {
    if (other !== undefined && other.bucketStartMs !== p.bucketStartMs) {
      folded.push(other)
      other = undefined
    }
    if (named.has(keyText(p.key))) {
      folded.push(p)
      continue
    }
    other ??= { ...zeroTotals(), bucketStartMs: p.bucketStartMs, key: {}, other: true }
    addTotals(other, p)
  }
  if (other !== undefined) folded.push(other)
  return folded
}

/**
 * Series points on the wire: one object each, and one ISO string per bucket (a report over a week
 * by user has thousands of points in 168 buckets).
 */
function presentSeries(series: readonly FoldedPoint[]) {
  const instants = new Map<number, string>()
  return series.map((p) => {
    let bucketStart = instants.get(p.bucketStartMs)
    if (bucketStart === undefined) {
      bucketStart = new Date(p.bucketStartMs).toISOString()
      instants.set(p.bucketStartMs, bucketStart)
    }
    return p.other
      ? { bucket_start: bucketStart, key: p.key, other: true, ...presentTotals(p) }
      : { bucket_start: bucketStart, key: p.key, ...presentTotals(p) }
  })
}

function range(from: number | undefined, to: number | undefined, nowMs: number) {
  const toMs = to ?? nowMs + 1
  const fromMs = from ?? toMs - 7 * DAY_MS
  return { fromMs, toMs: Math.min(toMs, fromMs + RANGE_MS_MAX) }
}

/**
 * One report over the caller's org (and team, for a team_admin), after pending events are written;
 * with `spikes`, the range's spike hours too, read at the same time as the report (on PostgreSQL
 * the two run on their own connections, so the answer waits for the slower, not for both).
 */
async function report(deps: AdminDeps, principal: Principal, q: ReportFilter, groupBy: readonly UsageGroupBy[], bucketMs: number, withSpikes = false) {
  await deps.usage.flush()
  const { fromMs, toMs } = range(q.from, q.to, deps.clock.nowMs())
  const [result, spikes] = await Promise.all([
    deps.stores.usage.query({
      orgId: principal.orgId,
      fromMs,
      toMs,
      groupBy,
      bucketMs,
      teamId: teamFilter(principal),
      environment: q.environment,
      dataMode: q.data_mode,
    }),
    withSpikes ? spikesOf(deps, principal, q, fromMs, toMs) : [],
  ])
  return { fromMs, toMs, result, spikes }
}

interface ReportFilter {
  from?: number | undefined
  to?: number | undefined
  environment?: string | undefined
  data_mode?: 'real' | 'demo' | undefined
}

/** Hourly spend from 24 hours before `fromMs`, judged by the spike rule (usage-spikes.ts). */
async function spikesOf(deps: AdminDeps, principal: Principal, q: ReportFilter, fromMs: number, toMs: number): Promise<SpikeHourView[]> {
  const hourly = await deps.stores.usage.spendSeries({
    orgId: principal.orgId,
    fromMs: Math.floor(fromMs / HOUR_MS) * HOUR_MS - SPIKE_TRAILING_HOURS * HOUR_MS,
    toMs,
    bucketMs: HOUR_MS,
    teamId: teamFilter(principal),
    environment: q.environment,
    dataMode: q.data_mode,
  })
  return spikeHours(hourly, fromMs, toMs)
}

export async function usageRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.get(
    '/v1/usage',
    doc({
      summary: 'Usage totals, groups and a time series',
      auth: 'admin',
      query: UsageQuery,
      responses: {
        200: '`totals`, `groups`, `series`, and `spikes`: the hours whose spend is at least 3× the 24 before and at least $1. With `series_groups=N`, `series` holds the points of the first N `groups` only, and per bucket one point with `other: true` (and an empty `key`) summing the rest.',
      },
    }),
    async (request) => {
      const principal = principalOf(request)
      const q = parseBody(UsageQuery, request.query, 'query')
      const { fromMs, toMs, result, spikes } = await report(deps, principal, q, q.group_by, BUCKETS[q.bucket], true)
      return {
        from: new Date(fromMs).toISOString(),
        to: new Date(toMs).toISOString(),
        bucket: q.bucket,
        group_by: q.group_by,
        totals: presentTotals(result.totals),
        groups: result.groups.map((g) => ({ key: g.key, ...presentTotals(g) })),
        series: presentSeries(foldSeries(q.group_by, result, q.series_groups)),
        spikes,
      }
    },
  )

  app.get(
    '/v1/usage/events',
    doc({
      summary: 'Usage events, newest first',
      description:
        'Each priced call (proxied, ingested or settled through a reservation) with its attribution, tokens of every kind, the server-side searches it was charged (`web_searches`, `file_searches`, `web_search_kind`), cost and per-part breakdown, and where its numbers came from (`usage_source`, `usage_note`, `price_source`). Pages by `cursor` (the previous page’s `next_cursor`).',
      auth: 'admin',
      query: EventsQuery,
      responses: { 200: '`data`: the events; `next_cursor`: the next page, or null after the last.' },
    }),
    async (request) => {
      const principal = principalOf(request)
      const q = parseBody(EventsQuery, request.query, 'query')
      await deps.usage.flush()
      const { fromMs, toMs } = range(q.from, q.to, deps.clock.nowMs())
      // A team_admin or team viewer sees its own team, whatever `team` says.
      const ownTeam = teamFilter(principal)
      const events = await deps.stores.usage.listEvents({
        orgId: principal.orgId,
        fromMs,
        toMs,
        teamId: ownTeam ?? q.team,
        userId: q.user,
        model: q.model,
        endpointTag: q.endpoint,
        environment: q.environment,
        dataMode: q.data_mode,
        usageSource: q.usage_source,
        source: q.source,
        before: q.cursor,
        limit: q.limit + 1,
      })
      const page = events.slice(0, q.limit)
      const last = page.at(-1)
      return { data: page.map(presentUsageEvent), next_cursor: events.length > q.limit && last ? encodeEventCursor(last) : null }
    },
  )

  app.get(
    '/v1/usage/top',
    doc({ summary: 'The top spenders by one dimension', auth: 'admin', query: TopQuery, responses: { 200: '`data`: the top groups.' } }),
    async (request) => {
      const principal = principalOf(request)
      const q = parseBody(TopQuery, request.query, 'query')
      // Only groups are answered: buckets as long as the longest range (one, or two when the range
      // crosses a bucket's start) let SQL sum each key's days before they cross the wire — 90 days
      // by user is 60 rows, not 5 000 (key, day) rows merged into a series nobody reads.
      const { fromMs, toMs, result } = await report(deps, principal, q, [q.by], RANGE_MS_MAX)
      return {
        from: new Date(fromMs).toISOString(),
        to: new Date(toMs).toISOString(),
        by: q.by,
        data: result.groups.slice(0, q.limit).map((g) => ({ [q.by]: g.key[q.by] ?? null, ...presentTotals(g) })),
      }
    },
  )
}
