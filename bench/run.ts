/**
 * `npm run bench`: the mock upstream direct, the bare-inspect proxy (the floor: parse the request,
 * parse the usage) and the gateway, plain and enforced (wallet + hard budget), on SQLite and (when
 * DATABASE_URL and REDIS_URL are set) on Redis + PostgreSQL, measured in the same run on loopback
 * with realistic bodies (a system prompt and ~1 KiB), at concurrency 1 and 64, chat and stream.
 * Every proxy is its own process pinned to one CPU; the load generator (here) and the mock are
 * pinned to the other, so CPU µs per request of each proxy, and its ratio to bare-inspect, are
 * the figures to compare. With `--scale`: 4 gateway processes on Redis + PostgreSQL sharing one
 * wallet, the c=64 load spread round-robin over them, against the 1-process row.
 *
 *   npm run bench                       # the full run (a few minutes on 2 cores)
 *   npm run bench -- --quick            # a tenth of the requests: a smoke test
 *   npm run bench -- --rounds=N         # each scenario in N alternated rounds (default 3), medians reported
 *   npm run bench -- --scale            # also 4 gateway processes on Postgres + Redis against 1
 *   npm run bench -- --streams          # 2,000 concurrent 1-second streams: direct, bare-inspect, gateway
 *   npm run bench -- --profile[=plain|=postgres|=postgres-plain|=bare]   # CPU-profile the enforced gateway (or another) under load: hotspots
 *     [--concurrency=N] [--chunk-delay=MS]             # e.g. c=1, or long streams: --concurrency=500 --chunk-delay=50
 *   npm run bench -- --ab=REF [--mode=…] [--stream]      # this checkout against git REF, alternated in one run (bench/ab.ts)
 *   npm run bench -- exports [--quick]  # 1,000,000 events exported as CSV within 256 MiB RSS (bench/exports.ts)
 *   npm run bench -- --ingest           # POST /v1/events throughput of one process on SQLite (bench/ingest.ts)
 *   npm run bench -- --replay [--events=N]        # policy replay of 1,000,000 stored events (bench/replay.ts)
 *   npm run bench -- --usage-views [--events=N]   # the console's usage views over 1M events (usage-views.ts)
 *
 * Results: a markdown table on stdout and bench/results/latest.json.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import pg from 'pg'
import { allocateBenchWallet, benchConsumerKey, startGateway, type Gateway, type GatewayMode } from './gateway.js'
import { runLoad, type LoadResult } from './load.js'
import { cpuTimeNs, pinLoadSide, spawnChild, unexpectedExits, type Child } from './procs.js'
import { profileGateway, profileLoadOf } from './profile-run.js'
import { abBench } from './ab.js'
import { wholeOption } from './args.js'
import { streamsCase } from './streams.js'
import { benchIngest } from './ingest.js'
import { usageViewsBench } from './usage-views.js'
import {
  bareTarget,
  checks,
  directTarget,
  enforcedTarget,
  gatewayTarget,
  markdown,
  mergeRounds,
  postgresPlainTarget,
  postgresTarget,
  scaleMarkdown,
  scenarioLabel,
  toRows,
  toScaleRows,
  type Check,
  type Measured,
  type ScaleMeasured,
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
const withScale = process.argv.includes('--scale')
/**
 * Each scenario runs in this many rounds, every target once a round in an order reversed each
 * round, and each figure is the median of a target's rounds: a machine that drifts during the run
 * (shared VMs do, by a third within minutes) moves every target alike instead of the last ones.
 */
const rounds = wholeOption(process.argv, 'rounds', 3, 1)
/** Warm-up of the rounds after the first (the first warms each process up in full). */
const laterWarmupRequests = 500
const scale = quick ? 0.1 : 1
const runDurationMsMax = 30_000
/** Whatever happens, the bench ends (and kills its children) after this long. */
const benchDeadlineMs = 10 * 60_000
const fetchTimeoutMs = 10_000
const scaleProcesses = 4
const settleMs = 200
const tsxImport = ['--import', 'tsx']
const benchDir = fileURLToPath(new URL('.', import.meta.url))

