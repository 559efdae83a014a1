/**
 * `npm run bench`: the mock upstream direct, a bare undici pass-through proxy and the gateway
 * (plain, and with wallet enforcement; on Postgres + Redis too when DATABASE_URL and REDIS_URL
 * are set), measured in the same run on loopback, at concurrency 1 and 64, non-stream and
 * stream. Every system under test is its own process; the load generator runs here.
 *
 *   npm run bench                       # the full run (a few minutes on 2 cores)
 *   npm run bench -- --quick            # a tenth of the requests: a smoke test
 *   npm run bench -- --profile[=enforced|=bare]   # CPU-profile the gateway (or the bare proxy) under load: hotspots
 *
 * Results: a markdown table on stdout and bench/results/latest.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchConsumerKey, startGateway, type Gateway, type GatewayMode } from './gateway.js'
import { runLoad, type LoadResult } from './load.js'
import { cpuTimeNs, spawnChild, type Child } from './procs.js'
import { profileGateway } from './profile-run.js'
import {
  bareTarget,
  checks,
  directTarget,
  enforcedTarget,
  gatewayTarget,
  markdown,
  scenarioLabel,
  toRows,
  type Measured,
  type Scenario,
} from './report.js'

interface Target {
  readonly name: string
  readonly origin: string
  readonly authorization: string
  /** The process whose CPU is charged to the proxy; undefined for the direct row. */
  readonly pid: number | undefined
}

const quick = process.argv.includes('--quick')
const scale = quick ? 0.1 : 1
const runDurationMsMax = 30_000
const settleMs = 200
const tsxImport = ['--import', 'tsx']
const benchDir = fileURLToPath(new URL('.', import.meta.url))

const scenarios: Scenario[] = [
  { stream: false, concurrency: 1, warmupRequests: 500, requests: 3_000 },
  { stream: true, concurrency: 1, warmupRequests: 500, requests: 3_000 },
  { stream: false, concurrency: 64, warmupRequests: 3_000, requests: 15_000 },
  { stream: true, concurrency: 64, warmupRequests: 3_000, requests: 15_000 },
].map((s) => ({ ...s, warmupRequests: Math.ceil(s.warmupRequests * scale), requests: Math.ceil(s.requests * scale) }))

export function chatBody(stream: boolean): string {
  return JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are a terse assistant.' },
      { role: 'user', content: 'Summarise the benefits of reserving the worst-case cost before calling a model.' },
    ],
    // Sent by the client so every path carries the same bytes (the gateway would add it otherwise).
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  })
}

export async function startMock(): Promise<{ child: Child; url: string }> {
  const child = spawnChild('mock upstream', [...tsxImport, join(benchDir, 'mock-server.ts')])
  return { child, url: await child.waitFor(/MOCK_URL=(\S+)/) }
}

async function startBare(mockUrl: string, nodeFlags: readonly string[] = []): Promise<{ child: Child; url: string }> {
  const child = spawnChild('bare proxy', [...nodeFlags, ...tsxImport, join(benchDir, 'bare-proxy.ts'), mockUrl])
  return { child, url: await child.waitFor(/BARE_URL=(\S+)/) }
}

async function measure(target: Target, scenario: Scenario, mockPid: number): Promise<Measured> {
  const spec = {
    origin: target.origin,
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization: target.authorization },
    body: chatBody(scenario.stream),
    stream: scenario.stream,
    concurrency: scenario.concurrency,
    durationMsMax: runDurationMsMax,
  }
  await runLoad({ ...spec, requests: scenario.warmupRequests })
  await sleep(settleMs)
  const proxyCpu0 = target.pid === undefined ? 0 : cpuTimeNs(target.pid)
  const mockCpu0 = cpuTimeNs(mockPid)
  const load: LoadResult = await runLoad({ ...spec, requests: scenario.requests })
  // Let deferred work (usage-event batches, settles) finish so its CPU is charged to this run.
  await sleep(settleMs)
  const perRequestUs = (ns: number) => ns / 1000 / Math.max(1, load.requests)
  return {
    target: target.name,
    scenario,
    load,
    proxyCpuUsPerRequest: target.pid === undefined ? undefined : perRequestUs(cpuTimeNs(target.pid) - proxyCpu0),
    mockCpuUsPerRequest: perRequestUs(cpuTimeNs(mockPid) - mockCpu0),
  }
}

