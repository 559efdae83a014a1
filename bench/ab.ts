/**
 * `npm run bench -- --ab=REF`: this checkout's gateway against the one built from git REF (a
 * commit, a branch, `HEAD~1`), both running at once, with bare-inspect beside them. The same load
 * goes through the three in turn, in an order that reverses every round, and the table shows each
 * one's median CPU per request and throughput. A full `npm run bench` compares ratios from runs
 * minutes apart, which a shared machine can move by more than a change is worth; alternating
 * within one run cancels that drift, so a few percent can be told from noise.
 *
 *   npm run bench -- --ab=HEAD~1                      # enforced on SQLite, chat, c=64
 *   npm run bench -- --ab=main --mode=postgres --stream --rounds=7 --requests=5000
 *   npm run bench -- --ab=main --stream --chunk-delay=50 --concurrency=500 --requests=1500   # long streams
 *   npm run bench -- --ab=HEAD --node-flags=--max-semi-space-size=32   # what a node flag is worth
 *
 * Each gateway's garbage-collection time per request is read from its `/metrics`
 * (`nodejs_gc_duration_seconds`; '–' for a ref from before it was reported).
 *
 * On Redis + PostgreSQL, the CPU the servers spend per request (every `redis-server` process, and
 * every `postgres` one, on this machine, journal drain included) is shown too, each server apart:
 * on one machine they share the cores with the gateway.
 *
 * REF is checked out into a temporary git worktree (its build uses this checkout's node_modules);
 * the worktree is removed at the end.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchConsumerKey, startGateway, type Gateway, type GatewayMode } from './gateway.js'
import { optionValue, wholeOption } from './args.js'
import { runLoad } from './load.js'
import { cpuTimeBetweenNs, cpuTimeNs, cpuTimeOfNamedNs, pinLoadSide, type Child } from './procs.js'
import { median } from './report.js'

export interface AbDeps {
  startMock(cpus?: string, streamChunkDelayMs?: number): Promise<{ child: Child; url: string }>
  startBare(mockUrl: string, nodeFlags: readonly string[], cpus?: string): Promise<{ child: Child; url: string }>
  chatBody(stream: boolean): string
  /** A PostgreSQL URL on a schema of its own, for a postgres mode (each gateway needs one). */
  freshPostgresSchema(url: string, mode: string): Promise<string>
  /** Drops the run's Redis keys at the end. */
  deleteRedisKeys(prefix: string): Promise<void>
}

interface Options {
  readonly ref: string
  readonly mode: GatewayMode
  readonly stream: boolean
  readonly concurrency: number
  readonly rounds: number
  readonly requests: number
  /** Milliseconds the mock waits between SSE events (`--chunk-delay`, with `--stream`: long streams). */
  readonly chunkDelayMs: number
  /** Node flags for this checkout's gateway only (`--node-flags`): with `--ab=HEAD`, what a flag is worth. */
  readonly nodeFlags: readonly string[]
}

const modes: readonly GatewayMode[] = ['plain', 'enforced', 'postgres-plain', 'postgres']
const settleMs = 150
const loadDurationMsMax = 60_000

function optionsOf(argv: readonly string[]): Options {
  const value = (name: string) => optionValue(argv, name)
  const ref = value('ab')
  if (!ref) throw new Error('--ab needs a git ref: --ab=HEAD~1')
  const mode = (value('mode') ?? 'enforced') as GatewayMode
  if (!modes.includes(mode)) throw new Error(`--mode: one of ${modes.join(', ')}`)
  const positive = (name: string, fallback: number) => wholeOption(argv, name, fallback, 1)
  return {
    ref,
    mode,
    stream: argv.includes('--stream'),
    concurrency: positive('concurrency', 64),
    rounds: positive('rounds', 5),
    requests: positive('requests', 8_000),
    chunkDelayMs: wholeOption(argv, 'chunk-delay', 0, 0),
    nodeFlags:
      optionValue(argv, 'node-flags')
        ?.split(' ')
        .filter((f) => f.length > 0) ?? [],
  }
}