/**
 * At c=1 each function runs once per request, so V8 takes thousands of requests to optimise the
 * gateway's code (a few hundred for bare-inspect's): measured after 500, the gateway's CPU per
 * request was still about 40% above its steady state. A gateway serves millions of calls; the
 * figure that matters is the warm one, so c=1 warms up as long as it measures, for every target.
 */
const scenarios: Scenario[] = [
  { stream: false, concurrency: 1, warmupRequests: 3_000, requests: 3_000 },
  { stream: true, concurrency: 1, warmupRequests: 3_000, requests: 3_000 },
  { stream: false, concurrency: 64, warmupRequests: 3_000, requests: 15_000 },
  { stream: true, concurrency: 64, warmupRequests: 3_000, requests: 15_000 },
].map((s) => ({ ...s, warmupRequests: Math.ceil(s.warmupRequests * scale), requests: Math.ceil(s.requests * scale) }))
/** The scale section measures the c=64 scenarios only: one client stream cannot load several processes. */
const scaleScenarios = scenarios.filter((s) => s.concurrency === 64)

/**
 * What a real client sends: a system prompt and about 1 KiB of user text, an output cap. A short
 * toy prompt would flatter every per-byte cost (parsing, copying, counting).
 */
const userText = (() => {
  const paragraph =
    "Here are the notes from this week's on-call shift. Tuesday: the nightly export to the data warehouse ran twice because " +
    'a retry fired before the first attempt had released its lock; totals were deduplicated by hand. Wednesday: latency on the ' +
    'search endpoint rose after a cache node was replaced; warming it by replaying the previous hour of queries fixed it. '
  let text = 'Turn these notes into three bullet points for the team update, one line each. '
  while (text.length < 1024) text += paragraph
  return text.slice(0, 1024)
})()

export function chatBody(stream: boolean, maxTokens = 256): string {
  return JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are the assistant of a platform engineering team. Answer precisely, in plain English, and keep it short.' },
      { role: 'user', content: userText },
    ],
    max_tokens: maxTokens,
    temperature: 0.2,
    // Sent by the client so every path carries the same bytes (the gateway would add it otherwise).
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  })
}

export async function startMock(cpus?: string, streamChunkDelayMs = 0): Promise<{ child: Child; url: string }> {
  const child = spawnChild('mock upstream', [...tsxImport, join(benchDir, 'mock-server.ts'), '0', String(streamChunkDelayMs)], process.env, cpus)
  return { child, url: await child.waitFor(/MOCK_URL=(\S+)/) }
}

async function startBare(mockUrl: string, nodeFlags: readonly string[] = [], cpus?: string): Promise<{ child: Child; url: string }> {
  const child = spawnChild('bare-inspect proxy', [...nodeFlags, ...tsxImport, join(benchDir, 'bare-proxy.ts'), mockUrl], process.env, cpus)
  return { child, url: await child.waitFor(/BARE_URL=(\S+)/) }
}

/** Warm-up, then the measured run; CPU of `pids` (the processes under test) and of the mock per measured request. */
async function measureLoad(
  origin: string | readonly string[],
  authorization: string,
  pids: readonly number[],
  scenario: Scenario,
  mockPid: number,
): Promise<{ load: LoadResult; cpuUsPerRequestByPid: number[]; mockCpuUsPerRequest: number }> {
  const spec = {
    origin,
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization },
    body: chatBody(scenario.stream),
    stream: scenario.stream,
    concurrency: scenario.concurrency,
    durationMsMax: runDurationMsMax,
  }
  await runLoad({ ...spec, requests: scenario.warmupRequests })
  await sleep(settleMs)
  const proxyCpu0 = pids.map(cpuTimeNs)
  const mockCpu0 = cpuTimeNs(mockPid)
  const load: LoadResult = await runLoad({ ...spec, requests: scenario.requests })
  // Let deferred work (usage-event batches, settles) finish so its CPU is charged to this run.
  await sleep(settleMs)
  const perRequestUs = (ns: number) => ns / 1000 / Math.max(1, load.requests)
  return {
    load,
    cpuUsPerRequestByPid: pids.map((pid, i) => perRequestUs(cpuTimeNs(pid) - proxyCpu0[i]!)),
    mockCpuUsPerRequest: perRequestUs(cpuTimeNs(mockPid) - mockCpu0),
  }
}

