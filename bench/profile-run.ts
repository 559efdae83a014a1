/**
 * `npm run bench -- --profile[=plain|=postgres|=postgres-plain|=bare]`: the enforced gateway on
 * SQLite (or plain, or enforced or plain on Redis + PostgreSQL, or the bare-inspect proxy, to compare)
 * under `node --cpu-prof` while the bench
 * load runs through it, then a summary of where its CPU went while the load ran. The bare proxy
 * is profiled under the same load after it, and the two are compared per request by bucket. The
 * raw profiles are kept in bench/results/ for Chrome DevTools or speedscope.
 */
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchConsumerKey, startGateway, type GatewayMode } from './gateway.js'
import { wholeOption } from './args.js'
import { runLoad } from './load.js'
import { pinLoadSide, type Child } from './procs.js'
import { formatComparison, formatSummary, monotonicUs, summariseProfile, type CpuProfile, type ProfileSummary } from './profile.js'

export interface ProfileDeps {
  startMock(cpus?: string, streamChunkDelayMs?: number): Promise<{ child: Child; url: string }>
  /** The bare proxy, for a profile to compare the gateway's with. */
  startBare(mockUrl: string, nodeFlags: readonly string[], cpus?: string): Promise<{ child: Child; url: string }>
  chatBody(stream: boolean): string
  /** A PostgreSQL URL on a schema of its own, for a postgres mode (dropped when the bench ends). */
  freshPostgresSchema(url: string, mode: string): Promise<string>
  /** Drops a profiled gateway's Redis keys once it stopped. */
  deleteRedisKeys(prefix: string): Promise<void>
}

export type ProfiledSubject = GatewayMode | 'bare'

const phases = [
  { name: 'non-stream', stream: false, requests: 20_000 },
  { name: 'stream', stream: true, requests: 10_000 },
] as const
const phaseDurationMsMax = 60_000
const warmUpRequests = 3_000

/**
 * How the load looks. `--concurrency=1` shows what a lone call costs (no group commit to share);
 * `--chunk-delay=50 --concurrency=500` shows long streams, where the cost per event dominates.
 */
export interface ProfileLoad {
  readonly concurrency: number
  /** Milliseconds the mock waits between SSE events (0: a stream arrives at once). */
  readonly chunkDelayMs: number
}

export function profileLoadOf(argv: readonly string[]): ProfileLoad {
  return { concurrency: wholeOption(argv, 'concurrency', 64, 1), chunkDelayMs: wholeOption(argv, 'chunk-delay', 0, 0) }
}

/**
 * Redis + PostgreSQL from DATABASE_URL and REDIS_URL for the postgres modes, with a schema and a
 * key prefix of the profile's own: a profiled gateway never sees another run's budgets and
 * leaves nothing behind (run.ts drops the schema, profileOnce the keys).
 */
async function storeOf(
  mode: GatewayMode,
  deps: ProfileDeps,
): Promise<{ gateway: { postgresUrl?: string; redisUrl?: string; env?: Record<string, string> }; redisPrefix?: string }> {
  if (!mode.startsWith('postgres')) return { gateway: {} }
  const postgresUrl = process.env.DATABASE_URL
  const redisUrl = process.env.REDIS_URL
  if (!postgresUrl || !redisUrl) throw new Error(`--profile=${mode} needs DATABASE_URL and REDIS_URL`)
  const redisPrefix = `bench-prof-${randomBytes(4).toString('hex')}:`
  return {
    gateway: { postgresUrl: await deps.freshPostgresSchema(postgresUrl, `prof_${mode}`), redisUrl, env: { TOLLGATE_REDIS_PREFIX: redisPrefix } },
    redisPrefix,
  }
}

