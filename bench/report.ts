/** Turns measured runs into rows, target checks and a markdown table. Pure: no I/O here. */
import type { LoadResult, Percentiles } from './load.js'

export interface Scenario {
  readonly stream: boolean
  readonly concurrency: number
  readonly warmupRequests: number
  readonly requests: number
}

export interface Measured {
  readonly target: string
  readonly scenario: Scenario
  readonly load: LoadResult
  /** CPU of the process under test (the proxy), per request; undefined for the direct row. */
  readonly proxyCpuUsPerRequest: number | undefined
  readonly mockCpuUsPerRequest: number
}

export interface Row {
  readonly scenario: string
  readonly target: string
  readonly requests: number
  readonly errors: number
  readonly requestsPerS: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly firstByteP50Ms: number | undefined
  readonly addedP50Ms: number | undefined
  readonly addedP99Ms: number | undefined
  readonly throughputVsBare: number | undefined
  readonly proxyCpuUsPerRequest: number | undefined
  readonly cpuVsBare: number | undefined
  readonly mockCpuUsPerRequest: number
}

export interface Check {
  readonly name: string
  readonly target: string
  readonly actual: string
  readonly pass: boolean
}

export const directTarget = 'direct (mock)'
/** The floor: parse the request, parse the response's usage or every SSE event (bench/bare-proxy.ts). */
export const bareTarget = 'bare-inspect'
export const gatewayTarget = 'tollgate (sqlite)'
export const enforcedTarget = 'tollgate enforced (sqlite)'
export const postgresPlainTarget = 'tollgate (pg+redis)'
export const postgresTarget = 'tollgate enforced (pg+redis)'

/** The scale section: several gateway processes on one Redis + PostgreSQL, the load spread round-robin over them. */
export interface ScaleMeasured {
  readonly scenario: Scenario
  readonly processes: number
  readonly load: LoadResult
  /** CPU of each gateway process per request of the whole run (their sum is the cost of a request). */
  readonly cpuUsPerRequestByProcess: readonly number[]
  readonly mockCpuUsPerRequest: number
  /** Ledger round trips to Redis per request, summed over the processes (warm-up included). */
  readonly redisRoundTripsPerRequest: number | undefined
}

export interface ScaleRow {
  readonly scenario: string
  readonly processes: number
  readonly requests: number
  readonly errors: number
  readonly requestsPerS: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Summed over the processes. */
  readonly cpuUsPerRequest: number
  readonly cpuUsPerRequestByProcess: readonly number[]
  readonly requestsPerOrigin: readonly number[] | undefined
  readonly redisRoundTripsPerRequest: number | undefined
  /** The 1-process row of the same backend and scenario (`postgresTarget`), when it was measured. */
  readonly oneProcess:
    | { readonly requestsPerS: number; readonly p50Ms: number; readonly p99Ms: number; readonly cpuUsPerRequest: number | undefined }
    | undefined
  readonly throughputVsOne: number | undefined
  readonly cpuVsOne: number | undefined
}

/** The middle value (the upper of the two middle ones for an even count). */
export const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const medianPercentiles = (all: readonly Percentiles[]): Percentiles => ({
  p50: median(all.map((p) => p.p50)),
  p90: median(all.map((p) => p.p90)),
  p99: median(all.map((p) => p.p99)),
  mean: median(all.map((p) => p.mean)),
})

/**
 * One target's rounds of one scenario as one measurement: requests and errors summed, every rate,
 * latency and CPU figure the median of the rounds'. The rounds of all targets were interleaved,
 * so a machine that slows down or speeds up during the run moves every target's median alike.
 */
export function mergeRounds(rounds: readonly Measured[], scenario: Scenario): Measured {
  const first = rounds[0]
  if (first === undefined) throw new Error('mergeRounds: no rounds')
  const loads = rounds.map((r) => r.load)
  const firstBytes = loads.flatMap((l) => (l.firstByteMs ? [l.firstByteMs] : []))
  const cpus = rounds.flatMap((r) => (r.proxyCpuUsPerRequest === undefined ? [] : [r.proxyCpuUsPerRequest]))
  return {
    target: first.target,
    scenario,
    load: {
      requests: loads.reduce((sum, l) => sum + l.requests, 0),
      errors: loads.reduce((sum, l) => sum + l.errors, 0),
      firstError: loads.find((l) => l.firstError !== undefined)?.firstError,
      elapsedMs: loads.reduce((sum, l) => sum + l.elapsedMs, 0),
      requestsPerS: median(loads.map((l) => l.requestsPerS)),
      latencyMs: medianPercentiles(loads.map((l) => l.latencyMs)),
      firstByteMs: firstBytes.length > 0 ? medianPercentiles(firstBytes) : undefined,
    },
    proxyCpuUsPerRequest: cpus.length > 0 ? median(cpus) : undefined,
    mockCpuUsPerRequest: median(rounds.map((r) => r.mockCpuUsPerRequest)),
  }
}

