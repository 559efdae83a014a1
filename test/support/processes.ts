/**
 * Child processes for tests (a gateway, a fake upstream, ...): spawn, wait until an HTTP URL
 * answers, keep stdout/stderr for failure messages, stop with a signal.
 *
 * Every child is tracked. Importing this module from a test file registers an afterAll that
 * kills the children still running when that file ends; a process 'exit' hook SIGKILLs any that
 * remain if the worker dies without running hooks.
 *
 *   const gw = await spawnGateway({ config: file })          // waits for GET /healthz → 200
 *   const res = await fetch(`${gw.baseUrl}/v1/...`)
 *   await gw.kill('SIGTERM')                                   // or leave it to afterAll
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll } from 'vitest'
import { freePort } from './free-port.js'

export interface ExitStatus {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface SpawnOptions {
  /** Shown in messages; defaults to the command line. */
  readonly name?: string
  readonly cwd?: string
  /** Full environment of the child; defaults to this process's env. Use `{...process.env, X}` to add. */
  readonly env?: NodeJS.ProcessEnv
  /** Bytes of combined stdout+stderr to keep (the tail). Default 256 KiB. */
  readonly maxOutput?: number
  /** Copy the child's output to this process's stderr as it arrives (debugging). */
  readonly echo?: boolean
}

export interface WaitForHttpOptions {
  /** Overall bound. Default 15 s. */
  readonly timeoutMs?: number
  /** Pause between attempts. Default 100 ms. */
  readonly intervalMs?: number
  /** Status that counts as ready. Default 200. */
  readonly status?: number
}

export interface ChildHandle {
  readonly name: string
  readonly child: ChildProcess
  readonly pid: number | undefined
  /** Captured stdout+stderr so far (tail, bounded). */
  output(): string
  /** Exit status once the child has exited, else undefined. */
  exitStatus(): ExitStatus | undefined
  /** Resolves when the child exits (never rejects). */
  readonly exited: Promise<ExitStatus>
  /** Polls `url` until it answers `status` (200); rejects early if the child exits, with its output. */
  waitForHttp(url: string, options?: WaitForHttpOptions): Promise<void>
  /**
   * Sends `signal` (default SIGTERM) and resolves with the exit status; escalates to SIGKILL
   * after `graceMs` (default 5 s). Resolves at once if the child already exited.
   */
  kill(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitStatus>
}

const children = new Set<ChildHandle>()

class Tail {
  private chunks: Buffer[] = []
  private size = 0
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.size > this.limit && this.chunks.length > 1) this.size -= this.chunks.shift()?.length ?? 0
  }
  toString(): string {
    const all = Buffer.concat(this.chunks)
    return (all.length > this.limit ? all.subarray(all.length - this.limit) : all).toString('utf8')
  }
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms))

