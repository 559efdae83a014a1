/**
 * Usage events for store tests: a builder with defaults, a fast-check arbitrary over small pools
 * (so groups collide and absent attribution is common), and the report a store must return,
 * computed in plain JS from the events themselves.
 */
import fc from 'fast-check'
import { micros } from '../../src/money/index.js'
import type { UsageEvent, UsageGroupBy } from '../../src/usage/types.js'
import type { UsageQuery, UsageReport, UsageTotals } from '../../src/usage/usage-store.js'

export interface EventFields {
  readonly id: string
  readonly atMs: number
  readonly orgId?: string
  readonly teamId?: string | undefined
  readonly userId?: string | undefined
  readonly agentId?: string | undefined
  readonly endpointTag?: string | undefined
  readonly promptVersion?: string | undefined
  readonly environment?: string
  readonly provider?: string
  readonly model?: string
  readonly costMicros?: number
  readonly inputTokens?: number
  readonly outputTokens?: number
  readonly cacheReadTokens?: number
  readonly cacheWriteTokens?: number
  readonly cacheWrite1hTokens?: number
  readonly reasoningTokens?: number
  readonly audioInputTokens?: number
  readonly audioOutputTokens?: number
  readonly status?: UsageEvent['status']
  readonly dataMode?: UsageEvent['dataMode']
  readonly externalRequestId?: string | undefined
}

export function usageEvent(f: EventFields): UsageEvent {
  const inputTokens = f.inputTokens ?? 100
  const outputTokens = f.outputTokens ?? 20
  return {
    id: f.id,
    requestId: `req_${f.id}`,
    atMs: f.atMs,
    attribution: {
      orgId: f.orgId ?? 'org_test',
      teamId: f.teamId,
      userId: f.userId,
      userFromKey: true,
      agentId: f.agentId,
      keyName: 'app',
      endpointTag: f.endpointTag,
      promptVersion: f.promptVersion,
      environment: f.environment ?? 'production',
    },
    provider: f.provider ?? 'openai',
    targetId: undefined,
    modelRequested: f.model ?? 'gpt-4o-mini',
    modelServed: f.model ?? 'gpt-4o-mini',
    endpoint: 'chat_completions',
    usage: {
      inputTokens,
      outputTokens,
      cacheReadTokens: f.cacheReadTokens ?? 0,
      cacheWriteTokens: f.cacheWriteTokens ?? 0,
      cacheWrite1hTokens: f.cacheWrite1hTokens ?? 0,
      reasoningTokens: f.reasoningTokens ?? 0,
      audioInputTokens: f.audioInputTokens ?? 0,
      audioOutputTokens: f.audioOutputTokens ?? 0,
    },
    usageSource: 'reported',
    usageNote: undefined,
    costBreakdown: undefined,
    costMicros: micros(f.costMicros ?? 150),
    priceSource: 'catalogue:test',
    latencyMs: 12,
    status: f.status ?? 'ok',
    httpStatus: f.status === undefined || f.status === 'ok' ? 200 : 502,
    isStream: false,
    decision: 'allowed',
    reservationId: undefined,
    walletId: undefined,
    dataMode: f.dataMode ?? 'real',
    source: f.externalRequestId === undefined ? 'gateway' : 'ingest',
    externalRequestId: f.externalRequestId,
  }
}

const HOUR_MS = 3_600_000
/** Every generated event falls in these three days (UTC), so day, hour and edge parts all occur. */
export const WINDOW_START_MS = Date.UTC(2026, 10, 14)
export const WINDOW_MS = 3 * 24 * HOUR_MS

/**
 * An instant in [min, max], half the time within ten minutes of an hour boundary (often a day's),
 * where a report's edges and a rollup's buckets meet.
 */
function instantArbitrary(min: number, max: number): fc.Arbitrary<number> {
  const anywhere = fc.integer({ min, max })
  const hours = Math.floor((max - min) / HOUR_MS)
  const nearBoundary = fc.tuple(fc.integer({ min: 0, max: hours }), fc.boolean(), fc.integer({ min: -600_000, max: 600_000 })).map(([hour, onDay, offset]) => {
    const boundary = onDay ? Math.floor((min + hour * HOUR_MS) / (24 * HOUR_MS)) * 24 * HOUR_MS : Math.ceil(min / HOUR_MS) * HOUR_MS + hour * HOUR_MS
    return Math.min(max, Math.max(min, boundary + offset))
  })
  return fc.oneof(anywhere, nearBoundary)
}