/** REF built in a temporary worktree; returns its CLI entry point and a cleanup. */
function buildRef(ref: string): { cliPath: string; label: string; remove: () => void } {
  const repo = fileURLToPath(new URL('..', import.meta.url))
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim()
  const commit = git('rev-parse', '--verify', `${ref}^{commit}`)
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-ab-'))
  let removed = false
  const remove = () => {
    if (removed) return
    removed = true
    try {
      git('worktree', 'remove', '--force', dir)
    } catch {
      rmSync(dir, { recursive: true, force: true })
      git('worktree', 'prune')
    }
  }
  // Also when the bench's deadline or a signal ends the process (its exit handlers run).
  process.once('exit', remove)
  try {
    git('worktree', 'add', '--detach', dir, commit)
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'))
    process.stderr.write(`bench: building ${ref} (${commit.slice(0, 10)}) in ${dir} …\n`)
    execFileSync(join(repo, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.build.json')], { stdio: 'inherit' })
  } catch (error) {
    remove()
    throw error
  }
  return { cliPath: join(dir, 'dist/cli/main.js'), label: `${ref} (${commit.slice(0, 10)})`, remove }
}

/** The servers of the Redis + PostgreSQL modes, when they run on this machine: their CPU per request is reported too, each apart. */
const REDIS_SERVER = ['redis-server']
const POSTGRES_SERVER = ['postgres']

/**
 * The seconds a gateway has spent in garbage collection (every kind), from its `/metrics`; undefined
 * for a build that does not report them.
 */
async function gcSeconds(url: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text()
  let total: number | undefined
  for (const [, seconds] of text.matchAll(/^nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm)) total = (total ?? 0) + Number(seconds)
  return total
}

/** The median p50 (ms) one target adds over another's, in µs with its sign. */
function addedMicros(p50Ms: readonly number[], baseP50Ms: readonly number[]): string {
  const micros = Math.round((median(p50Ms) - median(baseP50Ms)) * 1000)
  return `${micros < 0 ? '−' : '+'}${Math.abs(micros)} µs`
}

export async function abBench(argv: readonly string[], deps: AbDeps): Promise<void> {
  const options = optionsOf(argv)
  const onPostgres = options.mode.startsWith('postgres')
  const postgresUrl = process.env.DATABASE_URL
  const redisUrl = process.env.REDIS_URL
  if (onPostgres && (!postgresUrl || !redisUrl)) throw new Error(`--mode=${options.mode} needs DATABASE_URL and REDIS_URL`)
  const built = buildRef(options.ref)
  const children: Child[] = []
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-ab-'))
  const redisPrefix = `bench-ab-${Date.now()}:`
  try {
    const pinning = pinLoadSide()
    const mock = await deps.startMock(pinning?.load, options.chunkDelayMs)
    children.push(mock.child)
    const bare = await deps.startBare(mock.url, [], pinning?.target)
    children.push(bare.child)
    const gateway = async (name: string, cliPath?: string, nodeFlags: readonly string[] = []): Promise<Gateway> => {
      const store = onPostgres
        ? {
            postgresUrl: await deps.freshPostgresSchema(postgresUrl!, `ab_${name}`),
            redisUrl: redisUrl!,
            env: { TOLLGATE_REDIS_PREFIX: `${redisPrefix}${name}:` },
          }
        : {}
      const dirOf = mkdtempSync(join(dir, `${name}-`))
      const started = await startGateway({
        mode: options.mode,
        mockUrl: mock.url,
        dir: dirOf,
        cpus: pinning?.target,
        instance: name,
        nodeFlags,
        ...(cliPath && { cliPath }),
        ...store,
      })
      children.push(started.child)
      return started
    }
    const base = await gateway('base', built.cliPath)
    const head = await gateway('head', undefined, options.nodeFlags)
    /** One target of the alternation, with the figures each round adds. */
    const target = (name: string, url: string, authorization: string, pid: number) => ({
      name,
      url,
      authorization,
      pid,
      cpu: [] as number[],
      redis: [] as number[],
      postgres: [] as number[],
      gc: [] as number[],
      rps: [] as number[],
      p50: [] as number[],
    })
    const rows = [
      target('bare-inspect', bare.url, 'Bearer sk-mock', bare.child.pid),
      target(built.label, base.url, `Bearer ${benchConsumerKey}`, base.child.pid),
      target(
        options.nodeFlags.length > 0 ? `this checkout, ${options.nodeFlags.join(' ')}` : 'this checkout',
        head.url,
        `Bearer ${benchConsumerKey}`,
        head.child.pid,
      ),
    ]
    const [bareRow, baseRow, headRow] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]]
    const body = deps.chatBody(options.stream)
    for (let round = 0; round < options.rounds; round++) {
      for (const row of round % 2 === 0 ? rows : [...rows].reverse()) {
        const spec = {
          origin: row.url,
          path: '/v1/chat/completions',
          headers: { 'content-type': 'application/json', authorization: row.authorization },
          body,
          stream: options.stream,
          concurrency: options.concurrency,
          durationMsMax: loadDurationMsMax,
        }
        await runLoad({ ...spec, requests: Math.ceil(options.requests / 5) })
        await sleep(settleMs)
        const gc0 = row === bareRow ? undefined : await gcSeconds(row.url)
        const cpu0 = cpuTimeNs(row.pid)
        const redis0 = onPostgres ? cpuTimeOfNamedNs(REDIS_SERVER) : undefined
        const postgres0 = onPostgres ? cpuTimeOfNamedNs(POSTGRES_SERVER) : undefined
        const load = await runLoad({ ...spec, requests: options.requests })
        // Deferred work (group commits, the journal drain) is charged to the run that caused it.
        await sleep(settleMs)
        if (load.errors > 0) throw new Error(`${row.name}: ${load.errors} errors (${load.firstError})`)
        row.cpu.push((cpuTimeNs(row.pid) - cpu0) / 1000 / load.requests)
        const gc1 = gc0 === undefined ? undefined : await gcSeconds(row.url)
        if (gc0 !== undefined && gc1 !== undefined) row.gc.push(((gc1 - gc0) * 1e6) / load.requests)
        if (redis0) row.redis.push(cpuTimeBetweenNs(redis0, cpuTimeOfNamedNs(REDIS_SERVER)) / 1000 / load.requests)
        if (postgres0) row.postgres.push(cpuTimeBetweenNs(postgres0, cpuTimeOfNamedNs(POSTGRES_SERVER)) / 1000 / load.requests)
        row.rps.push(load.requestsPerS)
        row.p50.push(load.latencyMs.p50)
      }
      process.stderr.write(`bench: round ${round + 1}/${options.rounds} done\n`)
    }
    const lines = [
      `### A/B: ${options.mode}, ${options.stream ? 'stream' : 'chat'}, c=${options.concurrency}${options.chunkDelayMs > 0 ? `, ${options.chunkDelayMs} ms between stream events` : ''}, ${options.rounds} rounds of ${options.requests} requests`,
      '',
      `| target | CPU µs/req (median) | each round | req/s (median) | p50 ms (median) | CPU vs bare-inspect | GC µs/req (median) |${onPostgres ? ' Redis server µs/req (median) | PostgreSQL µs/req (median) |' : ''}`,
      `| --- | --: | --- | --: | --: | --: | --: |${onPostgres ? ' --: | --: |' : ''}`,
      ...rows.map(
        (row) =>
          `| ${row.name} | ${median(row.cpu).toFixed(0)} | ${row.cpu.map((v) => v.toFixed(0)).join(' ')} | ${median(row.rps).toFixed(0)} | ${median(row.p50).toFixed(3)} | ${row === bareRow ? '–' : `${(median(row.cpu) / median(bareRow.cpu)).toFixed(2)}×`} | ${row.gc.length > 0 ? median(row.gc).toFixed(0) : '–'} |` +
          (onPostgres ? (row === bareRow ? ' – | – |' : ` ${median(row.redis).toFixed(0)} | ${median(row.postgres).toFixed(0)} |`) : ''),
      ),
      '',
      `this checkout / ${built.label}: CPU per request ${(median(headRow.cpu) / median(baseRow.cpu)).toFixed(3)}×, ` +
        `lower in ${headRow.cpu.filter((v, i) => v < baseRow.cpu[i]!).length} of ${options.rounds} rounds; ` +
        `p50 over bare-inspect's: ${built.label} ${addedMicros(baseRow.p50, bareRow.p50)}, this checkout ${addedMicros(headRow.p50, bareRow.p50)}`,
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
  } finally {
    await Promise.all(children.map((c) => c.stop()))
    if (onPostgres) await deps.deleteRedisKeys(redisPrefix)
    built.remove()
    rmSync(dir, { recursive: true, force: true })
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
