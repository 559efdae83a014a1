/**
 * Throw-away Redis and PostgreSQL servers started from local binaries, and the plan that decides
 * whether a test run uses the server named by REDIS_URL / DATABASE_URL, starts one of these, or
 * skips. Plain Node: no vitest imports, so the global setup (main process) can use it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, chownSync, constants, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import { freePort } from './free-port.js'

/** What the global setup hands to test workers for one service (must stay structured-cloneable). */
export type Endpoint = { kind: 'url'; url: string; source: 'env' | 'throwaway' } | { kind: 'skip'; reason: string } | { kind: 'error'; reason: string }

export interface ThrowawayServer {
  readonly url: string
  readonly port: number
  /** Temp dir holding the server's data; removed by stop(). */
  readonly dir: string
  readonly pid: number | undefined
  /** The server's captured stdout+stderr (bounded), for failure messages. */
  output(): string
  /** Stops the server and removes its temp dir. Idempotent. */
  stop(): Promise<void>
}

export interface PostgresBinaries {
  readonly binDir: string
  readonly initdb: string
  readonly postgres: string
}

export type RedisPlan = { kind: 'env'; url: string } | { kind: 'start'; binary: string } | { kind: 'skip'; reason: string }
export type PostgresPlan = { kind: 'env'; url: string } | { kind: 'start'; binaries: PostgresBinaries } | { kind: 'skip'; reason: string }

// ---------------------------------------------------------------------------------------------
// Finding binaries

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function pathDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env['PATH'] ?? '').split(delimiter).filter((d) => d !== '')
}

const COMMON_BIN_DIRS = ['/usr/local/bin', '/usr/bin', '/usr/sbin', '/usr/local/sbin']

export function findExecutable(name: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    const candidate = join(dir, name)
    if (isExecutableFile(candidate)) return candidate
  }
  return undefined
}

export function defaultRedisSearchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...pathDirs(env), ...COMMON_BIN_DIRS]
}

export function findRedisServer(dirs: readonly string[] = defaultRedisSearchDirs()): string | undefined {
  return findExecutable('redis-server', dirs)
}

/** Debian/Ubuntu keep PostgreSQL's server binaries in /usr/lib/postgresql/<major>/bin; newest first. */
function debianPostgresBinDirs(root = '/usr/lib/postgresql'): string[] {
  let versions: string[]
  try {
    versions = readdirSync(root)
  } catch {
    return []
  }
  return versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a) || b.localeCompare(a)).map((v) => join(root, v, 'bin'))
}

export function defaultPostgresSearchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...pathDirs(env), ...COMMON_BIN_DIRS, ...debianPostgresBinDirs()]
}

/**
 * initdb plus the `postgres` server binary of the same installation. initdb is often a symlink
 * (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb), so look for `postgres` next to
 * where it really lives.
 */
export function findPostgresBinaries(dirs: readonly string[] = defaultPostgresSearchDirs()): PostgresBinaries | undefined {
  for (const dir of dirs) {
    const initdb = join(dir, 'initdb')
    if (!isExecutableFile(initdb)) continue
    let realDir: string
    try {
      realDir = dirname(realpathSync(initdb))
    } catch {
      continue
    }
    for (const binDir of [realDir, dir]) {
      const postgres = join(binDir, 'postgres')
      if (isExecutableFile(postgres)) return { binDir, initdb: join(binDir, 'initdb'), postgres }
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Plans

function envUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

export function planRedis(env: NodeJS.ProcessEnv = process.env, dirs: readonly string[] = defaultRedisSearchDirs(env)): RedisPlan {
  const url = envUrl(env, 'REDIS_URL')
  if (url !== undefined) return { kind: 'env', url }
  const binary = findRedisServer(dirs)
  if (binary !== undefined) return { kind: 'start', binary }
  return { kind: 'skip', reason: 'needs Redis: REDIS_URL is unset and no redis-server binary was found on PATH' }
}

export function planPostgres(env: NodeJS.ProcessEnv = process.env, dirs: readonly string[] = defaultPostgresSearchDirs(env)): PostgresPlan {
  const url = envUrl(env, 'DATABASE_URL')
  if (url !== undefined) return { kind: 'env', url }
  const binaries = findPostgresBinaries(dirs)
  if (binaries !== undefined) return { kind: 'start', binaries }
  return {
    kind: 'skip',
    reason: 'needs PostgreSQL: DATABASE_URL is unset and no initdb/postgres binaries were found (PATH, /usr/lib/postgresql/*/bin)',
  }
}

// ---------------------------------------------------------------------------------------------
// Process plumbing

class OutputBuffer {
  private chunks: string[] = []
  private size = 0
  constructor(private readonly limit = 64 * 1024) {}
  push(chunk: Buffer | string): void {
    const text = chunk.toString()
    this.chunks.push(text)
    this.size += text.length
    while (this.size > this.limit && this.chunks.length > 1) this.size -= this.chunks.shift()?.length ?? 0
  }
  toString(): string {
    const all = this.chunks.join('')
    return all.length > this.limit ? all.slice(-this.limit) : all
  }
}

interface Identity {
  uid: number
  gid: number
  name: string
}

/** Root can't run PostgreSQL: pick an unprivileged account (postgres, else nobody). */
export function unprivilegedIdentity(): Identity | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined
  let passwd = ''
  try {
    passwd = readFileSync('/etc/passwd', 'utf8')
  } catch {
    // fall through to the numeric nobody
  }
  const entries = new Map<string, Identity>()
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':')
    if (name === undefined || uid === undefined || gid === undefined) continue
    const u = Number(uid)
    const g = Number(gid)
    if (Number.isInteger(u) && Number.isInteger(g) && u !== 0) entries.set(name, { uid: u, gid: g, name })
  }
  return entries.get('postgres') ?? entries.get('nobody') ?? { uid: 65534, gid: 65534, name: '65534' }
}

