/**
 * Replay equivalence: traffic run LIVE through a policy and the same traffic replayed through the
 * same policy get the same decision, event for event.
 *
 * The live side is a real gateway (`startTestGateway`: HTTP, the mock upstream, SQLite) with four
 * team budgets — hard (refuses), soft (notifies), degrade at 50% (serves gpt-4o-mini), shadow
 * hard (would_block) — and interleaved calls from the four teams and one team no budget covers.
 * Every event records the decision the gateway made. The replay reads those events back through
 * `POST /v1/replays` (the policy being the same four budgets, sent as YAML text) and through
 * `runReplay` with a per-event hook, and must agree with every recorded decision.
 *
 * One difference is inherent and sized away: a live reservation holds the call's worst case
 * (`x-tollgate-cost-reserved-usd`), replay admits a call against its actual cost. The hard budget
 * is sized so that both refuse at the same call: N calls' cost plus a margin below one call.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { runReplay } from '../../src/replay/run.js'
import { gatewayReplaySettings } from '../../src/replay/settings.js'
import { parsePolicy, policyDataOfText } from '../../src/replay/policy-file.js'
import type { ReplayOutcome } from '../../src/replay/engine.js'

const TEAMS = ['team_hard', 'team_soft', 'team_degrade', 'team_shadow', 'team_free'] as const
const keyOf = (team: string) => `tg_replay_${team}_key_0123456789abcdef`.slice(0, 40)
const MEASURE_KEY = 'tg_replay_measure_key_0123456789abcdef01'

const gateways: TestGateway[] = []
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((g) => g.close()))
})

async function aGateway(): Promise<TestGateway> {
  const yaml = stringify({
    version: '1',
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: [
      ...TEAMS.map((team) => ({ name: team, api_key: keyOf(team), team_id: team })),
      { name: 'measure', api_key: MEASURE_KEY, team_id: 'team_measure' },
    ],
    cost_tracking: { enabled: true, wallet_enforcement: false },
    models: [{ name: 'gpt-4o', degrade_to: 'gpt-4o-mini' }],
  })
  const gw = await startTestGateway({ yaml })
  gateways.push(gw)
  return gw
}

async function chat(gw: TestGateway, key: string): Promise<Response> {
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', max_tokens: 40, messages: [{ role: 'user', content: 'Write one line about replay.' }] }),
  })
  await response.arrayBuffer()
  return response
}

const microsOf = (header: string | null): number => Math.round(Number(header) * 1e6)
const usd = (micros: number): string => (micros / 1e6).toFixed(6)

/** The actual cost of one call and the worst case it reserves, measured under a roomy hard budget. */
async function measure(gw: TestGateway): Promise<{ cost: number; reserved: number }> {
  const { status } = await gw.admin('POST', '/v1/billing/budgets', {
    name: 'measure',
    scope: { kind: 'team', id: 'team_measure' },
    period: 'monthly',
    amount_usd: 1000,
    hard_limit: true,
  })
  expect(status).toBe(201)
  const response = await chat(gw, MEASURE_KEY)
  expect(response.status).toBe(200)
  return { cost: microsOf(response.headers.get('x-tollgate-cost-usd')), reserved: microsOf(response.headers.get('x-tollgate-cost-reserved-usd')) }
}

function policyYaml(hardAmountMicros: number, unit: number): string {
  const team = (id: string) => ({ kind: 'team', id })
  return stringify({
    budgets: [
      { name: 'hard', scope: team('team_hard'), period: 'monthly', amount_usd: usd(hardAmountMicros), hard_limit: true },
      { name: 'soft', scope: team('team_soft'), period: 'monthly', amount_usd: usd(3 * unit), alert_thresholds: [50, 80] },
      {
        name: 'degrade',
        scope: team('team_degrade'),
        period: 'monthly',
        amount_usd: usd(4 * unit),
        threshold_actions: [{ threshold_percent: 50, action: 'degrade' }],
      },
      { name: 'shadow', scope: team('team_shadow'), period: 'monthly', amount_usd: usd(2 * unit), hard_limit: true, shadow: true },
    ],
  })
}

