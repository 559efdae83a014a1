/**
 * `tollgate wallets …` and `tollgate tickets …` as an owner uses them with wallet enforcement on:
 * allocating funds lets calls through and the ledger shows where the money went; a call refused
 * for want of funds opens a cost ticket that `tickets list` shows, `tickets approve --amount`
 * tops the wallet up (the next call passes) and `tickets deny` adds nothing. A viewer can read
 * but not allocate (exit 1, forbidden).
 *
 * How: a listening gateway on SQLite with a mock upstream (startTestGateway), proxied calls with
 * fetch, the built CLI in a child process per command, the API read back with plain HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aConfig, CONSUMER_KEY, startTestGateway, type TestGateway } from '../support/gateway.js'
import { cliFor, expectFailure, expectOk, jsonOf, tableRows, type Cli } from './cli-harness.js'

let gw: TestGateway
let cli: Cli

beforeAll(async () => {
  gw = await startTestGateway({
    yaml: aConfig({
      walletEnforcement: true,
      consumers: [
        { name: 'alpha-svc', apiKey: CONSUMER_KEY, teamId: 'team_alpha' },
        { name: 'beta-svc', apiKey: 'tg_test_beta_key_0123456789abcdef', teamId: 'team_beta' },
        { name: 'gamma-svc', apiKey: 'tg_test_gamma_key_0123456789abcdef', teamId: 'team_gamma' },
      ],
    }),
  })
  cli = cliFor(gw)
})
afterAll(() => gw?.close())

async function chat(key: string): Promise<{ status: number; body: any; costUsd: number }> {
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hello' }] }),
  })
  return { status: response.status, body: await response.json(), costUsd: Number(response.headers.get('x-tollgate-cost-usd') ?? 'NaN') }
}

async function walletOf(scope: string): Promise<any> {
  return (await gw.admin('GET', '/v1/wallets')).body.data.find((w: any) => w.scope === scope)
}

describe('tollgate wallets', () => {
  it('allocate funds a team; list and ledger show the allocation and the call it paid for', async () => {
    const allocated = expectOk(await cli('wallets', 'allocate', '--team', 'team_alpha', '--amount', '2.5', '--description', 'May top-up'))
    expect(allocated.stdout).toMatch(/Allocated 2\.50 USD to team:team_alpha/)
    expect(allocated.stdout).toMatch(/available:\s+2\.50 USD/)
    const wallet = await walletOf('team:team_alpha')
    expect(wallet).toMatchObject({ allocated_usd: 2.5, available_usd: 2.5 })

    const call = await chat(CONSUMER_KEY)
    expect(call.status).toBe(200)
    expect(call.costUsd).toBeGreaterThan(0)

    const rows = tableRows(expectOk(await cli('wallets', 'list')).stdout)
    expect(rows[0]).toEqual(['ID', 'SCOPE', 'ALLOCATED USD', 'SPENT USD', 'RESERVED USD', 'AVAILABLE USD'])
    const row = rows.find((r) => r[1] === 'team:team_alpha')
    expect(row?.[0]).toBe(wallet.id)
    expect(Number(row?.[3])).toBeCloseTo(call.costUsd, 6)
    expect(Number(row?.[5])).toBeCloseTo(2.5 - call.costUsd, 6)

    const ledger = expectOk(await cli('wallets', 'ledger', wallet.id))
    expect(ledger.stdout).toMatch(new RegExp(`wallet:\\s+${wallet.id} \\(team:team_alpha\\)`))
    const kinds = tableRows(ledger.stdout).map((r) => r[1])
    expect(kinds).toContain('allocation')
    expect(kinds).toContain('settlement')
    expect(ledger.stdout).toContain('May top-up')

    const limited = jsonOf(expectOk(await cli('wallets', 'ledger', wallet.id, '--limit', '1', '--json')))
    expect(limited.wallet.id).toBe(wallet.id)
    expect(limited.data).toHaveLength(1)
  })

  it('--json allocate prints the wallet view; the API agrees', async () => {
    const view = jsonOf(expectOk(await cli('wallets', 'allocate', '--user', 'user_ana', '--amount', '0.000001', '--json')))
    expect(view).toMatchObject({ scope: 'user:user_ana', allocated_usd: 0.000001, allocated_micros: 1 })
    expect(await walletOf('user:user_ana')).toMatchObject({ id: view.id, allocated_micros: 1 })
    const list = jsonOf(expectOk(await cli('--json', 'wallets', 'list')))
    expect(list.data.map((w: any) => w.scope)).toContain('user:user_ana')
  })

  it('--user with --team funds that user’s wallet within the team', async () => {
    const view = jsonOf(expectOk(await cli('wallets', 'allocate', '--user', 'user_bo', '--team', 'team_alpha', '--amount', '1', '--json')))
    expect(view).toMatchObject({ scope: 'user:user_bo', team_id: 'team_alpha', allocated_usd: 1 })
    expect(await walletOf('user:user_bo')).toMatchObject({ id: view.id, team_id: 'team_alpha' })
  })

  it('usage errors exit 2 and allocate nothing: no target, two targets, a bad amount, a ledger --limit past 1000', async () => {
    const before = (await gw.admin('GET', '/v1/wallets')).body.data.length
    expect(expectFailure(await cli('wallets', 'allocate', '--amount', '1'), 2)).toMatch(/--team ID, --user ID \(optionally with --team\) or --org ID/)
    expect(expectFailure(await cli('wallets', 'allocate', '--team', 'a', '--org', 'b', '--amount', '1'), 2)).toMatch(/cannot be used with/)
    expect(expectFailure(await cli('wallets', 'allocate', '--team', 'a', '--amount', '-3'), 2)).toMatch(/--amount <usd>/)
    expect(expectFailure(await cli('wallets', 'ledger', 'wal_x', '--limit', '1001'), 2)).toMatch(/--limit: at most 1000/)
    expect((await gw.admin('GET', '/v1/wallets')).body.data).toHaveLength(before)
  })

  it('a viewer reads wallets but cannot allocate (exit 1, forbidden); an org that is not yours is refused', async () => {
    const viewer = await gw.admin('POST', '/v1/admin-tokens', { name: 'auditor', role: 'viewer' })
    const asViewer = cliFor(gw, viewer.body.token)
    expectOk(await asViewer('wallets', 'list'))
    expect(expectFailure(await asViewer('wallets', 'allocate', '--team', 'team_alpha', '--amount', '100'), 1)).toMatch(
      /forbidden \(HTTP 403\): role viewer is read-only/,
    )
    expect(expectFailure(await cli('wallets', 'allocate', '--org', 'org_other', '--amount', '100'), 1)).toMatch(/forbidden/)
    expect((await walletOf('team:team_alpha')).allocated_usd).toBe(2.5)
  })

  it('an unknown wallet id exits 1 with not_found', async () => {
    expect(expectFailure(await cli('wallets', 'ledger', 'wal_nope'), 1)).toMatch(/not_found \(HTTP 404\): wallet wal_nope does not exist/)
  })
})

describe('tollgate tickets', () => {
  it('a refused call’s ticket is listed; approve --amount tops the wallet up and the next call passes', async () => {
    const betaKey = 'tg_test_beta_key_0123456789abcdef'
    const refused = await chat(betaKey)
    expect(refused.status).toBe(429)
    const ticketId = refused.body.error.ticket_id as string
    expect(ticketId).toMatch(/^ct_/)

    const pending = tableRows(expectOk(await cli('tickets', 'list', '--status', 'pending')).stdout)
    expect(pending[0]).toEqual(['ID', 'STATUS', 'SCOPE', 'CONSUMER', 'MODEL', 'ESTIMATE USD', 'GRANTED USD', 'REFUSED', 'CREATED'])
    expect(pending.find((r) => r[0] === ticketId)).toEqual(expect.arrayContaining([ticketId, 'pending', 'team:team_beta', 'beta-svc', 'gpt-4o-mini']))

    const approved = expectOk(await cli('tickets', 'approve', ticketId, '--amount', '3', '--note', 'launch week'))
    expect(approved.stdout).toMatch(new RegExp(`Approved ${ticketId}: 3\\.00 USD added to team:team_beta`))
    expect(await walletOf('team:team_beta')).toMatchObject({ allocated_usd: 3 })
    expect((await chat(betaKey)).status).toBe(200)

    const approvedList = jsonOf(expectOk(await cli('tickets', 'list', '--status', 'approved', '--json')))
    expect(approvedList.data.find((t: any) => t.id === ticketId)).toMatchObject({ status: 'approved', grant_usd: 3, note: 'launch week' })
    expect(jsonOf(expectOk(await cli('tickets', 'list', '--status', 'pending', '--json'))).data.map((t: any) => t.id)).not.toContain(ticketId)

    expect(expectFailure(await cli('tickets', 'approve', ticketId), 1)).toMatch(/conflict \(HTTP 409\): cost ticket ct_\w+ is already approved/)
    expect((await walletOf('team:team_beta')).allocated_usd).toBe(3)
  })

  it('deny adds no funds and the ticket says denied (--json)', async () => {
    const gammaKey = 'tg_test_gamma_key_0123456789abcdef'
    const refused = await chat(gammaKey)
    expect(refused.status).toBe(429)
    const ticketId = refused.body.error.ticket_id as string
    const denied = jsonOf(expectOk(await cli('tickets', 'deny', ticketId, '--note', 'not this month', '--json')))
    expect(denied).toMatchObject({ id: ticketId, status: 'denied', note: 'not this month', grant_usd: null })
    expect(await walletOf('team:team_gamma')).toBeUndefined()
    expect((await chat(gammaKey)).status).toBe(429)
  })

  it('an unknown --status exits 2; an unknown ticket exits 1', async () => {
    expect(expectFailure(await cli('tickets', 'list', '--status', 'open'), 2)).toMatch(/'--status <status>' argument 'open' is invalid/)
    expect(expectFailure(await cli('tickets', 'deny', 'ct_nope'), 1)).toMatch(/not_found \(HTTP 404\)/)
  })
})