/** A temp dir the given identity can reach (every ancestor world-searchable) and owns. */
function makeTempDir(prefix: string, owner: Identity | undefined): string {
  const bases = [tmpdir(), '/tmp', '/var/tmp', '/dev/shm']
  for (const base of bases) {
    if (owner !== undefined && !ancestorsSearchable(base)) continue
    let dir: string
    try {
      dir = mkdtempSync(join(base, prefix))
    } catch {
      continue
    }
    if (owner !== undefined) chownSync(dir, owner.uid, owner.gid)
    return dir
  }
  throw new Error(`could not create a temp dir for ${prefix} reachable by ${owner?.name ?? 'this user'} (tried ${bases.join(', ')})`)
}

function ancestorsSearchable(path: string): boolean {
  let current = resolve(path)
  for (;;) {
    try {
      const st = statSync(current)
      if (!st.isDirectory() || (st.mode & 0o001) === 0) return false
    } catch {
      return false
    }
    const parent = dirname(current)
    if (parent === current) return true
    current = parent
  }
}

interface Running {
  child: ChildProcess
  emergencySignal: NodeJS.Signals
  dir: string
}
const running = new Set<Running>()
let exitHookInstalled = false

/** Last resort if the process exits without teardown: kill what we started, remove temp dirs. */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const r of running) {
      try {
        if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill(r.emergencySignal)
      } catch {
        // already gone
      }
      try {
        rmSync(r.dir, { recursive: true, force: true })
      } catch {
        // best effort
      }
    }
  })
}

function exitPromise(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((res) => child.once('exit', () => res()))
}

async function stopChild(child: ChildProcess, signals: readonly NodeJS.Signals[], graceMs: number): Promise<void> {
  const exited = exitPromise(child)
  for (const signal of [...signals, 'SIGKILL' as const]) {
    if (child.exitCode !== null || child.signalCode !== null) return
    try {
      child.kill(signal)
    } catch {
      return
    }
    const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)])
    if (done) return
  }
  await exited
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms))
}

function run(command: string, args: readonly string[], options: { uid?: number; gid?: number; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<string> {
  return new Promise((res, rej) => {
    const out = new OutputBuffer()
    const child = spawn(command, args, {
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
    })
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => out.push(c))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      rej(new Error(`${command} failed to start: ${err.message}`))
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) res(out.toString())
      else rej(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}:\n${out.toString()}`))
    })
  })
}

/** Try to connect until `probe` succeeds, the child dies, or the deadline passes. */
async function waitReady(child: ChildProcess, out: OutputBuffer, what: string, timeoutMs: number, probe: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new ServerExitedError(`${what} exited during startup (${child.exitCode ?? child.signalCode}):\n${out.toString()}`, out.toString())
    }
    try {
      await probe()
      return
    } catch (err) {
      lastError = err
    }
    await sleep(100)
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms (last error: ${String(lastError)}):\n${out.toString()}`)
}

class ServerExitedError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message)
  }
}

const isPortClash = (err: unknown): boolean =>
  err instanceof ServerExitedError && /address already in use|could not bind|could not create listen socket/i.test(err.output)

// ---------------------------------------------------------------------------------------------
// Probes (also used by services.ts to check a URL before handing it out)

