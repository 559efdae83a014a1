/**
 * `npm run bench -- --ingest`: ingestion throughput of one gateway process on the embedded store.
 * A `tollgate serve` child on SQLite with a team budget (so every event also moves a budget
 * counter, as in production), fed `POST /v1/events` batches of 1,000 distinct events by a few
 * concurrent clients in this process. Reports events/s (wall clock) and events per CPU-second of
 * the gateway process, against the target of 20,000 events/s.
 *
 * Bodies are built before the clock starts, so the load generator's JSON work is not measured;
 * it still shares the machine's cores with the gateway, so the wall-clock figure is a lower bound.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchConsumerKey, startGateway } from './gateway.js'
import { cpuTimeNs } from './procs.js'

const TARGET_EVENTS_PER_S = 20_000
const EVENTS_PER_BATCH = 1_000
const CLIENTS = 4
const adminToken = 'tg-bench-admin-token-0123456789'

export interface IngestBenchResult {
  readonly events: number
  readonly seconds: number
  readonly eventsPerSecond: number
  readonly eventsPerCpuSecond: number
}

export async function benchIngest(options: { readonly quick: boolean; readonly nodeFlags?: readonly string[] }): Promise<IngestBenchResult> {
  const batches = options.quick ? 20 : 200
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-ingest-'))
  // The upstream is never called: ingestion records calls made elsewhere.
  const gateway = await startGateway({
    mode: 'plain',
    mockUrl: 'http://127.0.0.1:9',
    dir,
    env: { TOLLGATE_LOG_LEVEL: 'warn' },
    ...(options.nodeFlags && { nodeFlags: options.nodeFlags }),
  })
  try {
    await createBudget(gateway.url)
    await post(gateway.url, bodyOf('warmup', 0)) // first-call costs (catalogue lookup, statements) off the clock
    const bodies = Array.from({ length: batches }, (_, b) => bodyOf('run', b))
    const pid = gateway.child.pid!
    const cpuBefore = cpuTimeNs(pid)
    const started = process.hrtime.bigint()
    let next = 0
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++]!
          await post(gateway.url, body)
        }
      }),
    )
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const cpuSeconds = (cpuTimeNs(pid) - cpuBefore) / 1e9
    const events = batches * EVENTS_PER_BATCH
    const result = { events, seconds, eventsPerSecond: events / seconds, eventsPerCpuSecond: events / cpuSeconds }
    process.stdout.write(report(result))
    return result
  } finally {
    await gateway.child.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

function report(r: IngestBenchResult): string {
  const verdict = r.eventsPerSecond >= TARGET_EVENTS_PER_S ? 'meets' : 'misses'
  return [
    '## Ingestion (POST /v1/events, SQLite, 1 process, batches of 1,000)',
    '',
    '| events | seconds | events/s | events per gateway CPU-second |',
    '| ---: | ---: | ---: | ---: |',
    `| ${r.events} | ${r.seconds.toFixed(2)} | ${Math.round(r.eventsPerSecond)} | ${Math.round(r.eventsPerCpuSecond)} |`,
    '',
    `Target ${TARGET_EVENTS_PER_S} events/s: ${verdict} it.`,
    '',
  ].join('\n')
}

/** One batch of distinct events, varied the way real traffic is (users, endpoints, cached input). */
function bodyOf(run: string, batch: number): string {
  const events = Array.from({ length: EVENTS_PER_BATCH }, (_, i) => ({
    externalRequestId: `${run}-${batch}-${i}`,
    provider: 'openai',
    model: i % 2 === 0 ? 'gpt-4o-mini' : 'gpt-4o',
    endpointTag: `feature_${i % 7}`,
    promptVersion: `v${i % 3}`,
    userId: `tenant_${i % 50}`,
    inputTokens: 200 + (i % 500),
    cachedInputTokens: i % 4 === 0 ? 100 : 0,
    outputTokens: 50 + (i % 200),
    latencyMs: 300 + (i % 700),
    status: i % 50 === 0 ? 'error' : 'success',
    dataMode: 'real',
    environment: 'prod',
  }))
  return JSON.stringify({ events })
}

async function post(url: string, body: string): Promise<void> {
  const response = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${benchConsumerKey}`, 'content-type': 'application/json' },
    body,
  })
  const answer = (await response.json()) as { created?: number; rejected?: number }
  if (response.status !== 200 || answer.rejected !== 0) throw new Error(`ingest bench: HTTP ${response.status} ${JSON.stringify(answer).slice(0, 300)}`)
}

async function createBudget(url: string): Promise<void> {
  const response = await fetch(`${url}/v1/billing/budgets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench monthly', scope: { kind: 'team', id: 'bench' }, period: 'monthly', amount_usd: 1_000_000 }),
  })
  if (response.status !== 201) throw new Error(`ingest bench: creating the budget answered HTTP ${response.status} ${await response.text()}`)
}
