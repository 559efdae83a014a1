/**
 * `npm run bench -- --replay [--events=N]`: policy replay of N usage events (default 1,000,000)
 * from a SQLite usage store, through a policy with hard, degrading and shadow budgets, wallets
 * with enforcement and endpoint tiers. Reports the replay's wall time and rate, and the longest
 * the event loop waited meanwhile (a serving gateway keeps answering between pages). The goal:
 * a million events in under 60 s.
 *
 * The events are written first (not timed): 30 days of traffic from 20 teams, 200 users, 10
 * endpoints and 3 models.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { stringify } from 'yaml'
import { micros } from '../src/money/index.js'
import { PriceBook } from '../src/pricing/index.js'
import { emptyUsage } from '../src/providers/index.js'
import { gatewayReplaySettings } from '../src/replay/settings.js'
import { parsePolicy, policyDataOfText } from '../src/replay/policy-file.js'
import { runReplay } from '../src/replay/run.js'
import { openSqlite } from '../src/store/sqlite/db.js'
import { SqliteUsageStore, usageMigrations } from '../src/store/sqlite/usage-store.js'
import type { UsageEvent } from '../src/usage/index.js'

const ORG = 'default'
const FROM_MS = Date.UTC(2026, 10, 1)
const TO_MS = Date.UTC(2026, 11, 1)
const TEAMS = 20
const USERS = 200
const ENDPOINTS = 10
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1'] as const
const INSERT_BATCH = 20_000
const GOAL_MS = 60_000

/** A small deterministic generator: the same data set every run. */
function lcg(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0
    return state / 2 ** 32
  }
}

function eventsOf(count: number): (index: number) => UsageEvent {
  const random = lcg(42)
  const stepMs = (TO_MS - FROM_MS) / count
  return (i) => {
    const user = Math.floor(random() * USERS)
    const team = user % TEAMS
    const model = MODELS[Math.floor(random() * MODELS.length)]!
    const inputTokens = 200 + Math.floor(random() * 4_000)
    const outputTokens = 50 + Math.floor(random() * 800)
    return {
      id: `evt_bench_${String(i).padStart(8, '0')}`,
      requestId: `req_bench_${i}`,
      atMs: FROM_MS + Math.floor(i * stepMs),
      attribution: {
        orgId: ORG,
        teamId: `team_${team}`,
        userId: `user_${user}`,
        userFromKey: true,
        agentId: undefined,
        keyName: `key_${user}`,
        endpointTag: `endpoint_${Math.floor(random() * ENDPOINTS)}`,
        promptVersion: undefined,
        environment: 'prod',
      },
      provider: 'openai',
      targetId: 'openai',
      modelRequested: model,
      modelServed: model,
      endpoint: 'chat_completions',
      usage: { ...emptyUsage(), inputTokens, outputTokens },
      usageSource: 'reported',
      usageNote: undefined,
      costBreakdown: undefined,
      costMicros: micros(inputTokens * 2 + outputTokens * 10),
      priceSource: 'bench',
      latencyMs: 100,
      status: 'ok',
      httpStatus: 200,
      isStream: false,
      decision: 'allowed',
      reservationId: undefined,
      walletId: undefined,
      dataMode: 'real',
      source: i % 10 === 0 ? 'ingest' : 'gateway',
      externalRequestId: undefined,
    }
  }
}

/** Budgets sized to the traffic (about 8,700 micros a call) so that every kind of decision happens. */
function policyText(count: number): string {
  const usd = (micros: number) => Math.max(1, Math.round(micros / 1e6))
  const perTeam = (count * 8_700) / TEAMS
  const perEndpointDay = (count * 8_700) / ENDPOINTS / 30
  const budgets = Array.from({ length: TEAMS }, (_, t) => ({
    name: `team ${t} monthly`,
    scope: { kind: 'team', id: `team_${t}` },
    period: 'monthly',
    amount_usd: usd(perTeam * 0.8),
    alert_thresholds: [50, 80, 95],
    ...(t % 2 === 0 ? { hard_limit: true } : { threshold_actions: [{ threshold_percent: 80, action: 'degrade' }] }),
  }))
  // Endpoints 0 and 1 have tiers (critical, experimental) instead of a budget of their own.
  const endpoints = Array.from({ length: ENDPOINTS - 2 }, (_, k) => k + 2).map((e) => ({
    name: `endpoint ${e} daily`,
    scope: { kind: 'endpoint', id: `endpoint_${e}` },
    period: 'daily',
    amount_usd: usd(perEndpointDay * 0.9),
    hard_limit: true,
    shadow: true,
  }))
  return stringify({
    budgets: [
      ...budgets,
      ...endpoints,
      { name: 'org', scope: { kind: 'org', id: ORG }, period: 'monthly', amount_usd: usd(count * 8_700 * 0.9), alert_thresholds: [50, 80] },
    ],
    cost_tracking: {
      enabled: true,
      wallet_enforcement: true,
      budget_alerts: [
        { threshold_percent: 90, action: 'degrade' },
        { threshold_percent: 100, action: 'block' },
      ],
    },
    wallets: [
      ...Array.from({ length: TEAMS }, (_, t) => ({ scope: { kind: 'team', id: `team_${t}` }, allocated_usd: usd(perTeam * 0.9) })),
      { scope: { kind: 'org', id: ORG }, allocated_usd: usd(perTeam) },
    ],
    endpoint_tiers: { endpoint_0: 'critical', endpoint_1: 'experimental' },
  })
}

