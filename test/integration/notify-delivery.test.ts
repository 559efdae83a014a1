/**
 * Delivery against real local receivers: a node:http webhook receiver that verifies the HMAC and
 * fails the first two attempts, a Slack-shaped receiver, and a real SMTP server (smtp-server).
 * Method: notifications go through Notifier → SQLite outbox → Dispatcher.tick(); the FakeClock is
 * advanced past each back-off instead of sleeping. One test closes the database and the
 * dispatcher between a failure and its retry, reopens both, and sees the retry delivered.
 */
import { createHmac } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { SMTPServer } from 'smtp-server'
import { FakeClock } from '../../src/lib/clock.js'
import type { NotificationChannel } from '../../src/config/types.js'
import { Dispatcher, Notifier, createChannelSender, newNotification, verifySignature, SIGNATURE_HEADER, type Notification } from '../../src/notify/index.js'
import { SqliteNotifyStore } from '../../src/store/sqlite/notify-store.js'
import { openNotifyDb, tempDbPath } from './notify-support.js'

const SECRET = 'whsec_test'
const retry = { outboxAttemptsMax: 4, backoffBaseMs: 1_000, backoffCapMs: 8_000 }
const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

interface Received {
  headers: IncomingMessage['headers']
  body: string
}

async function listen(handler: (received: Received, attempt: number) => number): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const entry = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }
      received.push(entry)
      res.statusCode = handler(entry, received.length)
      res.end(res.statusCode < 300 ? 'ok' : 'try later')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received }
}

function aThresholdNotification(nowMs: number): Notification {
  return newNotification(
    'budget.threshold',
    'org_acme',
    'team_marketing',
    {
      budget_id: 'bud_1',
      budget_name: 'marketing monthly',
      scope: 'team:marketing',
      threshold_percent: 80,
      spend_usd: 80.5,
      amount_usd: 100,
      percent: 80.5,
      period_start: '2026-11-01T00:00:00.000Z',
      period_end: '2026-12-01T00:00:00.000Z',
      forecast_exhaustion_at: '2026-11-20T04:00:00.000Z',
      top: { endpoints: [{ id: 'copywriter', spend_usd: 60 }], users: [{ id: 'u_ana', spend_usd: 50 }], models: [{ id: 'gpt-4o', spend_usd: 80.5 }] },
    },
    nowMs,
  )
}

function build(path: string, channels: NotificationChannel[], clock: FakeClock) {
  const db = openNotifyDb(path)
  const store = new SqliteNotifyStore(db)
  const notifier = new Notifier({ outbox: store, preferences: store, channels, clock })
  const senders = channels.map((c) => createChannelSender(c, { headersTimeoutMs: 2_000, bodyTimeoutMs: 2_000 }))
  const dispatcher = new Dispatcher({ outbox: store, senders, clock, options: { retry }, random: () => 0.5 })
  return { db, store, notifier, dispatcher, senders }
}