async function measure(target: Target, scenario: Scenario, mockPid: number): Promise<Measured> {
  const pids = target.pid === undefined ? [] : [target.pid]
  const { load, cpuUsPerRequestByPid, mockCpuUsPerRequest } = await measureLoad(target.origin, target.authorization, pids, scenario, mockPid)
  return { target: target.name, scenario, load, proxyCpuUsPerRequest: cpuUsPerRequestByPid[0], mockCpuUsPerRequest }
}

/** One request through each target before measuring: a wrong setup should fail loudly, not as a fast table of errors. */
async function smokeTest(target: Target): Promise<string> {
  const response = await fetch(`${target.origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: target.authorization },
    body: chatBody(false),
    signal: AbortSignal.timeout(fetchTimeoutMs),
  })
  const text = await response.text()
  if (response.status !== 200) throw new Error(`${target.name}: smoke request answered HTTP ${response.status}: ${text.slice(0, 500)}`)
  const cost = response.headers.get('x-tollgate-cost-usd')
  const reserved = response.headers.get('x-tollgate-cost-reserved-usd')
  return cost === null ? '' : `cost ${cost} USD${reserved === null ? '' : `, reserved ${reserved} USD`}`
}

async function tryGateway(
  mode: GatewayMode,
  mockUrl: string,
  dir: string,
  notes: string[],
  redisPrefix: string,
  cpus: string | undefined,
): Promise<Gateway | undefined> {
  if (mode.startsWith('postgres')) {
    const postgresUrl = process.env.DATABASE_URL
    const redisUrl = process.env.REDIS_URL
    if (!postgresUrl || !redisUrl) {
      notes.push(`gateway on Postgres + Redis (${mode}): skipped (set DATABASE_URL and REDIS_URL to include it)`)
      return undefined
    }
    try {
      // A schema and key prefix per gateway: the plain one must not see (or undeclare) the enforced one's budget.
      const schemaUrl = await freshPostgresSchema(postgresUrl, mode)
      return await startGateway({ mode, mockUrl, dir, postgresUrl: schemaUrl, redisUrl, cpus, env: { TOLLGATE_REDIS_PREFIX: `${redisPrefix}${mode}:` } })
    } catch (error) {
      notes.push(`gateway on Postgres + Redis (${mode}): did not start, skipped — ${firstLines((error as Error).message, 6)}`)
      return undefined
    }
  }
  return startGateway({ mode, mockUrl, dir, cpus })
}

const benchSchemas: string[] = []

/** Creates `tg_bench_<mode>_<random>` and returns a URL whose connections use it; dropped at the end (dropBenchSchemas). */
async function freshPostgresSchema(url: string, mode: string): Promise<string> {
  const schema = `tg_bench_${mode.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`CREATE SCHEMA ${schema}`)
  } finally {
    await client.end()
  }
  benchSchemas.push(schema)
  const withSchema = new URL(url)
  withSchema.searchParams.set('options', `-c search_path=${schema}`)
  return withSchema.toString()
}