export function spawnChild(command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildHandle {
  const name = options.name ?? [command, ...args].join(' ')
  const tail = new Tail(options.maxOutput ?? 256 * 1024)
  const child = spawn(command, args, {
    cwd: options.cwd ?? process.cwd(),
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let status: ExitStatus | undefined
  const onData = (chunk: Buffer): void => {
    tail.push(chunk)
    if (options.echo === true) process.stderr.write(chunk)
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)

  const exited = new Promise<ExitStatus>((res) => {
    child.once('error', (err) => {
      tail.push(Buffer.from(`\n[spawn error] ${err.message}\n`))
      // 'exit' never comes when the spawn itself failed.
      if (child.pid === undefined) {
        status = { code: null, signal: null }
        res(status)
      }
    })
    child.once('exit', (code, signal) => {
      status = { code, signal }
      res(status)
    })
  })

  const handle: ChildHandle = {
    name,
    child,
    pid: child.pid,
    output: () => tail.toString(),
    exitStatus: () => status,
    exited,
    waitForHttp: (url, waitOptions) => waitForHttpOk(url, { ...waitOptions, child: handle }),
    kill: async (signal = 'SIGTERM', graceMs = 5000) => {
      if (status === undefined) {
        try {
          child.kill(signal)
        } catch {
          // already gone
        }
        const timer = setTimeout(() => {
          if (status === undefined) child.kill('SIGKILL')
        }, graceMs)
        try {
          await exited
        } finally {
          clearTimeout(timer)
        }
      }
      children.delete(handle)
      return exited
    },
  }
  children.add(handle)
  void exited.then(() => children.delete(handle))
  return handle
}

function describeExit(s: ExitStatus): string {
  return s.signal !== null ? `signal ${s.signal}` : `code ${String(s.code)}`
}

/**
 * Polls `url` until it answers with `status` (default 200). With `child`, fails as soon as the
 * child exits and puts its output in the error.
 */
export async function waitForHttpOk(url: string, options: WaitForHttpOptions & { child?: ChildHandle } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 15_000
  const intervalMs = options.intervalMs ?? 100
  const wanted = options.status ?? 200
  const deadline = Date.now() + timeoutMs
  let last = 'no attempt yet'
  const childInfo = (): string => (options.child === undefined ? '' : `\n--- output of ${options.child.name} ---\n${options.child.output()}`)
  while (Date.now() < deadline) {
    const exited = options.child?.exitStatus()
    if (exited !== undefined) {
      throw new Error(`${options.child?.name ?? 'child'} exited (${describeExit(exited)}) before ${url} answered ${wanted}${childInfo()}`)
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Math.max(200, Math.min(2000, deadline - Date.now()))) })
      await res.arrayBuffer().catch(() => undefined)
      if (res.status === wanted) return
      last = `HTTP ${res.status}`
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : ''
      last = `${err instanceof Error ? err.message : String(err)}${cause}`
    }
    await sleep(intervalMs)
  }
  throw new Error(`${url} did not answer ${wanted} within ${timeoutMs} ms (last: ${last})${childInfo()}`)
}

// ---------------------------------------------------------------------------------------------
// The gateway

export interface GatewayOptions {
  /** Path of the gateway config file (passed as --config). */
  readonly config: string
  /** Port to listen on; a free one by default. */
  readonly port?: number
  /** Extra CLI arguments after `serve --config F --port P`. */
  readonly args?: readonly string[]
  readonly env?: NodeJS.ProcessEnv
  /** Health path polled until 200. Default /healthz. */
  readonly healthPath?: string
  /** Bound on startup. Default 60 s: a loaded 2-core CI machine can take that long to start Node. */
  readonly timeoutMs?: number
  readonly echo?: boolean
}

export interface GatewayHandle extends ChildHandle {
  readonly port: number
  /** http://127.0.0.1:<port> */
  readonly baseUrl: string
}

/** Repo root (this file is test/support/processes.ts). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
/** The built CLI (`npm test` builds first via pretest). */
export const gatewayMain = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

/** `node dist/cli/main.js serve --config F --port P`, resolved once /healthz answers 200. */
export async function spawnGateway(options: GatewayOptions): Promise<GatewayHandle> {
  const port = options.port ?? (await freePort())
  const child = spawnChild(process.execPath, [gatewayMain, 'serve', '--config', options.config, '--port', String(port), ...(options.args ?? [])], {
    name: `gateway :${port}`,
    cwd: repoRoot,
    env: options.env ?? process.env,
    ...(options.echo !== undefined ? { echo: options.echo } : {}),
  })
  const baseUrl = `http://127.0.0.1:${port}`
  try {
    await child.waitForHttp(`${baseUrl}${options.healthPath ?? '/healthz'}`, { timeoutMs: options.timeoutMs ?? 60_000 })
  } catch (err) {
    await child.kill('SIGKILL')
    throw err
  }
  return Object.assign(child, { port, baseUrl })
}

// ---------------------------------------------------------------------------------------------
// Cleanup

/** Kills every tracked child still running (SIGTERM, SIGKILL after graceMs). */
export async function killAllChildren(graceMs = 3000): Promise<void> {
  await Promise.all([...children].map((c) => c.kill('SIGTERM', graceMs)))
}

/** Children spawned so far and still running (for assertions in tests of this module). */
export function runningChildren(): readonly ChildHandle[] {
  return [...children].filter((c) => c.exitStatus() === undefined)
}

process.once('exit', () => {
  for (const c of children) {
    if (c.exitStatus() === undefined) {
      try {
        c.child.kill('SIGKILL')
      } catch {
        // gone
      }
    }
  }
})

// Registered on the importing test file's suite (module evaluation happens during collection).
try {
  afterAll(() => killAllChildren())
} catch {
  // imported outside a test file's collection: the exit hook still applies
}