/** One process per phase, so each profile shows one kind of traffic. */
async function profileOnce(subject: ProfiledSubject, phase: Phase, run: Run): Promise<Profiled> {
  const { deps, load, mock, dir, pinning, resultsDir } = run
  const name = subject === 'bare' ? 'bare proxy' : `gateway (${subject})`
  const profDir = join(dir, `prof-${subject}-${phase.name}`)
  const nodeFlags = ['--cpu-prof', `--cpu-prof-dir=${profDir}`]
  const store = subject === 'bare' ? undefined : await storeOf(subject, deps)
  const target =
    subject === 'bare'
      ? { ...(await deps.startBare(mock.url, nodeFlags, pinning?.target)), authorization: 'Bearer sk-mock' }
      : {
          ...(await startGateway({ mode: subject, mockUrl: mock.url, dir, nodeFlags, cpus: pinning?.target, ...store?.gateway })),
          authorization: `Bearer ${benchConsumerKey}`,
        }
  process.stderr.write(`bench: profiling ${name} — ${phase.name} c=${load.concurrency}${delayNoteOf(load)} … `)
  const loadOf = (requests: number) =>
    runLoad({
      origin: target.url,
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: target.authorization },
      body: deps.chatBody(phase.stream),
      stream: phase.stream,
      concurrency: load.concurrency,
      requests,
      durationMsMax: phaseDurationMsMax,
    })
  let result: Awaited<ReturnType<typeof loadOf>>
  let window: { fromUs: number; toUs: number }
  try {
    // Outside the window: modules the gateway loads once it listens (the tokenizer, undici) and
    // V8's first optimisations would otherwise be counted against the requests.
    await loadOf(warmUpRequests)
    const fromUs = monotonicUs()
    result = await loadOf(phase.requests)
    window = { fromUs, toUs: monotonicUs() }
  } finally {
    // SIGTERM: the process shuts down and exits normally, which is when V8 writes the profile.
    // Its keys go even when the load failed.
    await target.child.stop(15_000)
    if (store?.redisPrefix !== undefined) await deps.deleteRedisKeys(store.redisPrefix)
  }
  process.stderr.write(`${result.requestsPerS.toFixed(0)} req/s, ${result.errors} errors\n`)
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error(`no .cpuprofile written in ${profDir}; output:\n${target.child.output()}`)
  const kept = join(resultsDir, `${subject === 'bare' ? 'bare' : `gateway-${subject}`}-${phase.name}.cpuprofile`)
  copyFileSync(join(profDir, file), kept)
  const summary = summariseProfile(JSON.parse(readFileSync(kept, 'utf8')) as CpuProfile, 15, window)
  const title = `${name}, ${phase.name} c=${load.concurrency}${delayNoteOf(load)}, ${result.requests} requests (samples while the load ran) — raw: ${kept}`
  return { summary, requests: result.requests, text: formatSummary(summary, title) }
}

type Phase = (typeof phases)[number]

interface Profiled {
  readonly summary: ProfileSummary
  readonly requests: number
  readonly text: string
}

interface Run {
  readonly deps: ProfileDeps
  readonly load: ProfileLoad
  readonly mock: { child: Child; url: string }
  readonly dir: string
  readonly pinning: ReturnType<typeof pinLoadSide>
  readonly resultsDir: string
}

const delayNoteOf = (load: ProfileLoad) => (load.chunkDelayMs > 0 ? `, ${load.chunkDelayMs} ms between stream events` : '')

/**
 * Each phase profiles the subject, then (for a gateway) the bare proxy under the same load, and
 * prints the gateway's hotspots and a per-request comparison of the two by bucket.
 */
export async function profileGateway(mode: ProfiledSubject, deps: ProfileDeps, load: ProfileLoad = { concurrency: 64, chunkDelayMs: 0 }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-prof-'))
  const pinning = pinLoadSide()
  const mock = await deps.startMock(pinning?.load, load.chunkDelayMs)
  const resultsDir = fileURLToPath(new URL('results/', import.meta.url))
  mkdirSync(resultsDir, { recursive: true })
  const run: Run = { deps, load, mock, dir, pinning, resultsDir }
  const sections: string[] = []
  try {
    for (const phase of phases) {
      const profiled = await profileOnce(mode, phase, run)
      sections.push(profiled.text)
      if (mode === 'bare') continue
      const bare = await profileOnce('bare', phase, run)
      const title = `gateway (${mode}) against the bare proxy, ${phase.name} c=${load.concurrency}${delayNoteOf(load)}`
      sections.push(formatComparison(profiled.summary, profiled.requests, bare.summary, bare.requests, title))
    }
    const text = sections.join('\n\n')
    writeFileSync(join(resultsDir, `profile-${mode}.md`), `${text}\n`)
    process.stdout.write(`\n${text}\n`)
  } finally {
    await mock.child.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
