/**
 * A hostile but valid replay: a team_admin replays a year of its team's traffic (one call a day)
 * through ten daily budgets of $0.000001, each with thresholds at every percent from 1 to 1,000,
 * so every call crosses all 10,000 of them: 3.65 million firings. Before, the report listed every
 * one (428 MB; the gateway stopped answering for 25 s, and forty budgets took it down).
 *
 * The report must list at most 100 firings per budget and count every one per threshold, and the
 * gateway must keep answering /healthz within a second throughout (back-to-back requests; the
 * longest gap between two answers is how long the event loop was held). The memory bound is
 * proved by the counts, not the timing: what is listed is capped, what is counted is exact. The
 * yield within a page is proved by the runner's progress reports, not the timing either: with the
 * tally bounded, this page alone no longer holds the loop for a second on a quiet machine.
 *
 * How: a listening gateway (`startTestGateway`, SQLite), events written straight to the store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { aTeamChatEvent } from '../support/usage-data.js'
import type { UsageEvent } from '../../src/usage/index.js'
import { REPLAY_LIMITS } from '../../src/replay/tally.js'
import { runReplay } from '../../src/replay/run.js'
import { parsePolicy } from '../../src/replay/policy-file.js'
import type { ReplaySettings } from '../../src/replay/engine.js'

const DAY = 86_400_000
const DAYS = 365
const BUDGETS = 10
const THRESHOLDS = 1000
const TEAM = 'team_hostile'
const NOW = Date.now()
const FROM = NOW - DAYS * DAY
const TO = NOW

const policy = {
  budgets: Array.from({ length: BUDGETS }, (_, i) => ({
    name: `tiny ${i}`,
    scope: { kind: 'team', id: TEAM },
    period: 'daily',
    amount_usd: '0.000001',
    alert_thresholds: Array.from({ length: THRESHOLDS }, (_, t) => t + 1),
  })),
}

function anEvent(day: number): UsageEvent {
  // Mid-day, so each call falls in its own daily period whatever the hour now is.
  const atMs = FROM + day * DAY + DAY / 2
  return aTeamChatEvent({ id: `evt_hostile_${String(day).padStart(4, '0')}`, requestId: `req_hostile_${day}`, atMs, teamId: TEAM, costMicros: 1_000 })
}

let gw: TestGateway
let teamAdmin: string

beforeAll(async () => {
  gw = await startTestGateway()
  await gw.app.stores.usage.insertBatch(Array.from({ length: DAYS }, (_, day) => anEvent(day)))
  const created = await gw.admin('POST', '/v1/admin-tokens', { name: 'hostile', role: 'team_admin', team_id: TEAM })
  expect(created.status).toBe(201)
  teamAdmin = created.body.token
})

afterAll(() => gw?.close())

async function asTeamAdmin(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${teamAdmin}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: response.status, body: await response.json() }
}

describe('a replay of 10 budgets × 1,000 thresholds over a year', () => {
  it('finishes with a bounded report whose counts are exact, while /healthz keeps answering within a second', async () => {
    const started = await asTeamAdmin('POST', '/v1/replays', { from: new Date(FROM).toISOString(), to: new Date(TO).toISOString(), policy })
    expect(started.status, JSON.stringify(started.body)).toBe(202)

    let job = started.body
    let last = performance.now()
    let longestGapMs = 0
    let answers = 0
    for (let i = 0; job.status === 'running'; i++) {
      const health = await fetch(`${gw.url}/healthz`)
      await health.arrayBuffer()
      expect(health.status).toBe(200)
      const now = performance.now()
      longestGapMs = Math.max(longestGapMs, now - last)
      last = now
      answers++
      if (i % 10 === 0) job = (await asTeamAdmin('GET', `/v1/replays/${job.id}`)).body
    }
    expect(job.status).toBe('done')
    expect(answers).toBeGreaterThan(0)
    expect(longestGapMs).toBeLessThan(1_000)

    const { report } = job
    expect(report.totals.events).toBe(DAYS)
    expect(report.scopes).toHaveLength(BUDGETS)
    let listed = 0
    for (const scope of report.scopes) {
      // Listed: the first 100 firings, which are the first call's thresholds 1% to 100%.
      expect(scope.thresholds).toHaveLength(REPLAY_LIMITS.firingsPerScope)
      expect(scope.thresholds.map((f: any) => f.threshold_percent)).toEqual(Array.from({ length: 100 }, (_, t) => t + 1))
      expect(scope.thresholds_truncated).toBe(true)
      // Counted: every firing, per threshold.
      expect(scope.thresholds_total).toBe(DAYS * THRESHOLDS)
      expect(scope.threshold_counts).toHaveLength(THRESHOLDS)
      expect(scope.threshold_counts.every((c: any) => c.count === DAYS && c.kind === 'threshold')).toBe(true)
      expect(scope.threshold_counts[0].first_at).toBe(new Date(FROM + DAY / 2).toISOString())
      expect(scope.threshold_counts[0].last_at).toBe(new Date(FROM + (DAYS - 1) * DAY + DAY / 2).toISOString())
      listed += scope.thresholds.length
    }
    expect(listed).toBeLessThanOrEqual(REPLAY_LIMITS.firings)
    // About 1.7 MB, nearly all of it the 10,000 threshold counts (it was 428 MB).
    expect(JSON.stringify(report).length).toBeLessThan(3_000_000)
  })

  it('gives the event loop back within a page, by the amount of work done', async () => {
    const settings: ReplaySettings = {
      policy: parsePolicy(policy, { orgId: 'default', channelIds: [], costTracking: { enabled: false, walletEnforcement: false, budgetAlerts: [] } }),
      degrade: { degradeOutputTokensMax: 1024 },
      walletDegradeOutputTokensMax: 1024,
      repriceAt: () => undefined,
      userFromKey: () => false,
      bucketMs: DAY,
    }
    const progress: number[] = []
    // All 365 events fit one page; each costs over 10,000 units of work, so the runner yields (and reports progress) every few events.
    await runReplay(gw.app.stores.usage, { orgId: 'default', fromMs: FROM, toMs: TO, teamId: TEAM, dataMode: 'real' }, settings, {
      onProgress: (p) => progress.push(p.processed),
    })
    expect(progress.at(-1)).toBe(DAYS)
    const withinPage = progress.filter((p) => p > 0 && p < DAYS)
    expect(withinPage.length).toBeGreaterThan(DAYS / 5 - 2)
    expect(Math.max(...withinPage.map((p, i) => p - (withinPage[i - 1] ?? 0)))).toBeLessThanOrEqual(5)
  })
})
