/**
 * `tollgate demo`: a gateway on a fresh embedded store with the built-in mock provider, filled
 * with weeks of traffic from several teams so every console page has something real to show.
 *
 *   1. start the gateway on a temp SQLite store, with the demo clock and a random admin token;
 *   2. fund the team wallets and create the budgets, at the start of the simulated history;
 *   3. history: hour by hour, the scenario's calls go through the gateway's proxy with the clock
 *      set to their simulated time (a prompt version that costs more, a two-hour spike);
 *   4. back to real time: budgets get their real amounts, and live calls cross 50/80/95, trigger
 *      a degrade and a shadow block, run a wallet dry and leave a request held on a cost ticket.
 *
 * Everything goes through the HTTP API and the proxy, as a client would; nothing is written to
 * the store directly.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../config/index.js'
import { createLogger } from '../../observability/logger.js'
import { startServer, type RunningServer } from '../../server.js'
import { randomBytes } from 'node:crypto'
import { DemoClock } from './demo-clock.js'
import { startDemoReceiver } from './demo-receiver.js'
import { DemoClient, inParallel } from './demo-client.js'
import {
  BUDGET_AMOUNT_PARKED_USD,
  DEMO_BUDGETS,
  DEMO_PREFERENCE,
  DEMO_WEBHOOK_SECRET_ENV,
  type DemoBudget,
  TEAM_WALLETS,
  USER_WALLET,
  amountForShare,
  demoAdminToken,
  demoConfigYaml,
  demoConsumerKeys,
} from './demo-setup.js'
import { DRY_CONSUMER, DRY_TEAM, hourlyCalls, labsCall, seededRandom, type DemoCall } from './scenario.js'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
/** Calls in flight at once while the history is generated. */
const PARALLEL_CALLS = 8
/** Each simulated hour is sent in this many slots, the clock moving forward between them. */
const SLOTS_PER_HOUR = 2
/** Live pushes stop after this many calls even if a budget has not reached its mark. */
const PUSH_CALLS_MAX = 400
/** A labs call still running after this long is waiting on its cost ticket (held). */
const HELD_AFTER_MS = 1_500
/** How often the demo puts a new held request up after the previous one timed out. */
const HELD_REQUESTS_MAX = 12

export interface DemoOptions {
  readonly port: number
  readonly host?: string
  /** Fewer days and calls: for tests. */
  readonly fast: boolean
  /** Lines for the person running it (progress, URL, token). */
  readonly announce: (line: string) => void
  readonly seed?: number
}

export interface RunningDemo {
  readonly url: string
  readonly consoleUrl: string
  readonly adminToken: string
  readonly server: RunningServer
  /** The request waiting on a cost ticket: resolves with its final HTTP status. */
  readonly heldRequest: Promise<number>
  /** Proxied calls sent while generating. */
  readonly callsSent: number
  stop(): Promise<void>
}