async function dropBenchSchemas(): Promise<void> {
  const url = process.env.DATABASE_URL
  if (!url || benchSchemas.length === 0) return
  const client = new pg.Client({ connectionString: url })
  try {
    await client.connect()
    for (const schema of benchSchemas.splice(0)) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  } catch (error) {
    process.stderr.write(`bench: could not drop the bench schemas: ${(error as Error).message}\n`)
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * `scaleProcesses` gateways on the `postgres` mode's backend, with a Redis key prefix of their own
 * (no keys shared with other runs); the bench wallet is allocated once, through the first, when
 * all are up. Started one after the other (the first one migrates the schema). Each child is
 * pushed to `children` as soon as it is up, so the caller stops it whatever happens after (a
 * child that fails to start is stopped by startGateway).
 */
async function startScaleGateways(mockUrl: string, dir: string, redisPrefix: string, children: Child[]): Promise<Gateway[]> {
  const postgresUrl = process.env.DATABASE_URL
  const redisUrl = process.env.REDIS_URL
  if (!postgresUrl || !redisUrl) throw new Error('scale section: DATABASE_URL and REDIS_URL are required')
  const gateways: Gateway[] = []
  for (let i = 1; i <= scaleProcesses; i += 1) {
    const gateway = await startGateway({
      mode: 'postgres',
      mockUrl,
      dir,
      postgresUrl,
      redisUrl,
      instance: `scale-${i}`,
      env: { TOLLGATE_REDIS_PREFIX: redisPrefix },
      allocateWallet: false,
    })
    children.push(gateway.child)
    gateways.push(gateway)
  }
  await allocateBenchWallet(gateways[0]!.url)
  return gateways
}

async function measureScale(gateways: readonly Gateway[], oneProcessScenario: Scenario, mockPid: number): Promise<ScaleMeasured> {
  // Each process gets the warm-up the single process got (its JIT has as much to go on).
  const scenario = { ...oneProcessScenario, warmupRequests: oneProcessScenario.warmupRequests * gateways.length }
  const origins = gateways.map((g) => g.url)
  const tripsBefore = await sumRedisRoundTrips(origins)
  const { load, cpuUsPerRequestByPid, mockCpuUsPerRequest } = await measureLoad(
    origins,
    `Bearer ${benchConsumerKey}`,
    gateways.map((g) => g.child.pid),
    scenario,
    mockPid,
  )
  const tripsAfter = await sumRedisRoundTrips(origins)
  return {
    scenario,
    processes: gateways.length,
    load,
    cpuUsPerRequestByProcess: cpuUsPerRequestByPid,
    mockCpuUsPerRequest,
    redisRoundTripsPerRequest:
      tripsBefore === undefined || tripsAfter === undefined ? undefined : (tripsAfter - tripsBefore) / (load.requests + scenario.warmupRequests),
  }
}

/** The scale section (DATABASE_URL and REDIS_URL set, and the 1-process pg+redis row measured). */
async function runScaleSection(mock: { child: Child; url: string }, dir: string, notes: string[]): Promise<ScaleMeasured[]> {
  const redisPrefix = `bench-scale-${randomBytes(4).toString('hex')}:`
  const scaleChildren: Child[] = []
  try {
    let gateways: Gateway[]
    try {
      gateways = await startScaleGateways(mock.url, dir, redisPrefix, scaleChildren)
    } catch (error) {
      notes.push(`scale section (${scaleProcesses} gateway processes on Postgres + Redis): did not start, skipped — ${firstLines((error as Error).message, 6)}`)
      return []
    }
    for (const [i, gateway] of gateways.entries()) {
      const target: Target = { name: `${postgresTarget} #${i + 1}`, origin: gateway.url, authorization: `Bearer ${benchConsumerKey}`, pid: gateway.child.pid }
      const detail = await smokeTest(target)
      process.stderr.write(`bench: ${target.name} ready at ${target.origin}${detail ? ` (${detail})` : ''}\n`)
    }
    const measured: ScaleMeasured[] = []
    for (const scenario of scaleScenarios) {
      process.stderr.write(`bench: ${scenarioLabel(scenario)} → ${scaleProcesses} × ${postgresTarget} (round-robin) … `)
      const m = await measureScale(gateways, scenario, mock.child.pid)
      measured.push(m)
      const cpu = m.cpuUsPerRequestByProcess.reduce((sum, v) => sum + v, 0)
      process.stderr.write(
        `${m.load.requestsPerS.toFixed(0)} req/s, p50 ${m.load.latencyMs.p50.toFixed(3)} ms, ${cpu.toFixed(0)} µs CPU/req${m.load.errors ? `, ${m.load.errors} errors (${m.load.firstError})` : ''}\n`,
      )
    }
    return measured
  } finally {
    await Promise.all(scaleChildren.map((c) => c.stop()))
    await deleteRedisKeys(redisPrefix)
  }
}

async function benchmark(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'))
  // Also when a signal or the deadline ends the run before the `finally` below.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  const notes: string[] = []
  const children: Child[] = []
  const started = performance.now()
  // Keys of its own, deleted at the end, so runs never share or leave Redis state behind.
  const oneProcessRedisPrefix = `bench-${randomBytes(4).toString('hex')}:`
  const pinning = pinLoadSide()
  notes.push(
    pinning
      ? `pinned: each proxy to CPU ${pinning.target}, the load generator and the mock upstream to CPU ${pinning.load} (taskset)`
      : 'not pinned (fewer than 2 CPUs, no taskset, or TOLLGATE_BENCH_PIN=0): CPU per request is noisier',
  )
  try {
    const mock = await startMock(pinning?.load)
    children.push(mock.child)
    const bare = await startBare(mock.url, [], pinning?.target)
    children.push(bare.child)
    const targets: Target[] = [
      { name: directTarget, origin: mock.url, authorization: 'Bearer sk-mock', pid: undefined },
      { name: bareTarget, origin: bare.url, authorization: 'Bearer sk-mock', pid: bare.child.pid },
    ]
    const gatewayModes: Array<[GatewayMode, string]> = [
      ['plain', gatewayTarget],
      ['enforced', enforcedTarget],
      ['postgres-plain', postgresPlainTarget],
      ['postgres', postgresTarget],
    ]
    for (const [mode, name] of gatewayModes) {
      const gateway = await tryGateway(mode, mock.url, dir, notes, oneProcessRedisPrefix, pinning?.target)
      if (!gateway) continue
      children.push(gateway.child)
      targets.push({ name, origin: gateway.url, authorization: `Bearer ${benchConsumerKey}`, pid: gateway.child.pid })
    }
    for (const target of targets) {
      const detail = await smokeTest(target)
      process.stderr.write(`bench: ${target.name} ready at ${target.origin}${detail ? ` (${detail})` : ''}\n`)
    }

    const measured: Measured[] = []
    const tripChecks: Check[] = []
    for (const scenario of scenarios) {
      // Each target's share of the scenario in `rounds` turns, the order reversed every round.
      const perRound = { ...scenario, requests: Math.ceil(scenario.requests / rounds) }
      const byTarget = new Map<string, { rounds: Measured[]; trips: number | undefined; requests: number }>()
      for (let round = 0; round < rounds; round += 1) {
        const order = round % 2 === 0 ? targets : [...targets].reverse()
        // Later rounds only refill the connections: the processes are warm from the first.
        const roundScenario = round === 0 ? perRound : { ...perRound, warmupRequests: Math.min(scenario.warmupRequests, laterWarmupRequests) }
        for (const target of order) {
          process.stderr.write(`bench: ${scenarioLabel(scenario)} → ${target.name} (round ${round + 1}/${rounds}) … `)
          const tripsBefore = await redisRoundTrips(target)
          const m = await measure(target, roundScenario, mock.child.pid)
          const tripsAfter = await redisRoundTrips(target)
          const seen = byTarget.get(target.name) ?? { rounds: [], trips: 0, requests: 0 }
          seen.rounds.push(m)
          seen.trips = seen.trips === undefined || tripsBefore === undefined || tripsAfter === undefined ? undefined : seen.trips + tripsAfter - tripsBefore
          seen.requests += m.load.requests + roundScenario.warmupRequests
          byTarget.set(target.name, seen)
          process.stderr.write(
            `${m.load.requestsPerS.toFixed(0)} req/s, p50 ${m.load.latencyMs.p50.toFixed(3)} ms${m.load.errors ? `, ${m.load.errors} errors (${m.load.firstError})` : ''}\n`,
          )
        }
      }
      for (const target of targets) {
        const seen = byTarget.get(target.name)!
        measured.push(mergeRounds(seen.rounds, scenario))
        if (seen.trips === undefined) continue
        const perRequest = seen.trips / seen.requests
        notes.push(`${target.name}, ${scenarioLabel(scenario)}: ${perRequest.toFixed(2)} Redis round trips per request`)
        // Enforced: one to reserve, one to settle. The counter also holds the background work
        // (journal drain, expiry sweep), a few trips per second whatever the load: judged at
        // c=64, where that is a few hundredths per call, and only noted at c=1.
        if (target.name === postgresTarget && scenario.concurrency > 1) {
          tripChecks.push({
            name: `${target.name}, ${scenarioLabel(scenario)}: Redis round trips per call`,
            target: '2 (reserve, settle)',
            actual: perRequest.toFixed(2),
            pass: perRequest >= 2 && perRequest < 2.1,
          })
        }
      }
    }
    const rows = toRows(measured)

    // Scale section: only next to a measured 1-process pg+redis gateway. The processes measured
    // above are stopped first, so the 4 gateways have the cores to themselves (the mock stays).
    let scaleMeasured: ScaleMeasured[] = []
    if (!withScale) {
      notes.push(`scale section (${scaleProcesses} gateway processes on Postgres + Redis): not run (\`npm run bench -- --scale\`)`)
    } else if (targets.some((t) => t.name === postgresTarget)) {
      await Promise.all(children.filter((c) => c !== mock.child).map((c) => c.stop()))
      scaleMeasured = await runScaleSection(mock, dir, notes)
    } else {
      notes.push(
        `scale section (${scaleProcesses} gateway processes on Postgres + Redis): skipped (needs the pg+redis gateway: set DATABASE_URL and REDIS_URL)`,
      )
    }
    const scaleRows = toScaleRows(scaleMeasured, rows)
    for (const r of scaleRows) {
      const byProcess = r.cpuUsPerRequestByProcess.map((v) => v.toFixed(0)).join(' + ')
      const spread = r.requestsPerOrigin ? `; requests per process ${r.requestsPerOrigin.join(' / ')}` : ''
      const trips = r.redisRoundTripsPerRequest === undefined ? '' : `; ${r.redisRoundTripsPerRequest.toFixed(2)} Redis round trips per request`
      notes.push(`${r.processes} × ${postgresTarget}, ${r.scenario}: gateway CPU µs/req ${byProcess}${spread}${trips}`)
    }
    const checkList = [...checks(rows), ...tripChecks]
    for (const death of unexpectedExits()) {
      process.stderr.write(`bench: ${death}\n`)
      notes.push(`${firstLines(death, 1)} — figures after that are not to be trusted`)
    }
    notes.push(
      `loopback, ${quick ? 'quick run (a tenth of the requests)' : 'full run'}; latency = request sent → last body byte, measured by an undici Pool in the bench process`,
      'added = p50/p99 minus the direct (mock) row of the same scenario; CPU = on-CPU time of the process under test (all threads, /proc) per request',
      `total bench time ${((performance.now() - started) / 1000).toFixed(0)} s`,
    )
    const table = markdown(rows, checkList, notes, [scaleMarkdown(scaleRows, availableParallelism())])
    process.stdout.write(`\n${table}\n`)
    const resultsDir = join(benchDir, 'results')
    mkdirSync(resultsDir, { recursive: true })
    const results = {
      at: new Date().toISOString(),
      node: process.version,
      cores: availableParallelism(),
      quick,
      scenarios,
      rows,
      scale: scaleRows,
      checks: checkList,
      notes,
      raw: measured,
      rawScale: scaleMeasured,
    }
    writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`)
    process.stderr.write(`bench: results written to ${join(resultsDir, 'latest.json')}\n`)
  } finally {
    await Promise.all(children.map((c) => c.stop()))
    await deleteRedisKeys(oneProcessRedisPrefix)
    await dropBenchSchemas()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The gateway's ledger round trips to Redis so far (from /metrics); undefined for other targets. */
async function redisRoundTrips(target: Target): Promise<number | undefined> {
  if (!target.name.includes('pg+redis')) return undefined
  return redisRoundTripsAt(target.origin)
}

/** A side figure: tried twice, and a failure leaves it out (with a warning) rather than end the run. */
async function redisRoundTripsAt(origin: string): Promise<number | undefined> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const response = await fetch(`${origin}/metrics`, { signal: AbortSignal.timeout(fetchTimeoutMs) })
      const match = /^tollgate_redis_round_trips_total (\d+)/m.exec(await response.text())
      return match ? Number(match[1]) : undefined
    } catch (error) {
      const cause = (error as Error & { cause?: unknown }).cause
      const message = `GET ${origin}/metrics: ${(error as Error).message}${cause === undefined ? '' : ` (${String(cause)})`}`
      if (attempt >= 2) {
        process.stderr.write(`\nbench: ${message}; Redis round trips left out\n`)
        return undefined
      }
      await sleep(settleMs)
    }
  }
}

async function sumRedisRoundTrips(origins: readonly string[]): Promise<number | undefined> {
  const counts = await Promise.all(origins.map(redisRoundTripsAt))
  return counts.some((c) => c === undefined) ? undefined : counts.reduce<number>((sum, c) => sum + (c ?? 0), 0)
}

/** Drops the scale run's Redis keys (PostgreSQL keeps the record); best effort, bounded in time. */
async function deleteRedisKeys(prefix: string): Promise<void> {
  const url = process.env.REDIS_URL
  if (!url) return
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000, enableOfflineQueue: false })
  redis.on('error', () => {})
  const work = (async () => {
    await redis.connect()
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== '0')
  })()
  work.catch(() => {}) // a late failure after the time limit is of no interest
  try {
    await Promise.race([work, sleep(5_000).then(() => Promise.reject(new Error('timed out')))])
  } catch (error) {
    process.stderr.write(`bench: could not delete the Redis keys ${prefix}*: ${(error as Error).message}\n`)
  } finally {
    redis.disconnect()
  }
}

function firstLines(text: string, count: number): string {
  return text.split('\n').filter(Boolean).slice(0, count).join(' | ')
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const profileArg = process.argv.find((a) => a.startsWith('--profile'))
const profiledChoices = {
  '--profile': 'enforced',
  '--profile=enforced': 'enforced',
  '--profile=plain': 'plain',
  '--profile=postgres': 'postgres',
  '--profile=postgres-plain': 'postgres-plain',
  '--profile=bare': 'bare',
} as const
const profiled = profiledChoices[(profileArg ?? '--profile') as keyof typeof profiledChoices]
if (profiled === undefined)
  throw new Error(`unknown ${profileArg}: use --profile, --profile=plain, --profile=postgres, --profile=postgres-plain or --profile=bare`)
const usageViews = process.argv.includes('--usage-views')
/** Writing 1M events into two stores takes a while on a shared 2-core machine. */
const deadlineMs = usageViews ? 6 * benchDeadlineMs : benchDeadlineMs
// A last resort: a hung run ends anyway; exiting kills every child (procs.ts).
setTimeout(() => {
  process.stderr.write(`bench: still running after ${deadlineMs / 1000} s; giving up\n`)
  process.exit(1)
}, deadlineMs).unref()
// `npm run bench -- exports`: the export memory benchmark alone (bench/exports.ts).
const main = usageViews
  ? usageViewsBench().then((ok) => {
      if (!ok) throw new Error(`a usage view answered over its bound`)
    })
  : process.argv.includes('exports')
    ? import('./exports.js').then((m) => m.exportsBenchmark())
    : process.argv.includes('--ingest')
      ? benchIngest({ quick })
      : process.argv.includes('--replay')
        ? import('./replay.js').then((m) => m.replayBench(process.argv))
        : process.argv.some((a) => a.startsWith('--ab='))
          ? abBench(process.argv, { startMock, startBare, chatBody, freshPostgresSchema, deleteRedisKeys }).finally(dropBenchSchemas)
          : profileArg !== undefined
            ? profileGateway(profiled, { startMock, startBare, chatBody, freshPostgresSchema, deleteRedisKeys }, profileLoadOf(process.argv)).finally(
                dropBenchSchemas,
              )
            : process.argv.includes('--streams')
              ? streamsCase({ startMock, startBare, chatBody })
              : benchmark()
main.then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`)
    // A child that died under load is the likely cause: say which.
    for (const death of unexpectedExits()) process.stderr.write(`bench: ${death}\n`)
    process.exit(1)
  },
)
