/**
 * Summarises a V8 .cpuprofile: the functions with the most self time (dist/ locations mapped
 * back to src/ through the build's source maps), self time per package or src/ domain, the
 * src/ functions with the most inclusive time, and the src/ lines with the most self time (a
 * function's samples per line, from the profile's position ticks). Pure apart from reading the
 * source maps and the lines' source text.
 */
import { existsSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
  /** The node's samples by line of its script (1-based), where V8 recorded them. */
  positionTicks?: Array<{ line: number; ticks: number }>
}

export interface CpuProfile {
  nodes: ProfileNode[]
  /** Microseconds of the monotonic clock (CLOCK_MONOTONIC on Linux: `process.hrtime` of any process). */
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

/** A span of the monotonic clock in microseconds, as `monotonicUs()` reads it in any process. */
export interface SampleWindow {
  readonly fromUs: number
  readonly toUs: number
}

/** Now on the clock V8 stamps profile samples with, so a window taken here selects a child's samples. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

export interface Hotspot {
  readonly fn: string
  readonly location: string
  readonly bucket: string
  readonly ms: number
  readonly percent: number
  /** Where the time comes from: the nearest src/ frames on the stack, most time first. */
  readonly via: string[]
}

/** A src/ line and the self time of the samples taken on it. */
export interface HotLine {
  readonly location: string
  /** The function the samples were taken in: the line's own, or one it was inlined into. */
  readonly fn: string
  readonly ms: number
  readonly percent: number
  /** The line's code, trimmed (empty when the file cannot be read). */
  readonly code: string
}

export interface ProfileSummary {
  readonly activeMs: number
  readonly idleMs: number
  readonly self: Hotspot[]
  readonly buckets: Array<{ bucket: string; ms: number; percent: number }>
  readonly inclusiveSrc: Hotspot[]
  /** Where inside the functions the time goes: a spread, a joined key or a statement, to the line. */
  readonly linesSrc: HotLine[]
}

const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const idleNames = new Set(['(idle)'])

/**
 * `window`: only the samples taken within it (the load), so start-up (loading modules, warming
 * the tokenizer) and shutdown are not counted against the requests.
 */
export function summariseProfile(profile: CpuProfile, top = 15, window?: SampleWindow): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  const deltas = profile.timeDeltas
  let atUs = profile.startTime
  for (let i = 0; i < profile.samples.length; i += 1) {
    const id = profile.samples[i]!
    atUs += deltas[i] ?? 0
    if (window && (atUs < window.fromUs || atUs > window.toUs)) continue
    // A sample's time is the gap until the next sample.
    const us = deltas[i + 1] ?? deltas[i] ?? 0
    selfUs.set(id, (selfUs.get(id) ?? 0) + us)
  }
  const locate = new Locator()
  let idleUs = 0
  let activeUs = 0
  const selfByKey = new Map<string, { fn: string; location: string; bucket: string; us: number; via: Map<string, number> }>()
  const parentOf = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)
  const bucketUs = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!
    if (idleNames.has(node.callFrame.functionName)) {
      idleUs += us
      continue
    }
    activeUs += us
    const where = locate.frame(node.callFrame)
    const key = `${where.fn}@${where.location}`
    const entry = selfByKey.get(key) ?? { ...where, us: 0, via: new Map<string, number>() }
    entry.us += us
    const caller = nearestSrcCaller(id, parentOf, byId, locate)
    if (caller !== undefined) entry.via.set(caller, (entry.via.get(caller) ?? 0) + us)
    selfByKey.set(key, entry)
    bucketUs.set(where.bucket, (bucketUs.get(where.bucket) ?? 0) + us)
  }
  const toHotspot = (e: { fn: string; location: string; bucket: string; us: number; via?: Map<string, number> }): Hotspot => ({
    fn: e.fn,
    location: e.location,
    bucket: e.bucket,
    ms: e.us / 1000,
    percent: (100 * e.us) / activeUs,
    via: [...(e.via ?? new Map<string, number>()).entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 2)
      .map(([caller, us]) => `${caller} (${Math.round((100 * us) / e.us)}%)`),
  })
  const inclusive = inclusiveTimes(profile, byId, selfUs, locate)
  const lines = srcLineTimes(selfUs, byId, locate)
  return {
    activeMs: activeUs / 1000,
    idleMs: idleUs / 1000,
    self: [...selfByKey.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(toHotspot),
    buckets: [...bucketUs.entries()].sort((a, b) => b[1] - a[1]).map(([bucket, us]) => ({ bucket, ms: us / 1000, percent: (100 * us) / activeUs })),
    inclusiveSrc: [...inclusive.values()]
      .filter((e) => e.location.startsWith('src/'))
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(toHotspot),
    linesSrc: [...lines.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ location: e.location, fn: e.fn, ms: e.us / 1000, percent: (100 * e.us) / activeUs, code: locate.code(e.location) })),
  }
}