describe('replay equivalence', () => {
  it('replaying live traffic through the policy it ran under reproduces every recorded decision', async () => {
    const gw = await aGateway()
    const { cost, reserved } = await measure(gw)
    expect(reserved).toBeLessThan(2 * cost)
    // N = 3 calls fit; the 4th is refused live (worst case) and replayed (actual cost) alike.
    const hardAmount = 3 * cost + Math.max(0, reserved - cost)
    const yaml = policyYaml(hardAmount, cost)
    const policyData = policyDataOfText(yaml) as { budgets: Record<string, unknown>[] }
    for (const budget of policyData.budgets) {
      const { status, body } = await gw.admin('POST', '/v1/billing/budgets', budget)
      expect(status, JSON.stringify(body)).toBe(201)
    }

    const fromMs = Date.now()
    const liveStatuses: number[] = []
    for (let round = 0; round < 6; round++) {
      for (const team of TEAMS) {
        liveStatuses.push((await chat(gw, keyOf(team))).status)
        await new Promise((resolve) => setTimeout(resolve, 2))
      }
    }
    const toMs = Date.now() + 1

    const recorded = (await gw.events()).filter((e) => e.key_name !== 'measure')
    expect(recorded).toHaveLength(TEAMS.length * 6)
    const recordedDecisions = recorded.map((e) => e.decision)
    // The traffic exercised every kind of decision, so agreeing on it means something.
    expect(new Set(recordedDecisions)).toEqual(new Set(['allowed', 'budget_cap_exceeded', 'unenforced', 'degraded', 'would_block']))
    expect(liveStatuses.filter((s) => s === 429)).toHaveLength(3)

    // Event for event, through the engine the API runs.
    const app = gw.app
    const policy = parsePolicy(policyDataOfText(yaml), { orgId: 'default', channelIds: [], costTracking: app.config.costTracking })
    const outcomes: ReplayOutcome[] = []
    await runReplay(
      app.stores.usage,
      { orgId: 'default', fromMs, toMs, teamId: undefined, dataMode: 'real' },
      gatewayReplaySettings(app, policy, fromMs, toMs),
      {
        onOutcome: (o) => outcomes.push(o),
        pageSize: 7,
      },
    )
    expect(outcomes.map((o) => [o.requestId, o.replayed])).toEqual(recorded.map((e) => [e.request_id, e.decision]))

    // And through the API: nothing changed, and the report says who refused, degraded, would block.
    const started = await gw.admin('POST', '/v1/replays', { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), policy: yaml })
    expect(started.status, JSON.stringify(started.body)).toBe(202)
    const done = await waitFor(gw, started.body.id)
    const report = done.report
    expect(report.totals).toMatchObject({ events: TEAMS.length * 6, changed_decisions: 0 })
    expect(report.totals.recorded_decisions).toEqual(report.totals.decisions)
    const byName = Object.fromEntries(report.scopes.map((s: any) => [s.name, s]))
    expect(byName.hard.blocked.count).toBe(3)
    expect(byName.degrade.degraded.count).toBe(recordedDecisions.filter((d) => d === 'degraded').length)
    expect(byName.shadow.would_block.count).toBe(recordedDecisions.filter((d) => d === 'would_block').length)
    // The soft budget saw 6 calls against 3 calls' amount: both alerts fired, nothing was refused.
    expect(byName.soft.thresholds.map((t: any) => [t.threshold_percent, t.action])).toEqual([
      [50, 'notify'],
      [80, 'notify'],
    ])
    expect(byName.soft.blocked.count).toBe(0)
    expect(report.totals.avoided_micros).toBeGreaterThan(0)
  })
})

async function waitFor(gw: TestGateway, id: string): Promise<any> {
  for (let i = 0; i < 200; i++) {
    const { status, body } = await gw.admin('GET', `/v1/replays/${id}`)
    expect(status).toBe(200)
    if (body.status !== 'running') {
      expect(body.status).toBe('done')
      return body
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('replay did not finish')
}
