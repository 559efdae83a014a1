/** Turns measured runs into rows, target checks and a markdown table. Pure: no I/O here. */
import type { LoadResult } from './load.js'

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
export const bareTarget = 'bare proxy'
export const gatewayTarget = 'gateway'
export const enforcedTarget = 'gateway + wallet'

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

const addedP50MsMax = 0.3
const enforcementP50MsMax = 0.3
const throughputVsBareMin = 0.75

export function checks(rows: readonly Row[]): Check[] {
  const find = (target: string, scenario: string) => rows.find((r) => r.target === target && r.scenario === scenario)
  const out: Check[] = []
  for (const scenario of ['non-stream c=64', 'stream c=64']) {
    for (const target of [gatewayTarget, enforcedTarget]) {
      const ratio = find(target, scenario)?.throughputVsBare
      if (ratio === undefined) continue
      out.push({ name: `${target}, ${scenario}: throughput vs bare proxy`, target: `≥ ${pct(throughputVsBareMin)}`, actual: pct(ratio), pass: ratio >= throughputVsBareMin })
    }
  }
  for (const scenario of ['non-stream c=1', 'stream c=1']) {
    const added = find(gatewayTarget, scenario)?.addedP50Ms
    if (added !== undefined) {
      out.push({ name: `${gatewayTarget}, ${scenario}: added p50 vs direct`, target: `< ${ms(addedP50MsMax)}`, actual: ms(added), pass: added < addedP50MsMax })
    }
    const plain = find(gatewayTarget, scenario)
    const enforced = find(enforcedTarget, scenario)
    if (plain && enforced) {
      const extra = enforced.p50Ms - plain.p50Ms
      out.push({ name: `wallet enforcement, ${scenario}: extra p50 vs plain gateway`, target: `< ${ms(enforcementP50MsMax)}`, actual: ms(extra), pass: extra < enforcementP50MsMax })
    }
  }
  return out
}

export function markdown(rows: readonly Row[], checkList: readonly Check[], notes: readonly string[]): string {
  const lines: string[] = []
  lines.push('| scenario | target | req/s | p50 ms | p99 ms | added p50 | added p99 | vs bare req/s | proxy CPU µs/req | CPU vs bare | mock CPU µs/req | errors |')
  lines.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
  for (const r of rows) {
    const p50 = r.firstByteP50Ms === undefined ? num(r.p50Ms, 3) : `${num(r.p50Ms, 3)} (ttfb ${num(r.firstByteP50Ms, 3)})`
    lines.push(
      `| ${r.scenario} | ${r.target} | ${num(r.requestsPerS, 0)} | ${p50} | ${num(r.p99Ms, 3)} | ${opt(r.addedP50Ms, (v) => signed(v))} | ${opt(r.addedP99Ms, (v) => signed(v))} | ` +
        `${opt(r.throughputVsBare, pct)} | ${opt(r.proxyCpuUsPerRequest, (v) => num(v, 0))} | ${opt(r.cpuVsBare, (v) => `${num(v, 2)}×`)} | ${num(r.mockCpuUsPerRequest, 0)} | ${r.errors} |`,
    )
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
const pct = (v: number) => `${(v * 100).toFixed(0)}%`
const ms = (v: number) => `${v.toFixed(3)} ms`
const opt = (v: number | undefined, f: (v: number) => string) => (v === undefined || !Number.isFinite(v) ? '–' : f(v))
