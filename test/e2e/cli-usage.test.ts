/**
 * `tollgate usage` and `tollgate usage top` as an analyst uses them: after proxied calls from two
 * teams and users, the grouped table shows each team and model with its requests and cost, the
 * --json totals equal the sum of the cost headers the callers saw, the hourly series puts the
 * calls in the current hour, `usage top --by user` ranks the bigger spender first, and a range
 * before the calls is empty. Bad dimensions and dates exit 2.
 *
 * How: a listening gateway on SQLite with a mock upstream; proxied calls with fetch and
 * attribution headers; the built CLI in a child process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aConfig, CONSUMER_KEY, startTestGateway, type TestGateway } from '../support/gateway.js'
import { cliFor, expectFailure, expectOk, jsonOf, tableRows, type Cli } from './cli-harness.js'

const OPS_KEY = 'tg_test_ops_key_0123456789abcdef0'
let gw: TestGateway
let cli: Cli
let costsUsd: number[] = []
/** The UTC day the calls were made on (taken before them, so a run across midnight still covers them). */
let callsDay = ''

async function chat(key: string, user: string, maxTokens: number): Promise<number> {
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-tollgate-user': user },
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: maxTokens, messages: [{ role: 'user', content: 'Tell me something.' }] }),
  })
  await response.arrayBuffer()
  expect(response.status).toBe(200)
  return Number(response.headers.get('x-tollgate-cost-usd'))
}

beforeAll(async () => {
  gw = await startTestGateway({
    yaml: aConfig({
      consumers: [
        { name: 'search-svc', apiKey: CONSUMER_KEY, teamId: 'team_search' },
        { name: 'ops-svc', apiKey: OPS_KEY, teamId: 'team_ops' },
      ],
    }),
  })
  cli = cliFor(gw)
  callsDay = new Date().toISOString().slice(0, 10)
  costsUsd = [await chat(CONSUMER_KEY, 'ana', 200), await chat(CONSUMER_KEY, 'ana', 200), await chat(OPS_KEY, 'bo', 10)]
})
afterAll(() => gw?.close())

describe('tollgate usage', () => {
  it('groups by team and model in a table, with the requests each made', async () => {
    const result = expectOk(await cli('usage', '--by', 'team,model'))
    expect(result.stdout).toMatch(/^Usage \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ → /)
    expect(result.stdout).toMatch(/Total: 3 requests, /)
    const rows = tableRows(result.stdout)
    const header = rows.findIndex((r) => r[0] === 'TEAM')
    expect(rows[header]).toEqual(['TEAM', 'MODEL', 'REQUESTS', 'COST USD', 'INPUT TOKENS', 'OUTPUT TOKENS'])
    const groups = rows.slice(header + 1)
    expect(groups.find((r) => r[0] === 'team_search')?.slice(0, 3)).toEqual(['team_search', 'gpt-4o-mini', '2'])
    expect(groups.find((r) => r[0] === 'team_ops')?.slice(0, 3)).toEqual(['team_ops', 'gpt-4o-mini', '1'])
  })

  it('--json totals equal the sum of the cost headers the callers saw; an hourly series holds them', async () => {
    const report = jsonOf(expectOk(await cli('usage', '--json', '--bucket', 'hour')))
    const sumMicros = costsUsd.reduce((sum, usd) => sum + Math.round(usd * 1_000_000), 0)
    expect(report.totals.requests).toBe(3)
    expect(report.totals.cost_micros).toBe(sumMicros)
    expect(report.bucket).toBe('hour')
    expect(report.series.reduce((n: number, p: any) => n + p.requests, 0)).toBe(3)
    const table = expectOk(await cli('usage', '--bucket', 'hour'))
    expect(tableRows(table.stdout).find((r) => r[0] === 'HOUR')).toEqual(['HOUR', 'REQUESTS', 'COST USD', 'INPUT TOKENS', 'OUTPUT TOKENS'])
  })

  it('a range before the calls is empty; a bare --to date includes that day', async () => {
    const empty = jsonOf(expectOk(await cli('usage', '--from', '2020-01-01', '--to', '2020-01-31', '--json')))
    expect(empty).toMatchObject({ from: '2020-01-01T00:00:00.000Z', to: '2020-02-01T00:00:00.000Z', totals: { requests: 0 } })
    const today = new Date().toISOString().slice(0, 10)
    expect(jsonOf(expectOk(await cli('usage', '--from', callsDay, '--to', today, '--json'))).totals.requests).toBe(3)
  })

  it('--environment filters: no call came from staging', async () => {
    expect(jsonOf(expectOk(await cli('usage', '--environment', 'staging', '--json'))).totals.requests).toBe(0)
  })
})

describe('tollgate usage top', () => {
  it('ranks users by cost, the bigger spender first', async () => {
    const rows = tableRows(expectOk(await cli('usage', 'top', '--by', 'user')).stdout)
    expect(rows[0]![0]).toMatch(/^Top user /)
    expect(rows[1]).toEqual(['#', 'USER', 'REQUESTS', 'COST USD', 'INPUT TOKENS', 'OUTPUT TOKENS'])
    expect(rows[2]!.slice(0, 3)).toEqual(['1', 'ana', '2'])
    expect(rows[3]!.slice(0, 3)).toEqual(['2', 'bo', '1'])
    const top1 = jsonOf(expectOk(await cli('usage', 'top', '--by', 'team', '--limit', '1', '--json')))
    expect(top1).toMatchObject({ by: 'team', data: [{ team: 'team_search', requests: 2 }] })
  })
})

describe('usage errors', () => {
  it.each([
    [['usage', '--by', 'team,colour'], /'--by <dims>' argument 'team,colour' is invalid.*"colour"/],
    [['usage', '--from', 'yesterday'], /'--from <date>' argument 'yesterday' is invalid/],
    [['usage', '--to', '2026-02-30'], /'--to <date>' argument '2026-02-30' is invalid. 2026-02-30 is not a calendar date/],
    [['usage', '--bucket', 'week'], /'--bucket <size>' argument 'week' is invalid/],
    [['usage', 'top'], /required option '--by <dim>'/],
    [['usage', 'top', '--by', 'agent'], /'--by <dim>' argument 'agent' is invalid/],
    [['usage', 'top', '--by', 'user', '--limit', '101'], /--limit: at most 100/],
  ])('exits 2 for %j', async (args, message) => {
    expect(expectFailure(await cli(...args), 2)).toMatch(message)
  })

  it('a range the server refuses (from after to) exits 1 naming the parameter', async () => {
    expect(expectFailure(await cli('usage', '--from', '2026-05-02', '--to', '2026-05-01T00:00:00Z'), 1)).toMatch(
      /invalid_request \(HTTP 400\): from: "from" must be before "to"/,
    )
  })
})
