/**
 * `npm run bench -- --streams`: many long streams at once, as LLM traffic is. The mock upstream
 * waits 50 ms between SSE events (about 1 s per stream); 2,000 streams are kept in flight against
 * the mock directly, the bare-inspect proxy and the enforced gateway (SQLite), one after the
 * other. The goal: the gateway's p50 within 10% of the stream's own length (what the mock takes
 * to send it), no call waiting for an upstream connection (`tollgate_upstream_queued_requests`
 * stays 0), none failed. The direct row is no yardstick for it: the mock and the load generator
 * share a core, and at 2,000 streams they can be slower than the stream's own length themselves.
 *
 * A bench case, not a test: 2,000 streams need both cores for seconds, which a CI run on two
 * shared cores cannot give a timed assertion.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchConsumerKey, startGateway } from './gateway.js'
import { runLoad, type LoadResult } from './load.js'
import { cpuTimeNs, pinLoadSide, type Child } from './procs.js'

export interface StreamsDeps {
  startMock(cpus?: string, streamChunkDelayMs?: number): Promise<{ child: Child; url: string }>
  startBare(mockUrl: string, nodeFlags: readonly string[], cpus?: string): Promise<{ child: Child; url: string }>
  chatBody(stream: boolean, maxTokens?: number): string
}

const concurrency = 2_000
const chunkDelayMs = 50
/** The mock answers min(max_tokens, 40) words, one SSE event each: 19 words + 4 framing events ≈ 1.15 s. */
const maxTokens = 19
/** A stream's own length: its events, `chunkDelayMs` apart. */
const streamMs = (maxTokens + 4) * chunkDelayMs
const rounds = 4
const warmupRequests = 500
const p50RatioMax = 1.1

interface Row {
  readonly name: string
  readonly load: LoadResult
  readonly cpuUsPerStream: number | undefined
  readonly rssMiB: number | undefined
  readonly queuedMax: number | undefined
}

export async function streamsCase(deps: StreamsDeps): Promise<void> {
  const pinning = pinLoadSide()
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-streams-'))
  const children: Child[] = []
  try {
    const mock = await deps.startMock(pinning?.load, chunkDelayMs)
    children.push(mock.child)
    const bare = await deps.startBare(mock.url, [], pinning?.target)
    children.push(bare.child)
    const gateway = await startGateway({ mode: 'enforced', mockUrl: mock.url, dir, cpus: pinning?.target })
    children.push(gateway.child)
    const targets = [
      { name: 'direct (mock)', origin: mock.url, authorization: 'Bearer sk-mock', pid: undefined, metrics: undefined },
      { name: 'bare-inspect', origin: bare.url, authorization: 'Bearer sk-mock', pid: bare.child.pid, metrics: undefined },
      {
        name: 'tollgate enforced (sqlite)',
        origin: gateway.url,
        authorization: `Bearer ${benchConsumerKey}`,
        pid: gateway.child.pid,
        metrics: `${gateway.url}/metrics`,
      },
    ]
    const rows: Row[] = []
    for (const target of targets) {
      process.stderr.write(`bench: ${concurrency} concurrent streams → ${target.name} … `)
      const spec = {
        origin: target.origin,
        path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json', authorization: target.authorization },
        body: deps.chatBody(true, maxTokens),
        stream: true,
        concurrency,
        durationMsMax: 120_000,
      }
      await runLoad({ ...spec, concurrency: Math.min(concurrency, warmupRequests), requests: warmupRequests })
      const cpu0 = target.pid === undefined ? 0 : cpuTimeNs(target.pid)
      let queuedMax: number | undefined
      let sampling = true
      const sampler = (async () => {
        if (target.metrics === undefined) return
        queuedMax = 0
        while (sampling) {
          queuedMax = Math.max(queuedMax, await queuedNow(target.metrics))
          await new Promise((resolve) => setTimeout(resolve, 250))
        }
      })()
      const load = await runLoad({ ...spec, requests: concurrency * rounds })
      sampling = false
      await sampler
      const cpuUsPerStream = target.pid === undefined ? undefined : (cpuTimeNs(target.pid) - cpu0) / 1000 / Math.max(1, load.requests)
      rows.push({ name: target.name, load, cpuUsPerStream, rssMiB: target.pid === undefined ? undefined : rssMiB(target.pid), queuedMax })
      process.stderr.write(
        `p50 ${load.latencyMs.p50.toFixed(0)} ms, ${load.requestsPerS.toFixed(0)} streams/s, ${load.errors} errors${load.errors > 0 ? ` (first: ${load.firstError})` : ''}\n`,
      )
    }
    process.stdout.write(`\n${table(rows, pinning === undefined)}\n`)
  } finally {
    await Promise.all(children.map((c) => c.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
}

async function queuedNow(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) })).text()
  let sum = 0
  for (const match of text.matchAll(/^tollgate_upstream_queued_requests\{[^}]*\} (\d+)/gm)) sum += Number(match[1])
  return sum
}

function rssMiB(pid: number): number | undefined {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match ? Number(match[1]) / 1024 : undefined
}

function table(rows: readonly Row[], unpinned: boolean): string {
  const direct = rows[0]!
  const lines = [
    `${concurrency} concurrent streams, ${chunkDelayMs} ms between upstream events, ${rounds} × ${concurrency} streams per target`,
    '',
    '| target | streams/s | p50 ms | p99 ms | p50 vs direct | CPU µs/stream | RSS MiB | queued upstream (max) | errors |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
  ]
  for (const r of rows) {
    const ratio = r.load.latencyMs.p50 / direct.load.latencyMs.p50
    lines.push(
      `| ${r.name} | ${r.load.requestsPerS.toFixed(0)} | ${r.load.latencyMs.p50.toFixed(0)} | ${r.load.latencyMs.p99.toFixed(0)} | ${ratio.toFixed(3)}× | ` +
        `${r.cpuUsPerStream?.toFixed(0) ?? '–'} | ${r.rssMiB?.toFixed(0) ?? '–'} | ${r.queuedMax ?? '–'} | ${r.load.errors} |`,
    )
  }
  const gateway = rows[rows.length - 1]!
  const ratio = gateway.load.latencyMs.p50 / streamMs
  const met = ratio <= p50RatioMax && gateway.queuedMax === 0 && gateway.load.errors === 0
  lines.push(
    '',
    `goal: gateway p50 ≤ ${p50RatioMax}× a stream's own ${streamMs} ms, no queued upstream call, no failed call — ` +
      `${met ? 'PASS' : 'MISS'} (p50 ${ratio.toFixed(2)}× its length, ${gateway.queuedMax ?? 'unknown'} queued at most, ${gateway.load.errors} failed)`,
  )
  if (unpinned) lines.push('(not pinned: the load generator shared cores with the proxies)')
  return lines.join('\n')
}