export function scenarioLabel(s: Scenario): string {
  return `${s.stream ? 'stream' : 'non-stream'} c=${s.concurrency}`
}

export function toRows(measured: readonly Measured[]): Row[] {
  return measured.map((m) => {
    const label = scenarioLabel(m.scenario)
    const same = (target: string) => measured.find((x) => x.target === target && scenarioLabel(x.scenario) === label)
    const direct = same(directTarget)
    const bare = same(bareTarget)
    const isDirect = m.target === directTarget
    const isBare = m.target === bareTarget
    return {
      scenario: label,
      target: m.target,
      requests: m.load.requests,
      errors: m.load.errors,
      requestsPerS: m.load.requestsPerS,
      p50Ms: m.load.latencyMs.p50,
      p99Ms: m.load.latencyMs.p99,
      firstByteP50Ms: m.load.firstByteMs?.p50,
      addedP50Ms: isDirect || !direct ? undefined : m.load.latencyMs.p50 - direct.load.latencyMs.p50,
      addedP99Ms: isDirect || !direct ? undefined : m.load.latencyMs.p99 - direct.load.latencyMs.p99,
      throughputVsBare: isDirect || isBare || !bare ? undefined : m.load.requestsPerS / bare.load.requestsPerS,
      proxyCpuUsPerRequest: m.proxyCpuUsPerRequest,
      cpuVsBare:
        isDirect || isBare || !bare || m.proxyCpuUsPerRequest === undefined || bare.proxyCpuUsPerRequest === undefined
          ? undefined
          : m.proxyCpuUsPerRequest / bare.proxyCpuUsPerRequest,
      mockCpuUsPerRequest: m.mockCpuUsPerRequest,
    }
  })
}

export function toScaleRows(scale: readonly ScaleMeasured[], rows: readonly Row[]): ScaleRow[] {
  return scale.map((m) => {
    const label = scenarioLabel(m.scenario)
    const one = rows.find((r) => r.target === postgresTarget && r.scenario === label)
    const cpu = m.cpuUsPerRequestByProcess.reduce((sum, v) => sum + v, 0)
    return {
      scenario: label,
      processes: m.processes,
      requests: m.load.requests,
      errors: m.load.errors,
      requestsPerS: m.load.requestsPerS,
      p50Ms: m.load.latencyMs.p50,
      p99Ms: m.load.latencyMs.p99,
      cpuUsPerRequest: cpu,
      cpuUsPerRequestByProcess: m.cpuUsPerRequestByProcess,
      requestsPerOrigin: m.load.requestsPerOrigin,
      redisRoundTripsPerRequest: m.redisRoundTripsPerRequest,
      oneProcess: one && { requestsPerS: one.requestsPerS, p50Ms: one.p50Ms, p99Ms: one.p99Ms, cpuUsPerRequest: one.proxyCpuUsPerRequest },
      throughputVsOne: one ? m.load.requestsPerS / one.requestsPerS : undefined,
      cpuVsOne: one?.proxyCpuUsPerRequest === undefined ? undefined : cpu / one.proxyCpuUsPerRequest,
    }
  })
}

export function scaleMarkdown(rows: readonly ScaleRow[], cores: number): string {
  if (rows.length === 0) return ''
  const n = rows[0]!.processes
  const lines: string[] = []
  lines.push(`Scale-out on Redis + PostgreSQL: ${n} gateway processes vs 1, on ${cores} core${cores === 1 ? '' : 's'} (load round-robin over the ${n})`)
  lines.push('')
  lines.push(
    `| scenario | 1 process req/s | ${n} processes req/s | ${n} vs 1 | p50 ms 1 → ${n} | p99 ms 1 → ${n} | gateway CPU µs/req 1 → ${n} (sum) | CPU ${n} vs 1 | errors |`,
  )
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|')
  for (const r of rows) {
    const one = r.oneProcess
    lines.push(
      `| ${r.scenario} | ${opt(one?.requestsPerS, (v) => num(v, 0))} | ${num(r.requestsPerS, 0)} | ${opt(r.throughputVsOne, (v) => `${num(v, 2)}×`)} | ` +
        `${opt(one?.p50Ms, (v) => num(v, 3))} → ${num(r.p50Ms, 3)} | ${opt(one?.p99Ms, (v) => num(v, 3))} → ${num(r.p99Ms, 3)} | ` +
        `${opt(one?.cpuUsPerRequest, (v) => num(v, 0))} → ${num(r.cpuUsPerRequest, 0)} | ${opt(r.cpuVsOne, (v) => `${num(v, 2)}×`)} | ${r.errors} |`,
    )
  }
  return lines.join('\n')
}