describe('webhook delivery', () => {
  it('retries a failing receiver with back-off until it accepts: same id, valid signature, one success', async () => {
    const receiver = await listen((r, attempt) => {
      const isSigned = verifySignature(SECRET, r.headers[SIGNATURE_HEADER] as string | undefined, r.body, Date.now())
      if (!isSigned) return 401
      return attempt <= 2 ? 503 : 200
    })
    const clock = new FakeClock()
    const channel: NotificationChannel = { id: 'ops-webhook', type: 'webhook', url: receiver.url, secret: SECRET }
    const { store, notifier, dispatcher, db } = build(tempDbPath(), [channel], clock)
    closers.push(() => db.close())
    const notification = aThresholdNotification(clock.nowMs())
    await notifier.emit(notification, undefined)

    const outcomes: string[] = []
    for (let round = 0; round < 4; round++) {
      outcomes.push(...(await dispatcher.tick()).map((r) => r.outcome))
      clock.advance(retry.backoffCapMs)
    }
    expect(outcomes).toEqual(['retry_scheduled', 'retry_scheduled', 'delivered'])
    expect(receiver.received).toHaveLength(3)
    const ids = receiver.received.map((r) => (JSON.parse(r.body) as { id: string }).id)
    expect(new Set(ids)).toEqual(new Set([notification.id]))
    const body = JSON.parse(receiver.received[2]!.body) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(['created_at', 'data', 'id', 'type'])
    expect(body).toMatchObject({ type: 'budget.threshold', data: { scope: 'team:marketing', threshold_percent: 80 } })
    const [item] = await store.itemsOf(notification.id)
    expect(item).toMatchObject({ status: 'delivered', attempts: 3 })
  })

  it('waits out the back-off: nothing is retried before the retry time', async () => {
    const receiver = await listen(() => 500)
    const clock = new FakeClock()
    const { notifier, dispatcher, db } = build(tempDbPath(), [{ id: 'w', type: 'webhook', url: receiver.url, secret: SECRET }], clock)
    closers.push(() => db.close())
    await notifier.emit(aThresholdNotification(clock.nowMs()), undefined)
    expect((await dispatcher.tick()).map((r) => r.outcome)).toEqual(['retry_scheduled'])
    clock.advance(retry.backoffBaseMs / 2 - 1) // equal jitter: never sooner than half the back-off
    expect(await dispatcher.tick()).toEqual([])
  })

  it('marks an item dead after outboxAttemptsMax failures', async () => {
    const receiver = await listen(() => 500)
    const clock = new FakeClock()
    const { store, notifier, dispatcher, db } = build(tempDbPath(), [{ id: 'w', type: 'webhook', url: receiver.url, secret: SECRET }], clock)
    closers.push(() => db.close())
    const notification = aThresholdNotification(clock.nowMs())
    await notifier.emit(notification, undefined)
    const outcomes: string[] = []
    for (let round = 0; round < 6; round++) {
      outcomes.push(...(await dispatcher.tick()).map((r) => r.outcome))
      clock.advance(retry.backoffCapMs)
    }
    expect(outcomes).toEqual(['retry_scheduled', 'retry_scheduled', 'retry_scheduled', 'dead'])
    expect((await store.itemsOf(notification.id))[0]).toMatchObject({ status: 'dead', attempts: 4 })
  })

  it('survives a restart between a failed attempt and its retry', async () => {
    const receiver = await listen((_r, attempt) => (attempt === 1 ? 503 : 200))
    const clock = new FakeClock()
    const path = tempDbPath()
    const channels: NotificationChannel[] = [{ id: 'ops-webhook', type: 'webhook', url: receiver.url, secret: SECRET }]
    const first = build(path, channels, clock)
    const notification = aThresholdNotification(clock.nowMs())
    await first.notifier.emit(notification, undefined)
    expect((await first.dispatcher.tick()).map((r) => r.outcome)).toEqual(['retry_scheduled'])
    await first.dispatcher.stop()
    first.db.close()

    clock.advance(retry.backoffCapMs)
    const second = build(path, channels, clock)
    closers.push(() => second.db.close())
    expect((await second.dispatcher.tick()).map((r) => r.outcome)).toEqual(['delivered'])
    expect(receiver.received.map((r) => (JSON.parse(r.body) as { id: string }).id)).toEqual([notification.id, notification.id])
  })

  it('never leases one item to two dispatchers at once', async () => {
    const clock = new FakeClock()
    const path = tempDbPath()
    const a = build(path, [], clock)
    const b = build(path, [], clock)
    closers.push(
      () => a.db.close(),
      () => b.db.close(),
    )
    for (let i = 0; i < 20; i++) await a.store.enqueue(aThresholdNotification(clock.nowMs()), ['x'], clock.nowMs())
    const [fromA, fromB] = await Promise.all([a.store.claimDue(clock.nowMs(), 15, 60_000), b.store.claimDue(clock.nowMs(), 15, 60_000)])
    const ids = [...fromA, ...fromB].map((c) => c.item.id)
    expect(ids).toHaveLength(20)
    expect(new Set(ids).size).toBe(20)
    // An expired lease is taken over; the old holder can no longer record an outcome.
    clock.advance(60_000)
    const takeover = await b.store.claimDue(clock.nowMs(), 1, 60_000)
    expect(takeover).toHaveLength(1)
    const stale = [...fromA, ...fromB].find((c) => c.item.id === takeover[0]!.item.id)!
    expect(await a.store.markDelivered(stale.item.id, stale.leaseToken, clock.nowMs())).toBe(false)
    expect(await b.store.markDelivered(takeover[0]!.item.id, takeover[0]!.leaseToken, clock.nowMs())).toBe(true)
  })

  it('verifySignature rejects a stale timestamp, a tampered body and a wrong secret', () => {
    const body = '{"id":"ntf_1"}'
    const nowMs = Date.UTC(2026, 10, 15)
    const t = Math.floor(nowMs / 1000)
    const header = `t=${t},v1=${createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex')}`
    expect(verifySignature(SECRET, header, body, nowMs)).toBe(true)
    expect(verifySignature(SECRET, header, body, nowMs + 301_000)).toBe(false)
    expect(verifySignature(SECRET, header, body.replace('1', '2'), nowMs)).toBe(false)
    expect(verifySignature('other', header, body, nowMs)).toBe(false)
    expect(verifySignature(SECRET, undefined, body, nowMs)).toBe(false)
  })
})