const maybe = (values: readonly string[]) => fc.option(fc.constantFrom(...values), { nil: undefined, freq: 3 })

/** Events over the window; ids unique per run (`prefix`), external ids drawn from a small pool so some repeat. */
export function eventsArbitrary(prefix: string, maxLength = 120): fc.Arbitrary<UsageEvent[]> {
  const fields = fc.record({
    atMs: instantArbitrary(WINDOW_START_MS, WINDOW_START_MS + WINDOW_MS - 1),
    teamId: maybe(['growth', 'search', '']),
    userId: maybe(['ana', 'ben', 'cy']),
    agentId: maybe(['bot']),
    endpointTag: maybe(['/chat', '/summary']),
    promptVersion: maybe(['v1', 'v2']),
    environment: fc.constantFrom('production', 'staging'),
    provider: fc.constantFrom('openai', 'anthropic'),
    model: fc.constantFrom('gpt-4o-mini', 'claude-haiku'),
    costMicros: fc.integer({ min: 0, max: 5_000_000 }),
    inputTokens: fc.nat(5000),
    outputTokens: fc.nat(2000),
    cacheReadTokens: fc.nat(100),
    cacheWriteTokens: fc.nat(100),
    cacheWrite1hTokens: fc.nat(50),
    reasoningTokens: fc.nat(100),
    audioInputTokens: fc.nat(30),
    audioOutputTokens: fc.nat(30),
    status: fc.constantFrom('ok', 'ok', 'ok', 'upstream_error', 'refused'),
    dataMode: fc.constantFrom('real', 'real', 'demo'),
    externalRequestId: fc.option(fc.constantFrom('x1', 'x2', 'x3', 'x4'), { nil: undefined, freq: 4 }),
  })
  return fc
    .array(fields, { minLength: 1, maxLength, size: 'max' })
    .map((list) => list.map((f, i) => usageEvent({ ...(f as EventFields), id: `${prefix}_${i}` })))
}

/** A report query over (a little beyond) the window: any instants, any filters, up to two dimensions. */
export function queryArbitrary(orgId: string): fc.Arbitrary<UsageQuery> {
  const instant = instantArbitrary(WINDOW_START_MS - 2 * HOUR_MS, WINDOW_START_MS + WINDOW_MS + 2 * HOUR_MS)
  return fc
    .record({
      a: instant,
      b: instant,
      aligned: fc.constantFrom('none', 'hour', 'day'),
      groupBy: fc.uniqueArray(fc.constantFrom<UsageGroupBy>('provider', 'model', 'team', 'user', 'agent', 'endpoint', 'prompt_version', 'environment'), {
        maxLength: 2,
      }),
      // 366 days: /v1/usage/top's one bucket per range.
      bucketMs: fc.constantFrom(HOUR_MS, 24 * HOUR_MS, 60_000, 366 * 24 * HOUR_MS),
      teamId: fc.option(fc.constantFrom('growth', 'search'), { nil: undefined }),
      environment: fc.option(fc.constantFrom('production', 'staging'), { nil: undefined }),
      dataMode: fc.option(fc.constantFrom<'real' | 'demo'>('real', 'demo'), { nil: undefined }),
    })
    .filter((r) => r.a !== r.b)
    .map((r) => {
      const unit = r.aligned === 'hour' ? HOUR_MS : r.aligned === 'day' ? 24 * HOUR_MS : 1
      const align = (ms: number) => Math.floor(ms / unit) * unit
      const fromMs = align(Math.min(r.a, r.b))
      const toMs = Math.max(align(Math.max(r.a, r.b)), fromMs + 1)
      return { orgId, fromMs, toMs, groupBy: r.groupBy, bucketMs: r.bucketMs, teamId: r.teamId, environment: r.environment, dataMode: r.dataMode }
    })
}

/**
 * What a store keeps of `events`: the first of each id, and of each (org, team, external id),
 * events of no team (or of the generator's odd empty team id) forming one team.
 */
