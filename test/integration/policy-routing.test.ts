/**
 * Per-threshold routing, owners and escalation, delivered to real local receivers: an SMTP server
 * (smtp-server), a Slack-shaped incoming webhook and a signed webhook (node:http).
 * Method: a BudgetService wired to the real SQLite adapters and Notifier; spend reaches the
 * budget through the ledger's counters and `onSpendSettled`, exactly as a settled call does; the
 * Dispatcher delivers; the Escalator runs at FakeClock instants instead of waiting hours.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { SMTPServer } from 'smtp-server'
import { FakeClock } from '../../src/lib/clock.js'
import { micros } from '../../src/money/index.js'
import type { NotificationChannel } from '../../src/config/types.js'
import { budgetCreateBodySchema, counterRefOf, periodOf, type Budget, type BudgetService } from '../../src/budgets/index.js'
import { Dispatcher, Escalator, createChannelSender, verifySignature, SIGNATURE_HEADER } from '../../src/notify/index.js'
import type { SqliteLedgerStore } from '../../src/store/sqlite/ledger-store.js'
import { openNotifyDb, tempDbPath, wire } from './notify-support.js'

const SECRET = 'whsec_policy_routing'
const HOUR = 3_600_000
const ORG = 'org_acme'
const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

interface Received {
  readonly headers: IncomingMessage['headers']
  readonly body: string
}

async function httpReceiver(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      res.end('ok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received }
}

async function smtpReceiver(): Promise<{ url: string; messages: string[] }> {
  const messages: string[] = []
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        // Undo quoted-printable soft breaks and header folding before reading.
        messages.push(
          Buffer.concat(chunks)
            .toString('utf8')
            .replace(/=\r?\n/g, '')
            .replace(/\r?\n[ \t]+/g, ' '),
        )
        callback()
      })
    },
  })
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise<void>((resolve) => smtp.close(() => resolve())))
  return { url: `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`, messages }
}

/** Three receivers and the channels that reach them. */
async function receivers() {
  const [email, slack, webhook] = await Promise.all([smtpReceiver(), httpReceiver(), httpReceiver()])
  const channels: NotificationChannel[] = [
    { id: 'finops-email', type: 'email', smtpUrl: email.url, from: 'tollgate@example.com', to: ['finops@example.com'] },
    { id: 'finops-slack', type: 'slack', webhookUrl: slack.url },
    { id: 'ops-webhook', type: 'webhook', url: webhook.url, secret: SECRET },
  ]
  return { email, slack, webhook, channels }
}

function gateway(path: string, channels: NotificationChannel[], clock: FakeClock, escalationChannels: string[] = []) {
  const db = openNotifyDb(path)
  // The forecast and spike checks read usage events: none here, and they would only add notices.
  const wired = wire(db, clock, channels, { forecastMinElapsedMs: 365 * 24 * HOUR }, { escalationChannels })
  const service = wired.service
  const senders = channels.map((c) => createChannelSender(c, { headersTimeoutMs: 2_000, bodyTimeoutMs: 2_000 }))
  const dispatcher = new Dispatcher({ outbox: wired.notifyStore, senders, clock, random: () => 0.5 })
  const escalator = new Escalator({ store: wired.notifyStore, sink: wired.notifier, clock })
  const close = async () => {
    await Promise.all(senders.map((s) => s.close?.()))
    db.close()
  }
  return { db, service, ledger: wired.ledger, notifyStore: wired.notifyStore, dispatcher, escalator, close }
}

/** Spend `usd` on the budget now, as a settled call would: counters, then thresholds. */
async function spend(service: BudgetService, ledger: SqliteLedgerStore, budget: Budget, clock: FakeClock, usd: number) {
  const period = periodOf(budget.period, budget.timezone, clock.nowMs())
  const crossings = await ledger.recordSpend(ORG, [counterRefOf(budget, period)], micros(usd * 1_000_000))
  return service.onSpendSettled(crossings, { atMs: clock.nowMs() })
}

const titleOfSlack = (r: Received) => (JSON.parse(r.body) as { text: string }).text.split('\n')[0]!
const webhookBody = (r: Received) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> }