export async function replayBench(argv: readonly string[]): Promise<void> {
  const eventsArg = argv.find((a) => a.startsWith('--events='))
  const count = eventsArg ? Number(eventsArg.slice('--events='.length)) : 1_000_000
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-replay-'))
  try {
    const db = openSqlite(join(dir, 'usage.sqlite'), usageMigrations)
    const store = new SqliteUsageStore(db)
    const next = eventsOf(count)
    const writeStart = performance.now()
    for (let i = 0; i < count; i += INSERT_BATCH) {
      await store.insertBatch(Array.from({ length: Math.min(INSERT_BATCH, count - i) }, (_, k) => next(i + k)))
    }
    process.stderr.write(`bench replay: wrote ${count} events in ${((performance.now() - writeStart) / 1000).toFixed(1)} s\n`)

    const policy = parsePolicy(policyDataOfText(policyText(count)), {
      orgId: ORG,
      channelIds: [],
      costTracking: { enabled: true, walletEnforcement: false, budgetAlerts: [] },
    })
    const boundUsers = new Map(Array.from({ length: USERS }, (_, u) => [`key_${u}`, `user_${u}`]))
    const settings = gatewayReplaySettings(
      {
        priceBook: new PriceBook(),
        budgets: { degradeSettings: () => ({ degradeTargetFor: (m) => (m === 'gpt-4o' ? 'gpt-4o-mini' : undefined), degradeOutputTokensMax: 1024 }) },
        consumers: { boundUsers: () => boundUsers },
      },
      policy,
      FROM_MS,
      TO_MS,
    )
    const loop = monitorEventLoopDelay({ resolution: 10 })
    loop.enable()
    let lastReport = 0
    const start = performance.now()
    const cpuStart = process.cpuUsage()
    const report = await runReplay(store, { orgId: ORG, fromMs: FROM_MS, toMs: TO_MS, teamId: undefined, dataMode: 'real' }, settings, {
      onProgress: ({ processed, total }) => {
        if (processed - lastReport >= 100_000 || processed === total) {
          lastReport = processed
          process.stderr.write(`bench replay: ${processed}/${total} events, ${((performance.now() - start) / 1000).toFixed(1)} s\n`)
        }
      },
    })
    const elapsedMs = performance.now() - start
    const cpu = process.cpuUsage(cpuStart)
    const cpuMs = (cpu.user + cpu.system) / 1000
    loop.disable()
    db.close()
    const t = report.totals
    const lines = [
      '## Policy replay',
      '',
      '| events | wall time | CPU time | events/s (wall) | event loop max wait | goal |',
      '| ---: | ---: | ---: | ---: | ---: | --- |',
      `| ${t.events} | ${(elapsedMs / 1000).toFixed(1)} s | ${(cpuMs / 1000).toFixed(1)} s | ${Math.round(t.events / (elapsedMs / 1000))} | ${(loop.max / 1e6).toFixed(0)} ms | ${elapsedMs < GOAL_MS ? 'met' : 'MISSED'} (< ${GOAL_MS / 1000} s) |`,
      '',
      `Load average at the end: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${availableParallelism()} cores (wall time counts waiting for a core; CPU time does not).`,
      '',
      `Decisions: ${Object.entries(t.decisions)
        .map(([d, n]) => `${d} ${n}`)
        .join(
          ', ',
        )}; avoided $${(t.avoided_micros / 1e6).toFixed(2)} of $${(t.baseline_cost_micros / 1e6).toFixed(2)}; ${report.scopes.reduce((n, s) => n + s.thresholds.length, 0)} threshold firings.`,
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
    if (t.events !== count) throw new Error(`replayed ${t.events} of ${count} events`)
    if (elapsedMs >= GOAL_MS) process.exitCode = 1
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
