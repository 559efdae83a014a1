/**
 * The load generator: `concurrency` workers on one undici Pool (one connection each), each
 * sending its next request as soon as the previous one has been read to the end. Latency is
 * measured from just before `request()` to the last body byte (and to the first byte, for streams).
 *
 * Several origins (several processes of one service): one Pool per origin, and each request goes
 * to the next origin round-robin, so every origin gets the same share of the requests.
 */
import type { Readable } from 'node:stream'
import { Pool } from 'undici'

export interface LoadSpec {
  /** One origin, or several to spread the requests over round-robin. */
  readonly origin: string | readonly string[]
  readonly path: string
  readonly headers: Record<string, string>
  readonly body: string
  readonly stream: boolean
  readonly concurrency: number
  readonly requests: number
  /** Stops issuing new requests after this long, whatever `requests` says. */
  readonly durationMsMax: number
}

export interface LoadResult {
  readonly requests: number
  readonly errors: number
  readonly firstError: string | undefined
  readonly elapsedMs: number
  readonly requestsPerS: number
  readonly latencyMs: Percentiles
  /** Time to the first body byte; streams only. */
  readonly firstByteMs: Percentiles | undefined
  /** Successful requests per origin, in the order given; only when there were several origins. */
  readonly requestsPerOrigin?: readonly number[]
}

export interface Percentiles {
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly mean: number
}

const requestTimeoutMs = 10_000

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const origins = typeof spec.origin === 'string' ? [spec.origin] : [...spec.origin]
  if (origins.length === 0) throw new Error('runLoad: no origin')
  // Each Pool may open one connection per worker (undici opens them as needed): the round-robin
  // never waits on a client-side queue when one origin momentarily holds more requests in flight.
  const pools = origins.map(
    (origin) =>
      new Pool(origin, {
        connections: spec.concurrency,
        pipelining: 1,
        keepAliveTimeout: 60_000,
        headersTimeout: requestTimeoutMs,
        bodyTimeout: requestTimeoutMs,
      }),
  )
  const perOrigin = new Array<number>(pools.length).fill(0)
  let nextOrigin = 0
  const latencies = new Float64Array(spec.requests)
  const firstBytes = new Float64Array(spec.stream ? spec.requests : 0)
  let issued = 0
  let done = 0
  let errors = 0
  let firstError: string | undefined
  const started = performance.now()
  const deadline = started + spec.durationMsMax

  const worker = async (): Promise<void> => {
    while (issued < spec.requests && performance.now() < deadline) {
      issued += 1
      const index = nextOrigin
      nextOrigin = (nextOrigin + 1) % pools.length
      const pool = pools[index]!
      const t0 = performance.now()
      try {
        const response = await pool.request({ method: 'POST', path: spec.path, headers: spec.headers, body: spec.body })
        const firstByte = await drained(response.body)
        const t1 = performance.now()
        if (response.statusCode !== 200) {
          errors += 1
          firstError ??= `HTTP ${response.statusCode}`
          continue
        }
        latencies[done] = t1 - t0
        if (spec.stream) firstBytes[done] = (firstByte || t1) - t0
        done += 1
        perOrigin[index]! += 1
      } catch (error) {
        errors += 1
        firstError ??= (error as Error).message
      }
    }
  }
  let elapsedMs: number
  try {
    await Promise.all(Array.from({ length: spec.concurrency }, worker))
    elapsedMs = performance.now() - started
  } finally {
    await Promise.all(pools.map((pool) => pool.close()))
  }
  return {
    requests: done,
    errors,
    firstError,
    elapsedMs,
    requestsPerS: done / (elapsedMs / 1000),
    latencyMs: percentiles(latencies.subarray(0, done)),
    firstByteMs: spec.stream ? percentiles(firstBytes.subarray(0, done)) : undefined,
    ...(pools.length > 1 ? { requestsPerOrigin: perOrigin } : {}),
  }
}

/** Reads a body to its end; resolves with when its first bytes came. */
function drained(body: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let firstByte = 0
    body.on('data', () => {
      if (firstByte === 0) firstByte = performance.now()
    })
    body.once('end', () => resolve(firstByte))
    body.once('error', reject)
  })
}

function percentiles(values: Float64Array): Percentiles {
  if (values.length === 0) return { p50: NaN, p90: NaN, p99: NaN, mean: NaN }
  const sorted = Float64Array.from(values).sort()
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
  let sum = 0
  for (const v of sorted) sum += v
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: sum / sorted.length }
}