export async function runDemo(options: DemoOptions): Promise<RunningDemo> {
  const { announce } = options
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-demo-'))
  const adminToken = demoAdminToken()
  const keys = demoConsumerKeys()
  const clock = new DemoClock()
  const receiver = await startDemoReceiver()
  const env = { ...process.env, TOLLGATE_ADMIN_TOKEN: adminToken, [DEMO_WEBHOOK_SECRET_ENV]: randomBytes(24).toString('base64url') }
  const config = parseConfig(demoConfigYaml(join(dir, 'demo.sqlite'), keys, receiver.url), '<tollgate demo>', { env })
  const server = await startServer(config, {
    port: options.port,
    host: options.host ?? '127.0.0.1',
    env,
    clock,
    logger: createLogger({ level: process.env.TOLLGATE_LOG_LEVEL ?? 'warn' }),
    announce: () => {},
  }).catch(async (error: unknown) => {
    await receiver.close()
    rmSync(dir, { recursive: true, force: true })
    throw error
  })
  const client = new DemoClient(server.url, adminToken, keys)
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    client.abort()
    clock.present()
    await server.stop()
    await receiver.close()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const random = seededRandom(options.seed ?? 20_261_115)
    const nowMs = Date.now()
    // --fast still covers two weeks, so the Overview's 7 days and the previous 7 for comparison both have data.
    const days = options.fast ? 14 : 21
    const volume = options.fast ? 0.15 : 1
    const historyStartMs = Math.floor((nowMs - days * DAY_MS) / HOUR_MS) * HOUR_MS

    clock.travelTo(historyStartMs)
    announce(`tollgate demo: store ${dir}; simulating ${days} days of traffic from ${new Date(historyStartMs).toISOString().slice(0, 16)}Z`)
    await allocateWallets(client)
    const callsSent = await sendHistory(client, clock, { historyStartMs, nowMs, volume, random, announce })
    clock.present()
    // Budgets come after the history: each starts from its period's spend so far, and no notice
    // of the history's spike names an amount the demo only sets below.
    const budgetIds = await createBudgets(client)

    announce('tollgate demo: live calls: budgets crossing their thresholds, a degrade, a wallet running dry')
    // A pushed budget gets its amount just before its own push, so its live calls cross its
    // thresholds; the others after the pushes, so they stand at their target share when the demo
    // is ready.
    await client.admin('PUT', '/v1/notification-preferences', DEMO_PREFERENCE)
    const pushed = await pushBudgets(client, budgetIds, random, pushClock(clock, Date.now()))
    clock.present()
    await setBudgetAmounts(client, budgetIds, (b) => !b.pushed)
    const { heldRequest } = await runWalletDry(client, random, announce)
    const consoleUrl = `${server.url}/usage`
    announce(`tollgate demo: ready — ${callsSent + pushed} calls recorded`)
    return { url: server.url, consoleUrl, adminToken, server, heldRequest, callsSent: callsSent + pushed, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

async function allocateWallets(client: DemoClient): Promise<void> {
  for (const wallet of TEAM_WALLETS) {
    await client.admin('POST', '/v1/wallets/allocate', { team_id: wallet.team, amount: wallet.usd, currency: 'USD', description: 'demo: opening budget' })
  }
  // A user wallet belongs to a team: calls naming that user through the team's keys pay from it first.
  await client.admin('POST', '/v1/wallets/allocate', {
    user_id: USER_WALLET.user,
    team_id: USER_WALLET.team,
    amount: USER_WALLET.usd,
    currency: 'USD',
    description: 'demo: personal allowance',
  })
}

/** The demo's budgets, parked at an amount nothing reaches until setBudgetAmounts sets theirs. */
async function createBudgets(client: DemoClient): Promise<Map<string, string>> {
  const ids = new Map<string, string>()
  for (const budget of DEMO_BUDGETS) {
    const created = await client.admin<{ id: string }>('POST', '/v1/billing/budgets', {
      name: budget.name,
      amount_usd: BUDGET_AMOUNT_PARKED_USD,
      timezone: 'UTC',
      ...budget.body,
    })
    ids.set(budget.name, created.id)
  }
  return ids
}

interface HistoryPlan {
  readonly historyStartMs: number
  readonly nowMs: number
  readonly volume: number
  readonly random: () => number
  readonly announce: (line: string) => void
}

/** Hour by hour up to the hour before now, the clock set to each slot's simulated time. */
async function sendHistory(client: DemoClient, clock: DemoClock, plan: HistoryPlan): Promise<number> {
  const lastHourMs = Math.floor(plan.nowMs / HOUR_MS) * HOUR_MS - HOUR_MS
  const hours = Math.max(0, (lastHourMs - plan.historyStartMs) / HOUR_MS + 1)
  let sent = 0
  let reportedTenth = -1
  for (let hour = 0; hour < hours; hour++) {
    const hourStartMs = plan.historyStartMs + hour * HOUR_MS
    const calls = hourlyCalls(hourStartMs, plan.nowMs, plan.volume, plan.random)
    for (let slot = 0; slot < SLOTS_PER_HOUR; slot++) {
      const slotCalls = calls.filter((_, i) => i % SLOTS_PER_HOUR === slot)
      if (slotCalls.length === 0) continue
      clock.travelTo(hourStartMs + (slot * HOUR_MS) / SLOTS_PER_HOUR + Math.floor(plan.random() * (HOUR_MS / SLOTS_PER_HOUR / 2)))
      await inParallel(
        slotCalls.map((call) => () => client.chat(call)),
        PARALLEL_CALLS,
      )
      sent += slotCalls.length
    }
    const tenth = Math.floor(((hour + 1) / hours) * 10)
    if (tenth !== reportedTenth) {
      reportedTenth = tenth
      plan.announce(`tollgate demo: history ${tenth * 10}% — ${new Date(hourStartMs).toISOString().slice(0, 10)}, ${sent} calls`)
    }
  }
  return sent
}

interface BudgetWithPosture {
  id: string
  name: string
  amount_usd: number
  posture: { spend_usd: number; percent: number; forecast_spend_usd: number | null }
}

/** Each chosen budget's real amount (see DemoBudget.targetShare). */
async function setBudgetAmounts(client: DemoClient, ids: ReadonlyMap<string, string>, which: (budget: DemoBudget) => boolean): Promise<void> {
  for (const budget of DEMO_BUDGETS.filter(which)) {
    const id = ids.get(budget.name)!
    const { posture } = await client.admin<BudgetWithPosture>('GET', `/v1/billing/budgets/${id}`)
    const basisUsd = budget.pushed ? posture.spend_usd : (posture.forecast_spend_usd ?? posture.spend_usd)
    await client.admin('PATCH', `/v1/billing/budgets/${id}`, { amount_usd: amountForShare(basisUsd, budget.targetShare, 1) })
  }
}

/**
 * Live calls until each pushed budget reaches its mark: the shadow cap past 100% (growth's calls,
 * so first), growth past 95%, support into its degrade.
 */
async function pushBudgets(client: DemoClient, ids: ReadonlyMap<string, string>, random: () => number, tick: () => void): Promise<number> {
  const base = { user: 'ben', agent: undefined, promptChars: 0 }
  const pushes: Array<{ budget: string; percent: number; extra: number; call: DemoCall }> = [
    {
      budget: 'Summarize shadow cap',
      percent: 102,
      extra: 0,
      call: { ...base, user: 'chen', consumer: 'growth-web', endpoint: 'search.summarize', promptVersion: 'summarize_v4', model: 'gpt-4o' },
    },
    {
      budget: 'Support weekly',
      percent: 85,
      extra: 3,
      call: { ...base, user: 'fay', consumer: 'support-desk', endpoint: 'reply.draft', promptVersion: 'draft_v2', model: 'gpt-4o' },
    },
    {
      budget: 'Growth daily',
      percent: 96,
      extra: 0,
      call: { ...base, consumer: 'growth-web', endpoint: 'chat.reply', promptVersion: 'reply_v7', model: 'gpt-4o' },
    },
  ]
  let sent = 0
  for (const push of pushes) {
    // Set now, not before the first push: the shadow cap's calls are growth's too, and a daily
    // amount taken from the hours of today before them (little, early in a UTC day) would stand
    // at thousands of percent after them.
    await setBudgetAmounts(client, ids, (b) => b.name === push.budget)
    const id = ids.get(push.budget)!
    let extra = push.extra
    for (let i = 0; i < PUSH_CALLS_MAX; i++) {
      const budget = await client.admin<BudgetWithPosture>('GET', `/v1/billing/budgets/${id}`)
      if (budget.posture.percent >= push.percent && extra-- <= 0) break
      const promptChars = Math.round(promptCharsForShare(budget.amount_usd, PUSH_STEP_SHARE) * (0.8 + random() * 0.4))
      tick()
      await client.chat({ ...push.call, promptChars })
      sent++
    }
  }
  return sent
}

/** Live calls are spread over the last hours before now (within today, UTC), not crammed into one minute. */
const PUSH_WINDOW_MS = 2 * HOUR_MS
/** About how many pushed calls there are: the spacing of their simulated times. */
const PUSH_CALLS_EXPECTED = 60

/** Moves the clock one step further through the push window on each call, never past now. */
function pushClock(clock: DemoClock, nowMs: number): () => void {
  const startOfDayMs = Math.floor(nowMs / DAY_MS) * DAY_MS
  const startMs = Math.max(nowMs - PUSH_WINDOW_MS, startOfDayMs)
  const stepMs = (nowMs - startMs) / PUSH_CALLS_EXPECTED
  let step = 0
  return () => {
    const atMs = startMs + step++ * stepMs
    if (atMs >= Date.now()) clock.present()
    else clock.travelTo(atMs)
  }
}

/** Each pushed call spends about this share of its budget's amount, so thresholds are crossed one by one. */
const PUSH_STEP_SHARE = 0.03
/** gpt-4o input: $2.50 per million tokens, and the mock bills a token per 4 prompt characters. */
const PROMPT_CHARS_PER_USD = 4 * (1_000_000 / 2.5)

export function promptCharsForShare(amountUsd: number, share: number): number {
  return Math.min(60_000, Math.max(2_000, Math.round(amountUsd * share * PROMPT_CHARS_PER_USD)))
}

/**
 * Funds the labs team with a few cents and lets its notebook call until the wallet cannot cover
 * a call: that request holds, waiting on its cost ticket. Returns its final status (200 once an
 * owner approves). A held request that times out is followed by a new one, a bounded number of times.
 */
async function runWalletDry(client: DemoClient, random: () => number, announce: (line: string) => void): Promise<{ heldRequest: Promise<number> }> {
  await client.admin('POST', '/v1/wallets/allocate', {
    team_id: DRY_TEAM.id,
    amount: DRY_TEAM.walletUsd,
    currency: 'USD',
    description: 'demo: a few cents for the notebook',
  })
  for (let i = 0; i < 50; i++) {
    const call = client.chat(labsCall(random))
    const outcome = await Promise.race([call.then((r) => r.status), new Promise<'held'>((resolve) => setTimeout(() => resolve('held'), HELD_AFTER_MS))])
    if (outcome !== 'held') continue
    announce(`tollgate demo: the ${DRY_TEAM.id} wallet ran dry; a request from ${DRY_CONSUMER.name} is held on a cost ticket — approve it on /cost-tickets`)
    // A gateway stopped while the request waits ends it without a status: -1, never an unhandled rejection.
    // Wrapped in an object: awaiting a bare promise here would wait for the decision.
    return {
      heldRequest: keepHolding(
        client,
        call.then((r) => r.status),
        random,
        announce,
      ).catch(() => -1),
    }
  }
  throw new Error('demo: the labs wallet never ran dry')
}

async function keepHolding(client: DemoClient, first: Promise<number>, random: () => number, announce: (line: string) => void): Promise<number> {
  let status = await first
  for (let n = 1; status === 429 && n < HELD_REQUESTS_MAX; n++) {
    announce('tollgate demo: the held request timed out; holding a new one')
    status = (await client.chat(labsCall(random))).status
  }
  announce(`tollgate demo: the held request finished with HTTP ${status}`)
  return status
}