/** What enforcement may cost over the bare-inspect floor, per store (the performance goals). */
const goals = [
  { target: enforcedTarget, throughputVsBareMin: 0.6, cpuVsBareMax: 1.6, addedP50MsMax: 0.12 },
  { target: postgresTarget, throughputVsBareMin: 0.45, cpuVsBareMax: 2.2, addedP50MsMax: undefined },
] as const

export function checks(rows: readonly Row[]): Check[] {
  const find = (target: string, scenario: string) => rows.find((r) => r.target === target && r.scenario === scenario)
  const out: Check[] = []
  for (const goal of goals) {
    for (const scenario of ['non-stream c=64', 'stream c=64']) {
      const row = find(goal.target, scenario)
      if (row?.throughputVsBare !== undefined) {
        const ratio = row.throughputVsBare
        out.push({
          name: `${goal.target}, ${scenario}: throughput vs bare-inspect`,
          target: `≥ ${num(goal.throughputVsBareMin, 2)}×`,
          actual: `${num(ratio, 2)}×`,
          pass: ratio >= goal.throughputVsBareMin,
        })
      }
      if (row?.cpuVsBare !== undefined) {
        const ratio = row.cpuVsBare
        out.push({
          name: `${goal.target}, ${scenario}: CPU per request vs bare-inspect`,
          target: `≤ ${num(goal.cpuVsBareMax, 2)}×`,
          actual: `${num(ratio, 2)}×`,
          pass: ratio <= goal.cpuVsBareMax,
        })
      }
    }
    if (goal.addedP50MsMax === undefined) continue
    for (const scenario of ['non-stream c=1', 'stream c=1']) {
      const row = find(goal.target, scenario)
      const bare = find(bareTarget, scenario)
      if (!row || !bare) continue
      const added = row.p50Ms - bare.p50Ms
      out.push({
        name: `${goal.target}, ${scenario}: p50 over bare-inspect`,
        target: `≤ +${ms(goal.addedP50MsMax)}`,
        actual: signedMs(added),
        pass: added <= goal.addedP50MsMax,
      })
    }
  }
  return out
}

export function markdown(rows: readonly Row[], checkList: readonly Check[], notes: readonly string[], extraTables: readonly string[] = []): string {
  const lines: string[] = []
  lines.push(
    '| scenario | target | req/s | p50 ms | p99 ms | added p50 | added p99 | req/s vs bare-inspect | proxy CPU µs/req | CPU vs bare-inspect | mock CPU µs/req | errors |',
  )
  lines.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
  for (const r of rows) {
    const p50 = r.firstByteP50Ms === undefined ? num(r.p50Ms, 3) : `${num(r.p50Ms, 3)} (ttfb ${num(r.firstByteP50Ms, 3)})`
    lines.push(
      `| ${r.scenario} | ${r.target} | ${num(r.requestsPerS, 0)} | ${p50} | ${num(r.p99Ms, 3)} | ${opt(r.addedP50Ms, (v) => signed(v))} | ${opt(r.addedP99Ms, (v) => signed(v))} | ` +
        `${opt(r.throughputVsBare, (v) => `${num(v, 2)}×`)} | ${opt(r.proxyCpuUsPerRequest, (v) => num(v, 0))} | ${opt(r.cpuVsBare, (v) => `${num(v, 2)}×`)} | ${num(r.mockCpuUsPerRequest, 0)} | ${r.errors} |`,
    )
  }
  for (const table of extraTables) {
    if (table === '') continue
    lines.push('')
    lines.push(table)
  }
  lines.push('')
  lines.push('| target check | goal | measured | |')
  lines.push('|---|--:|--:|---|')
  for (const c of checkList) lines.push(`| ${c.name} | ${c.target} | ${c.actual} | ${c.pass ? 'PASS' : 'MISS'} |`)
  if (notes.length > 0) {
    lines.push('')
    for (const note of notes) lines.push(`- ${note}`)
  }
  return lines.join('\n')
}

const num = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : '–')
const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)}`
const ms = (v: number) => `${v.toFixed(3)} ms`
const signedMs = (v: number) => `${v >= 0 ? '+' : ''}${ms(v)}`
const opt = (v: number | undefined, f: (v: number) => string) => (v === undefined || !Number.isFinite(v) ? '–' : f(v))
