/**
 * Child processes for the bench: spawn, wait for the line that announces the URL, read the
 * child's CPU time from /proc, stop it. Every child is tracked and killed when the bench exits,
 * however it exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

export interface Child {
  readonly name: string
  readonly pid: number
  readonly process: ChildProcess
  /** Tail of stdout+stderr, for error messages. */
  output(): string
  /** Resolves with the first capture group of `pattern` in the output; rejects if the child exits or time runs out. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
  stop(graceMs?: number): Promise<void>
}

const outputBytesMax = 64 * 1024
// Generous: on a loaded 2-core machine a gateway on Redis + PostgreSQL has taken over 20 s to start.
const readyTimeoutMsDefault = 60_000
const stopGraceMsDefault = 5_000

const children = new Set<Child>()
const deaths: string[] = []

/** Children that exited without being asked to (crashed, killed by someone else), with the end of their output. */
export function unexpectedExits(): readonly string[] {
  return deaths
}
process.on('exit', () => {
  for (const child of children) child.process.kill('SIGKILL')
})
// Interrupted or told to stop: exit (which kills the children above) rather than leave them running.
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}; stopping ${children.size} child process${children.size === 1 ? '' : 'es'}\n`)
    process.exit(code)
  })
}

/**
 * `cpus` pins the child (all its threads) to those CPUs with taskset, which execs node in place,
 * so the PID is node's own and its CPU time is what /proc reports for it.
 */
export function spawnChild(name: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, cpus?: string): Child {
  const [command, argv] = cpus === undefined ? [process.execPath, args] : ['taskset', ['-c', cpus, process.execPath, ...args]]
  const proc = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  if (proc.pid === undefined) throw new Error(`${name}: failed to spawn`)
  let tail = ''
  const listeners = new Set<() => void>()
  // Always drain both pipes: a full pipe would block the child's logger and skew the figures.
  const onData = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-outputBytesMax)
    for (const listener of listeners) listener()
  }
  proc.stdout.on('data', onData)
  proc.stderr.on('data', onData)
  let exited = false
  let stopping = false
  const exitedPromise = new Promise<void>((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = true
      if (!stopping) deaths.push(`${name} (pid ${proc.pid}) exited by itself (${signal ?? `code ${code}`}); its last output:\n${tail.slice(-4_000)}`)
      for (const listener of listeners) listener()
      resolve()
    })
  })

  const child: Child = {
    name,
    pid: proc.pid,
    process: proc,
    output: () => tail,
    waitFor(pattern, timeoutMs = readyTimeoutMsDefault) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${name}: not ready after ${timeoutMs} ms\n${tail}`)), timeoutMs)
        const check = () => {
          const match = pattern.exec(tail)
          if (match) finish(undefined, match[1] ?? match[0])
          else if (exited) finish(new Error(`${name}: exited before it was ready\n${tail}`))
        }
        function finish(error: Error | undefined, value?: string): void {
          clearTimeout(timer)
          listeners.delete(check)
          if (error) reject(error)
          else resolve(value ?? '')
        }
        listeners.add(check)
        check()
      })
    },
    async stop(graceMs = stopGraceMsDefault) {
      children.delete(child)
      stopping = true
      if (exited) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
      await exitedPromise
      clearTimeout(timer)
    },
  }
  children.add(child)
  return child
}

/** CPUs for the process under test and for the load side (this process and the mock), or none when pinning is impossible. */
export interface Pinning {
  readonly target: string
  readonly load: string
}

/**
 * With at least two CPUs and taskset: the process under test on the first CPU, this process (the
 * load generator, all threads) and the mock upstream on the second, as the peer bench does, so a
 * target's CPU per request does not depend on who else happened to run on its core.
 * `TOLLGATE_BENCH_PIN=0` turns it off.
 */
export function pinLoadSide(): Pinning | undefined {
  if (process.env.TOLLGATE_BENCH_PIN === '0') return undefined
  const cpus = allowedCpus()
  if (cpus.length < 2) return undefined
  const pinning = { target: String(cpus[0]), load: String(cpus[1]) }
  const result = spawnSync('taskset', ['-a', '-p', '-c', pinning.load, String(process.pid)], { stdio: 'ignore' })
  return result.status === 0 ? pinning : undefined
}

/** The CPUs this process may run on (its affinity), from /proc/self/status. */
function allowedCpus(): number[] {
  const match = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))
  if (!match) return []
  return match[1]!.split(',').flatMap((part) => {
    const [from, to] = part.split('-').map(Number)
    return Array.from({ length: (to ?? from!) - from! + 1 }, (_, i) => from! + i)
  })
}

/**
 * CPU time the process has used so far, in nanoseconds: the sum of every thread's on-CPU time
 * from /proc/PID/task/TID/schedstat (nanosecond resolution), or utime+stime from /proc/PID/stat
 * (clock ticks, assumed 100 Hz) where schedstat is not available.
 */
export function cpuTimeNs(pid: number): number {
  try {
    let total = 0
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const fields = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ')
      total += Number(fields[0])
    }
    if (Number.isFinite(total) && total > 0) return total
  } catch {
    // fall through to /proc/PID/stat
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may contain spaces) start at field 3 (state).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(rest[11]) + Number(rest[12])
  return ticks * 10_000_000
}

/**
 * CPU time (ns) of every process on this machine named `names` (e.g. postgres, redis-server), by
 * PID: for the CPU a store's servers spend, when they run on the same machine. A process that
 * exits between two readings takes its time with it.
 */
export function cpuTimeOfNamedNs(names: readonly string[]): Map<number, number> {
  const times = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim())) times.set(Number(entry), cpuTimeNs(Number(entry)))
    } catch {
      // gone meanwhile
    }
  }
  return times
}

/** CPU time (ns) the processes spent between two `cpuTimeOfNamedNs` readings (one that started in between counts from zero). */
export function cpuTimeBetweenNs(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number {
  let total = 0
  for (const [pid, ns] of after) total += ns - (before.get(pid) ?? 0)
  return total
}
