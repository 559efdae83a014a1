/**
 * `tollgate replay` as an owner uses it before turning a policy on: after real traffic from two
 * teams, a policy file with a hard cap on one team shows, in a table, the calls it would have
 * refused and the spend avoided; `--json` carries the whole report, whose avoided spend equals the
 * cost of the calls past the cap as the callers saw it; progress goes to stderr. A policy file
 * with a bad field exits 1 naming it; a missing file exits 2.
 *
 * How: a listening gateway on SQLite with the mock upstream, proxied calls with fetch, the built
 * CLI in a child process, the policy in a temp file.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aConfig, CONSUMER_KEY, startTestGateway, type TestGateway } from '../support/gateway.js'
import { cliFor, expectFailure, jsonOf, tableRows, type Cli } from './cli-harness.js'

const OPS_KEY = 'tg_test_replay_ops_key_0123456789abcd'
let gw: TestGateway
let cli: Cli
let dir: string
const searchCosts: number[] = []
let from = ''

async function chat(key: string): Promise<number> {
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'Say something short.' }] }),
  })
  await response.arrayBuffer()
  expect(response.status).toBe(200)
  return Math.round(Number(response.headers.get('x-tollgate-cost-usd')) * 1e6)
}

function policyFile(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
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
  dir = mkdtempSync(join(tmpdir(), 'tollgate-replay-cli-'))
  from = new Date(Date.now() - 60_000).toISOString()
  for (let i = 0; i < 4; i++) {
    searchCosts.push(await chat(CONSUMER_KEY))
    await chat(OPS_KEY)
  }
})
afterAll(() => gw?.close())

/** A hard cap on team_search that two of its four calls fit under. */
function capPolicy(): string {
  const amountUsd = ((searchCosts[0]! + searchCosts[1]!) / 1e6).toFixed(6)
  return `budgets:\n  - name: search cap\n    scope: { kind: team, id: team_search }\n    period: monthly\n    amount_usd: ${amountUsd}\n    hard_limit: true\n`
}

describe('tollgate replay', () => {
  it('shows what a hard cap would have refused and saved, as a table', async () => {
    const file = policyFile('cap.yaml', capPolicy())
    const result = await cli('replay', '--from', from, '--to', new Date(Date.now() + 60_000).toISOString(), '--policy', file)
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).toMatch(/^replay: 100% 8\/8 events$/m)
    expect(result.stdout).toMatch(/^Events:\s+8 \(/m)
    const row = tableRows(result.stdout).find((cells) => cells[0] === 'budget team:team_search')
    expect(row?.slice(1, 3)).toEqual(['search cap', '2'])
    expect(result.stdout).toContain('Thresholds that would have fired')
  })

  it('--json: the avoided spend is what the calls past the cap cost', async () => {
    const file = policyFile(
      'cap.json',
      JSON.stringify({
        budgets: [
          {
            name: 'search cap',
            scope: { kind: 'team', id: 'team_search' },
            period: 'monthly',
            amount_usd: ((searchCosts[0]! + searchCosts[1]!) / 1e6).toFixed(6),
            hard_limit: true,
          },
        ],
      }),
    )
    const job = jsonOf(await cli('replay', '--from', from, '--to', new Date(Date.now() + 60_000).toISOString(), '--policy', file, '--json'))
    expect(job.status).toBe('done')
    expect(job.report.totals.avoided_micros).toBe(searchCosts[2]! + searchCosts[3]!)
    expect(job.report.scopes[0].blocked.count).toBe(2)
  })

  it('a bad field in the policy exits 1 and names it; a missing file exits 2', async () => {
    const bad = policyFile('bad.yaml', capPolicy().replace('period: monthly', 'period: fortnightly'))
    const line = expectFailure(await cli('replay', '--from', from, '--to', new Date(Date.now() + 60_000).toISOString(), '--policy', bad), 1)
    expect(line).toContain('policy.budgets[0].period')
    expectFailure(await cli('replay', '--from', from, '--to', '2099-01-01', '--policy', join(dir, 'nope.yaml')), 2)
  })
})
