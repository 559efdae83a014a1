/**
 * An owner hears of a cost ticket: a refused call puts `ticket.created` in the inbox (with the
 * ticket id, scope and estimate to act on), and approving it adds `ticket.resolved`. Method: an
 * in-process gateway with wallet enforcement and an empty team wallet.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { createLogger } from '../observability/logger.js'
import { startMockUpstream, type MockUpstream } from '../providers/index.js'

const KEY = 'tg_key_tickets'
const ADMIN = 'tg_admin_tickets'
let dir: string
let mock: MockUpstream
let app: App

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-ticket-ntf-'))
  mock = await startMockUpstream()
  const yaml = `
storage: {sqlite: ${join(dir, 'db.sqlite')}}
providers: {targets: [{id: mock, provider: mock, base_url: "${mock.url}/v1"}]}
consumer_groups: [{name: app, api_key: ${KEY}, wallet_team_id: research}]
cost_tracking: {wallet_enforcement: true}
`
  app = await buildApp(parseConfig(yaml, 'tickets.yaml'), { env: { TOLLGATE_ADMIN_TOKEN: ADMIN }, logger: createLogger({ level: 'silent' }) })
})

afterAll(async () => {
  await app.close()
  await mock.close()
  rmSync(dir, { recursive: true, force: true })
})

const admin = { authorization: `Bearer ${ADMIN}` }

describe('ticket notifications', () => {
  it('tells the inbox when a ticket opens and when it is approved', async () => {
    const refused = await app.fastify.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      payload: { model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'please' }] },
    })
    expect(refused.statusCode).toBe(429)
    const ticketId = refused.json().error.ticket_id as string

    const created = (await app.fastify.inject({ url: '/v1/notifications', headers: admin })).json().data
    expect(created).toHaveLength(1)
    expect(created[0]).toMatchObject({ type: 'ticket.created', data: { ticket_id: ticketId, scope: 'team:research', status: 'pending', model: 'gpt-4o-mini' } })
    expect(created[0].data.estimate_usd).toBeGreaterThan(0)

    expect((await app.fastify.inject({ method: 'POST', url: `/v1/cost-tickets/${ticketId}/approve`, headers: admin, payload: { amount: 1 } })).statusCode).toBe(
      200,
    )
    const after = (await app.fastify.inject({ url: '/v1/notifications', headers: admin })).json().data
    expect(after.map((n: { type: string }) => n.type)).toEqual(['ticket.resolved', 'ticket.created'])
    expect(after[0].data).toMatchObject({ ticket_id: ticketId, status: 'approved', grant_usd: 1 })
  })
})