/** One request through each target before measuring: a wrong setup should fail loudly, not as a fast table of errors. */
async function smokeTest(target: Target): Promise<string> {
  const response = await fetch(`${target.origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: target.authorization },
    body: chatBody(false),
  })
  const text = await response.text()
  if (response.status !== 200) throw new Error(`${target.name}: smoke request answered HTTP ${response.status}: ${text.slice(0, 500)}`)
  const cost = response.headers.get('x-tollgate-cost-usd')
  const reserved = response.headers.get('x-tollgate-cost-reserved-usd')
  return cost === null ? '' : `cost ${cost} USD${reserved === null ? '' : `, reserved ${reserved} USD`}`
}

async function tryGateway(mode: GatewayMode, mockUrl: string, dir: string, notes: string[]): Promise<Gateway | undefined> {
  if (mode === 'postgres') {
    const postgresUrl = process.env.DATABASE_URL
    const redisUrl = process.env.REDIS_URL
    if (!postgresUrl || !redisUrl) {
      notes.push('gateway on Postgres + Redis: skipped (set DATABASE_URL and REDIS_URL to include it)')
      return undefined
    }
    try {
      return await startGateway({ mode, mockUrl, dir, postgresUrl, redisUrl })
    } catch (error) {
      notes.push(`gateway on Postgres + Redis: did not start, skipped — ${firstLines((error as Error).message, 6)}`)
      return undefined
    }
  }
  return startGateway({ mode, mockUrl, dir })
}

async function benchmark(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'))
  const notes: string[] = []
  const children: Child[] = []
  const started = performance.now()
  try {
    const mock = await startMock()
    children.push(mock.child)
    const bare = await startBare(mock.url)
    children.push(bare.child)
    const targets: Target[] = [
      { name: directTarget, origin: mock.url, authorization: 'Bearer sk-mock', pid: undefined },
      { name: bareTarget, origin: bare.url, authorization: 'Bearer sk-mock', pid: bare.child.pid },
    ]
    const gatewayModes: Array<[GatewayMode, string]> = [
      ['plain', gatewayTarget],
      ['enforced', enforcedTarget],
      ['postgres', `${enforcedTarget} (pg+redis)`],
    ]
    for (const [mode, name] of gatewayModes) {
      const gateway = await tryGateway(mode, mock.url, dir, notes)
      if (!gateway) continue
      children.push(gateway.child)
      targets.push({ name, origin: gateway.url, authorization: `Bearer ${benchConsumerKey}`, pid: gateway.child.pid })
    }
    for (const target of targets) {
      const detail = await smokeTest(target)
      process.stderr.write(`bench: ${target.name} ready at ${target.origin}${detail ? ` (${detail})` : ''}\n`)
    }

    const measured: Measured[] = []
    for (const scenario of scenarios) {
      for (const target of targets) {
        process.stderr.write(`bench: ${scenarioLabel(scenario)} → ${target.name} … `)
        const tripsBefore = await redisRoundTrips(target)
        const m = await measure(target, scenario, mock.child.pid)
        measured.push(m)
        const tripsAfter = await redisRoundTrips(target)
        if (tripsBefore !== undefined && tripsAfter !== undefined) {
          const perRequest = (tripsAfter - tripsBefore) / (m.load.requests + scenario.warmupRequests)
          notes.push(`${target.name}, ${scenarioLabel(scenario)}: ${perRequest.toFixed(2)} Redis round trips per request (reserve + settle)`)
        }
        process.stderr.write(`${m.load.requestsPerS.toFixed(0)} req/s, p50 ${m.load.latencyMs.p50.toFixed(3)} ms${m.load.errors ? `, ${m.load.errors} errors (${m.load.firstError})` : ''}\n`)
      }
    }
    const rows = toRows(measured)
    const checkList = checks(rows)
    notes.push(
      `loopback, ${quick ? 'quick run (a tenth of the requests)' : 'full run'}; latency = request sent → last body byte, measured by an undici Pool in the bench process`,
      'added = p50/p99 minus the direct (mock) row of the same scenario; CPU = on-CPU time of the process under test (all threads, /proc) per request',
      `total bench time ${((performance.now() - started) / 1000).toFixed(0)} s`,
    )
    const table = markdown(rows, checkList, notes)
    process.stdout.write(`\n${table}\n`)
    const resultsDir = join(benchDir, 'results')
    mkdirSync(resultsDir, { recursive: true })
    const results = { at: new Date().toISOString(), node: process.version, quick, scenarios, rows, checks: checkList, notes, raw: measured }
    writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`)
    process.stderr.write(`bench: results written to ${join(resultsDir, 'latest.json')}\n`)
  } finally {
    await Promise.all(children.map((c) => c.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The gateway's ledger round trips to Redis so far (from /metrics); undefined for other targets. */
async function redisRoundTrips(target: Target): Promise<number | undefined> {
  if (!target.name.includes('pg+redis')) return undefined
  const response = await fetch(`${target.origin}/metrics`)
  const match = /^tollgate_redis_round_trips_total (\d+)/m.exec(await response.text())
  return match ? Number(match[1]) : undefined
}

function firstLines(text: string, count: number): string {
  return text.split('\n').filter(Boolean).slice(0, count).join(' | ')
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const profileArg = process.argv.find((a) => a.startsWith('--profile'))
const profiled = profileArg === '--profile=enforced' ? 'enforced' : profileArg === '--profile=bare' ? 'bare' : 'plain'
const main = profileArg === undefined ? benchmark() : profileGateway(profiled, { startMock, startBare, chatBody })
main.then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`)
    process.exit(1)
  },
)