/**
 * Self time per src/ line: each node's time (within the window) shared between its lines in
 * proportion to their ticks. V8 counts ticks per line over the whole profile, so within a window
 * this is an estimate; over a steady load it is close.
 */
function srcLineTimes(selfUs: Map<number, number>, byId: Map<number, ProfileNode>, locate: Locator) {
  const lines = new Map<string, { location: string; fn: string; us: number }>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!
    const ticks = node.positionTicks ?? []
    const totalTicks = ticks.reduce((sum, t) => sum + t.ticks, 0)
    if (totalTicks === 0 || idleNames.has(node.callFrame.functionName)) continue
    for (const t of ticks) {
      const location = locate.line(node.callFrame.url, t.line - 1)
      if (location === undefined || !location.startsWith('src/')) continue
      const entry = lines.get(location) ?? { location, fn: node.callFrame.functionName || '(anonymous)', us: 0 }
      entry.us += (us * t.ticks) / totalTicks
      lines.set(location, entry)
    }
  }
  return lines
}

/** The first frame above `id` (itself excluded when it is ours) that lies in src/, as `fn file:line`. */
function nearestSrcCaller(id: number, parentOf: Map<number, number>, byId: Map<number, ProfileNode>, locate: Locator): string | undefined {
  let current = parentOf.get(id)
  for (let depth = 0; current !== undefined && depth < 64; depth += 1) {
    const where = locate.frame(byId.get(current)!.callFrame)
    if (where.location.startsWith('src/')) return `${where.fn} ${where.location}`
    current = parentOf.get(current)
  }
  return undefined
}

/** Inclusive time per function, counting a function once per stack even when it recurses. */
function inclusiveTimes(profile: CpuProfile, byId: Map<number, ProfileNode>, selfUs: Map<number, number>, locate: Locator) {
  const childIds = new Set(profile.nodes.flatMap((n) => n.children ?? []))
  const totals = new Map<string, { fn: string; location: string; bucket: string; us: number }>()
  const subtree = new Map<number, number>()
  const total = (id: number): number => {
    const cached = subtree.get(id)
    if (cached !== undefined) return cached
    const node = byId.get(id)!
    let us = idleNames.has(node.callFrame.functionName) ? 0 : (selfUs.get(id) ?? 0)
    for (const child of node.children ?? []) us += total(child)
    subtree.set(id, us)
    return us
  }
  const walk = (id: number, onPath: Set<string>): void => {
    const node = byId.get(id)!
    const where = locate.frame(node.callFrame)
    const key = `${where.fn}@${where.location}`
    const fresh = !onPath.has(key)
    if (fresh) {
      const entry = totals.get(key) ?? { ...where, us: 0 }
      entry.us += total(id)
      totals.set(key, entry)
      onPath.add(key)
    }
    for (const child of node.children ?? []) walk(child, onPath)
    if (fresh) onPath.delete(key)
  }
  for (const node of profile.nodes) if (!childIds.has(node.id)) walk(node.id, new Set())
  return totals
}

/** Maps a call frame to `fn`, `file:line` (src/ for our code, via source maps) and a bucket. */
class Locator {
  private readonly maps = new Map<string, SourceMap | undefined>()
  private readonly sources = new Map<string, readonly string[]>()

  frame(frame: CallFrame): { fn: string; location: string; bucket: string } {
    const fn = frame.functionName || '(anonymous)'
    if (frame.url === '') return { fn, location: '', bucket: fn.startsWith('(') ? fn : 'v8 / native' }
    if (frame.url.startsWith('node:')) {
      return {
        fn,
        location: `${frame.url.slice(5)}:${frame.lineNumber + 1}`,
        bucket: `node:${
          frame.url
            .slice(5)
            .replace(/^internal\//, '')
            .split('/')[0]
        }`,
      }
    }
    const path = frame.url.startsWith('file://') ? fileURLToPath(frame.url) : frame.url
    const mapped = this.mapToSource(path, frame.lineNumber, frame.columnNumber)
    const location = mapped ?? `${relative(repoRoot, path)}:${frame.lineNumber + 1}`
    return { fn, location, bucket: bucketOf(location) }
  }

  /** `file:line` of a script's line (0-based), mapped to src/ where a source map says so. */
  line(url: string, line: number): string | undefined {
    if (url === '' || url.startsWith('node:')) return undefined
    const path = url.startsWith('file://') ? fileURLToPath(url) : url
    // The line's last mapping: its first may lie in the indentation, which maps to nothing.
    return this.mapToSource(path, line, Number.MAX_SAFE_INTEGER) ?? `${relative(repoRoot, path)}:${line + 1}`
  }