describe('per-threshold routing to real receivers', () => {
  it('50% → email, 80% → Slack, 95% → Slack + signed webhook, on one budget: each threshold reaches its own channels only', async () => {
    const { email, slack, webhook, channels } = await receivers()
    const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
    const g = gateway(tempDbPath(), channels, clock)
    closers.push(g.close)
    const budget = await g.service.create(
      ORG,
      budgetCreateBodySchema.parse({
        name: 'marketing monthly',
        scope: { kind: 'team', id: 'team_marketing' },
        period: 'monthly',
        amount_usd: 100,
        alert_thresholds: [],
        threshold_actions: [
          { threshold_percent: 50, action: 'notify', channels: ['finops-email'] },
          { threshold_percent: 80, action: 'notify', channels: ['finops-slack'] },
          { threshold_percent: 95, action: 'notify', channels: ['finops-slack', 'ops-webhook'] },
        ],
      }),
    )

    await spend(g.service, g.ledger, budget, clock, 55)
    expect((await g.dispatcher.tick()).map((r) => [r.channelId, r.outcome])).toEqual([['finops-email', 'delivered']])
    await spend(g.service, g.ledger, budget, clock, 30) // 85%
    await spend(g.service, g.ledger, budget, clock, 12) // 97%
    const reports = await g.dispatcher.tick()
    expect(reports.map((r) => r.outcome)).toEqual(['delivered', 'delivered', 'delivered'])

    expect(email.messages).toHaveLength(1)
    expect(email.messages[0]).toContain('Subject: [Tollgate] Budget for team:team_marketing (marketing monthly) reached 50%')
    // One dispatcher tick delivers both at once: their arrival order is not fixed.
    expect(slack.received.map(titleOfSlack).sort()).toEqual([
      'Budget for team:team_marketing (marketing monthly) reached 80%',
      'Budget for team:team_marketing (marketing monthly) reached 95%',
    ])
    expect(webhook.received).toHaveLength(1)
    const signed = webhook.received[0]!
    expect(verifySignature(SECRET, signed.headers[SIGNATURE_HEADER] as string, signed.body, Date.now())).toBe(true)
    expect(webhookBody(signed)).toMatchObject({ type: 'budget.threshold', data: { threshold_percent: 95, action: 'notify', spend_usd: 97 } })
  })

  it("gives the budget's owner channel every notice, whatever the threshold's routing", async () => {
    const { email, slack, webhook, channels } = await receivers()
    const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
    const g = gateway(tempDbPath(), channels, clock)
    closers.push(g.close)
    const budget = await g.service.create(
      ORG,
      budgetCreateBodySchema.parse({
        name: 'search daily',
        scope: { kind: 'endpoint', id: 'search' },
        period: 'daily',
        amount_usd: 10,
        owner: 'ops-webhook',
        alert_thresholds: [50],
        threshold_actions: [{ threshold_percent: 80, action: 'notify', channels: ['finops-slack'] }],
        channels: ['finops-email'],
      }),
    )
    await spend(g.service, g.ledger, budget, clock, 9)
    await g.dispatcher.tick()
    expect(email.messages).toHaveLength(1) // 50%: the budget's channels
    expect(slack.received.map(titleOfSlack)).toEqual(['Budget for endpoint:search (search daily) reached 80%'])
    expect(webhook.received.map((r) => webhookBody(r).data['threshold_percent']).sort()).toEqual([50, 80])
    expect(webhookBody(webhook.received[0]!).data['owner']).toBe('ops-webhook')
  })
})

describe('escalation of an unacknowledged threshold notice', () => {
  async function escalatingBudget(g: ReturnType<typeof gateway>) {
    return g.service.create(
      ORG,
      budgetCreateBodySchema.parse({
        name: 'checkout monthly',
        scope: { kind: 'endpoint', id: 'checkout' },
        period: 'monthly',
        amount_usd: 100,
        alert_thresholds: [80],
        owner: 'finops-slack',
        channels: ['finops-email'],
        escalate_after: '2h',
      }),
    )
  }

  it('sends ONE escalation to the owner and the escalation channels after 2h, and survives a restart on the way', async () => {
    const { email, slack, webhook, channels } = await receivers()
    const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
    const path = tempDbPath()
    const first = gateway(path, channels, clock, ['ops-webhook'])
    const budget = await escalatingBudget(first)
    const [notice] = await spend(first.service, first.ledger, budget, clock, 85)
    await first.dispatcher.tick()
    expect(email.messages).toHaveLength(1)
    expect(slack.received).toHaveLength(1) // the owner gets the notice itself too
    clock.advance(2 * HOUR - 1)
    expect(await first.escalator.tick()).toEqual([])
    await first.close()

    // A restart: the due time is in the store, not in a timer.
    clock.advance(1)
    const second = gateway(path, channels, clock, ['ops-webhook'])
    closers.push(second.close)
    const escalated = await second.escalator.tick()
    expect(escalated.map((n) => [n.type, n.data['escalates'], n.data['unacknowledged_for']])).toEqual([['budget.escalated', notice!.notificationId, '2h']])
    expect(await second.escalator.tick()).toEqual([])
    clock.advance(10 * HOUR)
    expect(await second.escalator.tick()).toEqual([])

    await second.dispatcher.tick()
    expect(email.messages).toHaveLength(1) // not an escalation target
    expect(slack.received.map(titleOfSlack)).toEqual([
      'Budget for endpoint:checkout (checkout monthly) reached 80%',
      'Unacknowledged for 2h: Budget for endpoint:checkout (checkout monthly) reached 80%',
    ])
    expect(webhook.received.map((r) => webhookBody(r))).toMatchObject([
      { type: 'budget.escalated', data: { escalates: notice!.notificationId, owner: 'finops-slack' } },
    ])
  })

  it('does not escalate a notice acknowledged in time', async () => {
    const { slack, webhook, channels } = await receivers()
    const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
    const g = gateway(tempDbPath(), channels, clock, ['ops-webhook'])
    closers.push(g.close)
    const budget = await escalatingBudget(g)
    const [notice] = await spend(g.service, g.ledger, budget, clock, 85)
    clock.advance(2 * HOUR - 1)
    const acked = await g.notifyStore.acknowledge(ORG, notice!.notificationId, clock.nowMs(), undefined)
    expect(acked?.acknowledgedAtMs).toBe(clock.nowMs())
    clock.advance(HOUR)
    expect(await g.escalator.tick()).toEqual([])
    await g.dispatcher.tick()
    expect(slack.received).toHaveLength(1)
    expect(webhook.received).toHaveLength(0)
    expect(await g.notifyStore.acknowledge('org_other', notice!.notificationId, clock.nowMs(), undefined)).toBeUndefined()
  })
})