describe('slack and email delivery', () => {
  it('posts a Slack incoming-webhook message with readable text and blocks', async () => {
    const receiver = await listen(() => 200)
    const clock = new FakeClock()
    const { notifier, dispatcher, db } = build(tempDbPath(), [{ id: 'finance-slack', type: 'slack', webhookUrl: receiver.url }], clock)
    closers.push(() => db.close())
    await notifier.emit(aThresholdNotification(clock.nowMs()), undefined)
    expect((await dispatcher.tick()).map((r) => r.outcome)).toEqual(['delivered'])
    const message = JSON.parse(receiver.received[0]!.body) as { text: string; blocks: { type: string }[] }
    expect(message.text).toContain('Budget for team:marketing (marketing monthly) reached 80%')
    expect(message.text).toContain('Spend: $80.50 of $100.00 (80.5%)')
    expect(message.text).toContain('Top endpoints: copywriter $60.00')
    expect(message.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context'])
  })

  it('sends names a caller chose as text: a user id cannot ping @channel or disguise a link', async () => {
    const receiver = await listen(() => 200)
    const clock = new FakeClock()
    const { notifier, dispatcher, db } = build(tempDbPath(), [{ id: 'finance-slack', type: 'slack', webhookUrl: receiver.url }], clock)
    closers.push(() => db.close())
    const hostile = '<!channel> re-authenticate at <https://evil.example/login|console> & now'
    const notice = aThresholdNotification(clock.nowMs())
    const data = { ...notice.data, top: { endpoints: [], users: [{ id: hostile, spend_usd: 50 }], models: [] } }
    await notifier.emit({ ...notice, data }, undefined)
    expect((await dispatcher.tick()).map((r) => r.outcome)).toEqual(['delivered'])
    const message = JSON.parse(receiver.received[0]!.body) as { text: string; blocks: Array<{ type: string; text?: { text: string } }> }
    const section = message.blocks.find((b) => b.type === 'section')!.text!.text
    for (const text of [message.text, section]) {
      expect(text).toContain('&lt;!channel&gt; re-authenticate at &lt;https://evil.example/login|console&gt; &amp; now')
      expect(text).not.toMatch(/<!channel>|<https:/)
    }
  })

  it('sends an email over SMTP with the subject and the context in text and HTML', async () => {
    const messages: string[] = []
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, _session, callback) {
        const chunks: Buffer[] = []
        stream.on('data', (c: Buffer) => chunks.push(c))
        stream.on('end', () => {
          messages.push(Buffer.concat(chunks).toString('utf8'))
          callback()
        })
      },
    })
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve))
    closers.push(() => new Promise<void>((resolve) => smtp.close(() => resolve())))
    const port = (smtp.server.address() as AddressInfo).port
    const clock = new FakeClock()
    const channel: NotificationChannel = {
      id: 'finance-email',
      type: 'email',
      smtpUrl: `smtp://127.0.0.1:${port}`,
      from: 'tollgate@example.com',
      to: ['finance@example.com'],
    }
    const { notifier, dispatcher, db, senders } = build(tempDbPath(), [channel], clock)
    closers.push(
      () => db.close(),
      () => senders[0]!.close?.(),
    )
    await notifier.emit(aThresholdNotification(clock.nowMs()), undefined)
    const reports = await dispatcher.tick()
    expect(reports.map((r) => [r.outcome, r.error])).toEqual([['delivered', undefined]])
    expect(messages).toHaveLength(1)
    // Undo quoted-printable soft breaks and header folding before reading.
    const raw = messages[0]!.replace(/=\r?\n/g, '').replace(/\r?\n[ \t]+/g, ' ')
    expect(raw).toContain('Subject: [Tollgate] Budget for team:marketing (marketing monthly) reached 80%')
    expect(raw).toContain('To: finance@example.com')
    expect(raw).toContain('Spend: $80.50 of $100.00 (80.5%)')
    expect(raw).toContain('text/html')
  })
})