  /** The code at `file:line` (relative to the repository), trimmed for a table cell. */
  code(location: string): string {
    const colon = location.lastIndexOf(':')
    const file = location.slice(0, colon)
    let text = this.sources.get(file)
    if (text === undefined) {
      const path = `${repoRoot}/${file}`
      text = existsSync(path) ? readFileSync(path, 'utf8').split('\n') : []
      this.sources.set(file, text)
    }
    const code = (text[Number(location.slice(colon + 1)) - 1] ?? '').trim()
    return code.length > 90 ? `${code.slice(0, 87)}…` : code
  }

  private mapToSource(path: string, line: number, column: number): string | undefined {
    if (!path.includes('/dist/')) return undefined
    let map = this.maps.get(path)
    if (!this.maps.has(path)) {
      const mapPath = `${path}.map`
      map = existsSync(mapPath) ? new SourceMap(JSON.parse(readFileSync(mapPath, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]) : undefined
      this.maps.set(path, map)
    }
    if (!map) return undefined
    const entry = map.findEntry(line, column) as { originalSource?: string; originalLine?: number }
    if (entry.originalSource === undefined || entry.originalLine === undefined) return undefined
    const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : new URL(entry.originalSource, `file://${path}`).pathname
    return `${relative(repoRoot, source)}:${entry.originalLine + 1}`
  }
}

function bucketOf(location: string): string {
  const nm = location.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const parts = location.slice(nm + 'node_modules/'.length).split('/')
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? 'node_modules')
  }
  if (location.startsWith('src/')) return `src/${location.split('/')[1]?.replace(/\.ts:\d+$/, '.ts')}`
  return location.split(':')[0] ?? location
}

export function formatSummary(summary: ProfileSummary, title: string): string {
  const lines: string[] = [`### ${title}`, '', `active CPU ${summary.activeMs.toFixed(0)} ms (idle ${summary.idleMs.toFixed(0)} ms)`, '']
  lines.push('| # | self ms | self % | function | location | called from (nearest src/ frame) |', '|--:|--:|--:|---|---|---|')
  for (const [i, h] of summary.self.entries())
    lines.push(`| ${i + 1} | ${h.ms.toFixed(0)} | ${h.percent.toFixed(1)} | ${h.fn} | ${h.location} | ${h.via.join('; ')} |`)
  lines.push('', '| bucket | self ms | self % |', '|---|--:|--:|')
  for (const b of summary.buckets.slice(0, 20)) lines.push(`| ${b.bucket} | ${b.ms.toFixed(0)} | ${b.percent.toFixed(1)} |`)
  lines.push('', '| src/ function (inclusive) | total ms | total % | location |', '|---|--:|--:|---|')
  for (const h of summary.inclusiveSrc) lines.push(`| ${h.fn} | ${h.ms.toFixed(0)} | ${h.percent.toFixed(1)} | ${h.location} |`)
  lines.push('', '| src/ line (self) | self ms | self % | sampled in | code |', '|---|--:|--:|---|---|')
  for (const l of summary.linesSrc) {
    lines.push(`| ${l.location} | ${l.ms.toFixed(0)} | ${l.percent.toFixed(1)} | ${l.fn} | \`${l.code.replaceAll('|', '\\|').replaceAll('`', "'")}\` |`)
  }
  return lines.join('\n')
}

/**
 * Two profiles of the same load side by side, per request: the CPU each bucket costs the gateway
 * and the bare proxy, largest difference first. What the gateway spends beyond a bare proxy, and
 * where, in one table.
 */
export function formatComparison(gateway: ProfileSummary, gatewayRequests: number, bare: ProfileSummary, bareRequests: number, title: string): string {
  const perRequest = (summary: ProfileSummary, requests: number) => new Map(summary.buckets.map((b) => [b.bucket, (1000 * b.ms) / requests]))
  const ours = perRequest(gateway, gatewayRequests)
  const theirs = perRequest(bare, bareRequests)
  const rows = [...new Set([...ours.keys(), ...theirs.keys()])]
    .map((bucket) => ({ bucket, gateway: ours.get(bucket) ?? 0, bare: theirs.get(bucket) ?? 0 }))
    .sort((a, b) => b.gateway - b.bare - (a.gateway - a.bare))
  const us = (value: number) => value.toFixed(1)
  const gatewayTotal = (1000 * gateway.activeMs) / gatewayRequests
  const bareTotal = (1000 * bare.activeMs) / bareRequests
  const lines = [
    `### ${title}`,
    '',
    `CPU per request while the load ran: gateway ${us(gatewayTotal)} µs, bare proxy ${us(bareTotal)} µs (${(gatewayTotal / bareTotal).toFixed(2)}×)`,
    '',
    '| bucket | gateway µs/req | bare µs/req | difference |',
    '|---|--:|--:|--:|',
  ]
  for (const row of rows.filter((r) => Math.abs(r.gateway - r.bare) >= 0.5).slice(0, 25))
    lines.push(`| ${row.bucket} | ${us(row.gateway)} | ${us(row.bare)} | ${row.gateway >= row.bare ? '+' : ''}${us(row.gateway - row.bare)} |`)
  return lines.join('\n')
}
