/**
 * `tollgate keys …` and `tollgate tokens …` as an admin uses them: a created consumer key is
 * printed once and works against the proxy at once; lists show its prefix and never the key;
 * revoking it makes the proxy refuse it. Admin tokens likewise: a viewer token reads but cannot
 * write, and a revoked token is refused. A team_admin token without --team is a usage error.
 *
 * How: a listening gateway on SQLite with a mock upstream; proxied calls with fetch; the built
 * CLI in a child process per command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { cliFor, expectFailure, expectOk, jsonOf, tableRows, type Cli } from './cli-harness.js'

let gw: TestGateway
let cli: Cli

beforeAll(async () => {
  gw = await startTestGateway()
  cli = cliFor(gw)
})
afterAll(() => gw?.close())

async function chatStatus(key: string): Promise<number> {
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
  })
  await response.arrayBuffer()
  return response.status
}

describe('tollgate keys', () => {
  it('create prints the key once; it works at once; list shows its prefix only; revoke makes the proxy refuse it', async () => {
    const created = expectOk(
      await cli('keys', 'create', '--name', 'checkout', '--team', 'team_checkout', '--user', 'svc-user', '--environment', 'staging', '--endpoint', 'cart'),
    )
    const key = /^key: (\S+)$/m.exec(created.stdout)?.[1]
    expect(key, created.stdout).toMatch(/^tg_key_/)
    expect(created.stdout).toMatch(/not shown again/)
    expect(await chatStatus(key!)).toBe(200)

    const listed = expectOk(await cli('keys', 'list'))
    expect(listed.stdout).not.toContain(key)
    const rows = tableRows(listed.stdout)
    expect(rows[0]).toEqual(['ID', 'NAME', 'PREFIX', 'TEAM', 'USER', 'AGENT', 'ENV', 'ENDPOINT', 'CREATED', 'REVOKED'])
    const row = rows.find((r) => r[1] === 'checkout')!
    expect(row).toBeDefined()
    expect(key!.startsWith(row[2]!.replace(/…$/, ''))).toBe(true)
    expect(row.slice(3, 8)).toEqual(['team_checkout', 'svc-user', '-', 'staging', 'cart'])
    expect(row[9]).toBe('-')

    const listJson = expectOk(await cli('keys', 'list', '--json'))
    expect(listJson.stdout).not.toContain(key)
    const view = jsonOf(listJson).data.find((k: any) => k.name === 'checkout')
    expect(view).toMatchObject({ team_id: 'team_checkout', environment: 'staging', revoked_at: null })

    const revoked = expectOk(await cli('keys', 'revoke', view.id))
    expect(revoked.stdout).toMatch(new RegExp(`Revoked consumer key checkout \\(${view.id}`))
    expect(revoked.stdout).not.toContain(key)
    expect(await chatStatus(key!)).toBe(401)
    expect(jsonOf(expectOk(await cli('keys', 'list', '--json'))).data.find((k: any) => k.id === view.id).revoked_at).toEqual(expect.any(String))
  })

  it('--json create carries the key and the attribution; --hold is accepted', async () => {
    const created = jsonOf(expectOk(await cli('keys', 'create', '--name', 'batch', '--team', 'team_batch', '--hold', '--json')))
    expect(created).toMatchObject({ name: 'batch', key: expect.stringMatching(/^tg_key_/), team_id: 'team_batch' })
    expect(await chatStatus(created.key)).toBe(200)
  })

  it('refusals: a viewer cannot create keys (exit 1); an unknown key id is not_found; no --name is a usage error', async () => {
    const viewer = jsonOf(expectOk(await cli('tokens', 'create', '--name', 'auditor', '--role', 'viewer', '--json')))
    expect(expectFailure(await cliFor(gw, viewer.token)('keys', 'create', '--name', 'sneaky'), 1)).toMatch(/forbidden \(HTTP 403\)/)
    expect(jsonOf(expectOk(await cli('keys', 'list', '--json'))).data.map((k: any) => k.name)).not.toContain('sneaky')
    expect(expectFailure(await cli('keys', 'revoke', 'key_nope'), 1)).toMatch(/not_found \(HTTP 404\)/)
    expect(expectFailure(await cli('keys', 'create'), 2)).toMatch(/required option '--name <name>'/)
  })
})

describe('tollgate tokens', () => {
  it('a viewer token reads but cannot write; list shows prefixes; revoke makes it unusable', async () => {
    const created = expectOk(await cli('tokens', 'create', '--name', 'dashboards', '--role', 'viewer'))
    const token = /^token: (\S+)$/m.exec(created.stdout)?.[1]
    expect(token, created.stdout).toMatch(/^tg_admin_/)
    const asViewer = cliFor(gw, token!)
    expectOk(await asViewer('wallets', 'list'))
    expect(expectFailure(await asViewer('wallets', 'allocate', '--team', 'team_x', '--amount', '5'), 1)).toMatch(/forbidden/)

    const listed = expectOk(await cli('tokens', 'list'))
    expect(listed.stdout).not.toContain(token)
    const row = tableRows(listed.stdout).find((r) => r[1] === 'dashboards')!
    expect(row[3]).toBe('viewer')
    expect(token!.startsWith(row[2]!.replace(/…$/, ''))).toBe(true)

    const id = jsonOf(expectOk(await cli('tokens', 'list', '--json'))).data.find((t: any) => t.name === 'dashboards').id
    const revoked = jsonOf(expectOk(await cli('tokens', 'revoke', id, '--json')))
    expect(revoked).toMatchObject({ id, role: 'viewer', revoked_at: expect.any(String) })
    expect(JSON.stringify(revoked)).not.toContain(token)
    expect(expectFailure(await asViewer('wallets', 'list'), 1)).toMatch(/unauthorized \(HTTP 401\)/)
  })

  it('a team_admin token manages its own team only', async () => {
    const created = jsonOf(expectOk(await cli('tokens', 'create', '--name', 'growth lead', '--role', 'team_admin', '--team', 'team_growth', '--json')))
    expect(created).toMatchObject({ role: 'team_admin', team_id: 'team_growth', token: expect.stringMatching(/^tg_admin_/) })
    const asLead = cliFor(gw, created.token)
    expectOk(await asLead('wallets', 'allocate', '--team', 'team_growth', '--amount', '5'))
    expect(expectFailure(await asLead('wallets', 'allocate', '--team', 'team_other', '--amount', '5'), 1)).toMatch(/forbidden/)
    expect(expectFailure(await asLead('tokens', 'create', '--name', 'escalate', '--role', 'admin'), 1)).toMatch(/forbidden/)
  })

  it('usage errors exit 2: a team_admin without --team, an unknown role', async () => {
    expect(expectFailure(await cli('tokens', 'create', '--name', 'x', '--role', 'team_admin'), 2)).toMatch(/a team_admin token needs --team ID/)
    expect(expectFailure(await cli('tokens', 'create', '--name', 'x', '--role', 'owner'), 2)).toMatch(/'--role <role>' argument 'owner' is invalid/)
    expect(jsonOf(expectOk(await cli('tokens', 'list', '--json'))).data.map((t: any) => t.name)).not.toContain('x')
  })
})