export function storedEvents(events: readonly UsageEvent[]): UsageEvent[] {
  const ids = new Set<string>()
  const external = new Set<string>()
  return events.filter((e) => {
    const ext = e.externalRequestId === undefined ? undefined : JSON.stringify([e.attribution.orgId, e.attribution.teamId || null, e.externalRequestId])
    if (ids.has(e.id) || (ext !== undefined && external.has(ext))) return false
    ids.add(e.id)
    if (ext !== undefined) external.add(ext)
    return true
  })
}

const ATTRIBUTE: Record<UsageGroupBy, (e: UsageEvent) => string | null> = {
  provider: (e) => e.provider,
  model: (e) => e.modelServed,
  team: (e) => e.attribution.teamId || null,
  user: (e) => e.attribution.userId || null,
  agent: (e) => e.attribution.agentId || null,
  endpoint: (e) => e.attribution.endpointTag || null,
  prompt_version: (e) => e.attribution.promptVersion || null,
  environment: (e) => e.attribution.environment,
}

type Key = Partial<Record<UsageGroupBy, string | null>>

function zero(): UsageTotals {
  return {
    requests: 0,
    costMicros: micros(0),
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    cacheWrite1hTokens: 0,
    reasoningTokens: 0,
    audioInputTokens: 0,
    audioOutputTokens: 0,
  }
}

function addEvent(t: UsageTotals, e: UsageEvent): void {
  t.requests += 1
  t.costMicros = micros(t.costMicros + e.costMicros)
  t.inputTokens += e.usage.inputTokens
  t.outputTokens += e.usage.outputTokens
  t.cacheReadTokens += e.usage.cacheReadTokens
  t.cacheWriteTokens += e.usage.cacheWriteTokens
  t.cacheWrite1hTokens += e.usage.cacheWrite1hTokens
  t.reasoningTokens += e.usage.reasoningTokens
  t.audioInputTokens += e.usage.audioInputTokens
  t.audioOutputTokens += e.usage.audioOutputTokens
}

/**
 * The report over stored `events`, computed in JS, independently of the stores' code: groups by
 * spend (desc), series by bucket then spend; ties by key, absent first.
 */
export function expectedReport(events: readonly UsageEvent[], q: UsageQuery): UsageReport {
  const selected = events
    .filter((e) => e.attribution.orgId === q.orgId && e.atMs >= q.fromMs && e.atMs < q.toMs)
    .filter((e) => q.teamId === undefined || e.attribution.teamId === q.teamId)
    .filter((e) => q.environment === undefined || e.attribution.environment === q.environment)
    .filter((e) => q.dataMode === undefined || e.dataMode === q.dataMode)
  const totals = zero()
  const groups = new Map<string, { key: Key } & UsageTotals>()
  const series = new Map<string, { bucketStartMs: number; key: Key } & UsageTotals>()
  for (const e of selected) {
    const key: Key = Object.fromEntries(q.groupBy.map((g) => [g, ATTRIBUTE[g](e)]))
    const bucketStartMs = Math.floor(e.atMs / q.bucketMs) * q.bucketMs
    const keyText = JSON.stringify(q.groupBy.map((g) => key[g]))
    addEvent(totals, e)
    if (q.groupBy.length) {
      if (!groups.has(keyText)) groups.set(keyText, { key, ...zero() })
      addEvent(groups.get(keyText)!, e)
    }
    const pointKey = `${bucketStartMs}|${keyText}`
    if (!series.has(pointKey)) series.set(pointKey, { bucketStartMs, key, ...zero() })
    addEvent(series.get(pointKey)!, e)
  }
  const text = (k: Key) => q.groupBy.map((g) => (k[g] === null ? '\u0000' : `\u0001${k[g]}`))
  const byKey = (a: { key: Key }, b: { key: Key }) => {
    const [x, y] = [text(a.key), text(b.key)]
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1
    return 0
  }
  return {
    totals,
    groups: [...groups.values()].sort((a, b) => b.costMicros - a.costMicros || byKey(a, b)),
    series: [...series.values()].sort((a, b) => a.bucketStartMs - b.bucketStartMs || b.costMicros - a.costMicros || byKey(a, b)),
  }
}
