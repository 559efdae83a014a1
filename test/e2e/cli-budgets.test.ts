/**
 * `tollgate spend budget …` as an admin uses it: the seed's one-line `create` makes an org budget
 * the API then shows; create/show/update/delete in table and --json modes change what the API
 * returns; refusals exit 1 with the server's code on one stderr line; bad flags exit 2 and change
 * nothing.
 *
 * How: a listening gateway on SQLite (startTestGateway) in this process; the built CLI in a child
 * process per command; the API read back with plain HTTP.
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

async function budgetsFromApi(): Promise<any[]> {
  const { status, body } = await gw.admin('GET', '/v1/billing/budgets')
  expect(status).toBe(200)
  return body.data
}

describe('tollgate spend budget create', () => {
  it('runs the seed line as written: a monthly $500 budget over the whole org, shown in the list', async () => {
    const created = expectOk(await cli('spend', 'budget', 'create', '--name', 'Marketing Monthly Cap', '--limit', '500', '--period', 'monthly'))
    const id = /Created budget (bud_\w+)/.exec(created.stdout)?.[1]
    expect(id, created.stdout).toBeDefined()
    expect(created.stdout).toMatch(/scope:\s+org:default/)

    const stored = (await budgetsFromApi()).find((b) => b.id === id)
    expect(stored).toMatchObject({
      name: 'Marketing Monthly Cap',
      scope: { kind: 'org', id: 'default' },
      period: 'monthly',
      amount_usd: 500,
      hard_limit: false,
    })

    const list = expectOk(await cli('spend', 'budget', 'list'))
    const rows = tableRows(list.stdout)
    expect(rows[0]).toEqual(['ID', 'NAME', 'SCOPE', 'PERIOD', 'LIMIT USD', 'SPENT USD', 'USED', 'HARD'])
    expect(rows).toContainEqual([id, 'Marketing Monthly Cap', 'org:default', 'monthly', '500.00', '0.00', '0%', 'no'])
  })

  it('--json prints the API’s budget with every flag applied', async () => {
    const result = expectOk(
      await cli(
        'spend',
        'budget',
        'create',
        '--json',
        '--name',
        'growth daily',
        '--limit',
        '0.25',
        '--period',
        'daily',
        '--scope',
        'team:team_growth',
        '--timezone',
        'Europe/Berlin',
        '--thresholds',
        '90,50',
        '--hard',
      ),
    )
    const created = jsonOf(result)
    expect(created).toMatchObject({
      id: expect.stringMatching(/^bud_/),
      name: 'growth daily',
      scope: { kind: 'team', id: 'team_growth' },
      period: 'daily',
      timezone: 'Europe/Berlin',
      amount_usd: 0.25,
      alert_thresholds: [50, 90],
      hard_limit: true,
      posture: { limit_usd: 0.25 },
    })
    expect((await gw.admin('GET', `/v1/billing/budgets/${created.id}`)).body).toMatchObject({ amount_usd: 0.25, hard_limit: true })
  })
})

describe('tollgate spend budget show | update | delete', () => {
  it('shows one budget, changes only the flags given, and deletes it', async () => {
    const created = jsonOf(
      expectOk(
        await cli(
          'spend',
          'budget',
          'create',
          '--json',
          '--name',
          'support weekly',
          '--limit',
          '40',
          '--period',
          'weekly',
          '--scope',
          'team:team_support',
          '--hard',
        ),
      ),
    )

    const shown = expectOk(await cli('spend', 'budget', 'show', created.id))
    expect(shown.stdout).toMatch(/name:\s+support weekly/)
    expect(shown.stdout).toMatch(/limit:\s+40\.00 USD, hard/)
    expect(jsonOf(expectOk(await cli('spend', 'budget', 'show', created.id, '--json')))).toMatchObject({ id: created.id, amount_usd: 40 })

    const updated = expectOk(await cli('spend', 'budget', 'update', created.id, '--limit', '55.5', '--no-hard'))
    expect(updated.stdout).toMatch(new RegExp(`Updated budget ${created.id}`))
    expect((await gw.admin('GET', `/v1/billing/budgets/${created.id}`)).body).toMatchObject({
      name: 'support weekly',
      amount_usd: 55.5,
      hard_limit: false,
      period: 'weekly',
      scope: { kind: 'team', id: 'team_support' },
    })

    const deleted = jsonOf(expectOk(await cli('spend', 'budget', 'delete', created.id, '--json')))
    expect(deleted).toEqual({ id: created.id, deleted: true })
    expect((await gw.admin('GET', `/v1/billing/budgets/${created.id}`)).status).toBe(404)
    expect(tableRows(expectOk(await cli('spend', 'budget', 'list')).stdout).flat()).not.toContain(created.id)
  })
})

describe('when the gateway refuses', () => {
  it('exits 1 with the server’s code and message on one line: an unknown id, a duplicate name', async () => {
    expect(expectFailure(await cli('spend', 'budget', 'show', 'bud_missing'), 1)).toMatch(
      /^tollgate: not_found \(HTTP 404\): budget bud_missing does not exist \[request req_\w+\]$/,
    )
    await cli('spend', 'budget', 'create', '--name', 'twice', '--limit', '1', '--period', 'daily')
    expect(expectFailure(await cli('spend', 'budget', 'create', '--name', 'twice', '--limit', '2', '--period', 'daily'), 1)).toMatch(
      /conflict \(HTTP 409\): .*twice/,
    )
    expect((await budgetsFromApi()).filter((b) => b.name === 'twice')).toHaveLength(1)
  })

  it('names the field the server refused (21 thresholds: more than a budget may have)', async () => {
    const thresholds = Array.from({ length: 21 }, (_, i) => i + 1).join(',')
    const line = expectFailure(await cli('spend', 'budget', 'create', '--name', 'too many', '--limit', '1', '--period', 'daily', '--thresholds', thresholds), 1)
    expect(line).toMatch(/invalid_request \(HTTP 400\): alert_thresholds: at most 20/)
    expect((await budgetsFromApi()).map((b) => b.name)).not.toContain('too many')
  })

  it('refuses a team_admin a budget with no --scope (org-wide): exit 1, forbidden, nothing created', async () => {
    const minted = await gw.admin('POST', '/v1/admin-tokens', { name: 'growth lead', role: 'team_admin', team_id: 'team_growth' })
    expect(minted.status).toBe(201)
    const asTeamAdmin = cliFor(gw, minted.body.token)
    expect(expectFailure(await asTeamAdmin('spend', 'budget', 'create', '--name', 'org grab', '--limit', '1', '--period', 'daily'), 1)).toMatch(
      /forbidden \(HTTP 403\).*org-wide/,
    )
    expectOk(await asTeamAdmin('spend', 'budget', 'create', '--name', 'growth own', '--limit', '1', '--period', 'daily', '--scope', 'team:team_growth'))
    // A user budget narrowed to its own team is the team_admin's to make; the same user org-wide is not.
    expect(
      expectFailure(await asTeamAdmin('spend', 'budget', 'create', '--name', 'ana anywhere', '--limit', '1', '--period', 'daily', '--scope', 'user:ana'), 1),
    ).toMatch(/forbidden/)
    const narrowed = jsonOf(
      expectOk(
        await asTeamAdmin(
          'spend',
          'budget',
          'create',
          '--name',
          'ana in growth',
          '--limit',
          '1',
          '--period',
          'daily',
          '--scope',
          'user:ana',
          '--team',
          'team_growth',
          '--json',
        ),
      ),
    )
    expect(narrowed.scope).toEqual({ kind: 'user', id: 'ana', team_id: 'team_growth' })
    const names = (await budgetsFromApi()).map((b) => b.name)
    expect(names).toContain('growth own')
    expect(names).toContain('ana in growth')
    expect(names).not.toContain('ana anywhere')
    expect(names).not.toContain('org grab')
  })
})

describe('usage errors', () => {
  it.each([
    ['no --name', ['--limit', '5', '--period', 'daily'], /required option '--name <name>'/],
    ['a --limit that is not money', ['--name', 'x', '--limit', 'lots', '--period', 'daily'], /'--limit <usd>' argument 'lots' is invalid/],
    ['a --limit of zero', ['--name', 'x', '--limit', '0', '--period', 'daily'], /'--limit <usd>' argument '0' is invalid/],
    ['a --limit with 7 decimals', ['--name', 'x', '--limit', '1.0000001', '--period', 'daily'], /--limit <usd>/],
    ['an unknown --period', ['--name', 'x', '--limit', '5', '--period', 'fortnightly'], /'--period <period>' argument 'fortnightly' is invalid/],
    ['an unknown scope kind', ['--name', 'x', '--limit', '5', '--period', 'daily', '--scope', 'galaxy:x'], /--scope <kind:id>.*org \| team/],
    ['a scope without an id', ['--name', 'x', '--limit', '5', '--period', 'daily', '--scope', 'team:'], /--scope <kind:id>/],
    ['a threshold of 0', ['--name', 'x', '--limit', '5', '--period', 'daily', '--thresholds', '0,50'], /--thresholds <percents>.*"0"/],
    ['--team without a scope it can narrow', ['--name', 'x', '--limit', '5', '--period', 'daily', '--team', 'team_growth'], /--team narrows a user, agent/],
    ['an unknown time zone', ['--name', 'x', '--limit', '5', '--period', 'daily', '--timezone', 'Mars/Olympus'], /--timezone <tz>.*IANA/],
  ])('exits 2 for %s, naming the flag, and creates nothing', async (_what, args, message) => {
    const before = (await budgetsFromApi()).length
    expect(expectFailure(await cli('spend', 'budget', 'create', ...args), 2)).toMatch(message)
    expect(await budgetsFromApi()).toHaveLength(before)
  })

  it('exits 2 for an update with nothing to change', async () => {
    expect(expectFailure(await cli('spend', 'budget', 'update', 'bud_any'), 2)).toMatch(/nothing to change/)
  })
})