export async function pingRedis(url: string, timeoutMs = 2000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
  } finally {
    client.disconnect()
  }
}

export async function pingPostgres(url: string, timeoutMs = 2000): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
  } finally {
    await client.end().catch(() => {})
  }
}

// ---------------------------------------------------------------------------------------------
// Throw-away servers

export async function startRedisServer(options: { binary?: string; timeoutMs?: number } = {}): Promise<ThrowawayServer> {
  const binary = options.binary ?? findRedisServer()
  if (binary === undefined) throw new Error('redis-server not found')
  const timeoutMs = options.timeoutMs ?? 15_000
  const dir = makeTempDir('tg-redis-', undefined)
  installExitHook()
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const out = new OutputBuffer()
    const child = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--protected-mode', 'no'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => out.push(c))
    child.on('error', (err) => out.push(`spawn error: ${err.message}\n`))
    const entry: Running = { child, emergencySignal: 'SIGKILL', dir }
    running.add(entry)
    const url = `redis://127.0.0.1:${port}`
    try {
      await waitReady(child, out, `redis-server on port ${port}`, timeoutMs, () => pingRedis(url, 1000))
    } catch (err) {
      await stopChild(child, ['SIGTERM'], 2000)
      running.delete(entry)
      lastError = err
      if (isPortClash(err)) continue
      break
    }
    return makeHandle(url, port, dir, child, out, entry, ['SIGTERM'])
  }
  rmSync(dir, { recursive: true, force: true })
  throw lastError instanceof Error ? lastError : new Error(String(lastError))
}

export async function startPostgresServer(options: { binaries?: PostgresBinaries; timeoutMs?: number } = {}): Promise<ThrowawayServer> {
  const binaries = options.binaries ?? findPostgresBinaries()
  if (binaries === undefined) throw new Error('initdb/postgres not found')
  const timeoutMs = options.timeoutMs ?? 30_000
  const identity = unprivilegedIdentity()
  const ids = identity === undefined ? {} : { uid: identity.uid, gid: identity.gid }
  const dir = makeTempDir('tg-pg-', identity)
  installExitHook()
  const dataDir = join(dir, 'data')
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C' }
  delete env['PGDATA']
  try {
    await run(binaries.initdb, ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-locale', '--no-sync'], {
      ...ids,
      env,
      timeoutMs,
    })
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    const hint = identity === undefined ? '' : ` (ran as ${identity.name}, uid ${identity.uid}, because PostgreSQL refuses root)`
    throw new Error(`initdb failed${hint}: ${err instanceof Error ? err.message : String(err)}`)
  }
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const out = new OutputBuffer()
    const child = spawn(
      binaries.postgres,
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=200',
        '-c',
        'shared_buffers=32MB',
      ],
      { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], ...ids },
    )
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => out.push(c))
    child.on('error', (err) => out.push(`spawn error: ${err.message}\n`))
    const entry: Running = { child, emergencySignal: 'SIGQUIT', dir }
    running.add(entry)
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`
    try {
      await waitReady(child, out, `postgres on port ${port}`, timeoutMs, () => pingPostgres(url, 1000))
    } catch (err) {
      await stopChild(child, ['SIGINT', 'SIGQUIT'], 3000)
      running.delete(entry)
      lastError = err
      if (isPortClash(err)) continue
      break
    }
    // SIGINT = fast shutdown (rolls back sessions), SIGQUIT = immediate.
    return makeHandle(url, port, dir, child, out, entry, ['SIGINT', 'SIGQUIT'])
  }
  rmSync(dir, { recursive: true, force: true })
  throw lastError instanceof Error ? lastError : new Error(String(lastError))
}

function makeHandle(
  url: string,
  port: number,
  dir: string,
  child: ChildProcess,
  out: OutputBuffer,
  entry: Running,
  stopSignals: readonly NodeJS.Signals[],
): ThrowawayServer {
  let stopping: Promise<void> | undefined
  return {
    url,
    port,
    dir,
    pid: child.pid,
    output: () => out.toString(),
    stop: () => {
      stopping ??= (async () => {
        await stopChild(child, stopSignals, 5000)
        running.delete(entry)
        rmSync(dir, { recursive: true, force: true })
      })()
      return stopping
    },
  }
}

// ---------------------------------------------------------------------------------------------
// What the global setup provides to the test workers (read with `inject` in services.ts).

export const REDIS_KEY = 'tollgateRedis'
export const POSTGRES_KEY = 'tollgatePostgres'

declare module 'vitest' {
  export interface ProvidedContext {
    tollgateRedis: Endpoint
    tollgatePostgres: Endpoint
  }
}
