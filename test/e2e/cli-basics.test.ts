/**
 * What every `tollgate` command promises a script: --version from package.json; exit 2 for a
 * usage or config error (unknown command or flag, no token, a URL that is not http) with nothing
 * sent; exit 3 when nothing answers at --url; exit 1 when the gateway refuses; one line on stderr
 * and no stack trace; and no admin token or consumer key in any output, whatever happened.
 *
 * How: the built CLI in a child process; a listening gateway on SQLite for the calls that reach
 * one, and a port nobody listens on for those that must not.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, CONSUMER_KEY, startTestGateway, type TestGateway } from '../support/gateway.js'
import { freePort } from '../support/free-port.js'
import { repoRoot } from '../support/processes.js'
import { cliFor, expectFailure, expectOk, jsonOf, runCli, servesRoute, type CliResult } from './cli-harness.js'

let gw: TestGateway
let deadUrl: string

beforeAll(async () => {
  gw = await startTestGateway()
  deadUrl = `http://127.0.0.1:${await freePort()}`
})
afterAll(() => gw?.close())

describe('the harness', () => {
  it('sees the routes a gateway serves (cli-events and cli-export-jobs skip while theirs are missing)', async () => {
    expect(await servesRoute(gw, 'GET', '/v1/wallets')).toBe(true)
    expect(await servesRoute(gw, 'POST', '/v1/billing/budgets')).toBe(true)
    expect(await servesRoute(gw, 'POST', '/v1/no-such-route')).toBe(false)
  })
})

describe('version and help', () => {
  it('--version prints the version in package.json', async () => {
    const { version } = JSON.parse(readFileSync(`${repoRoot}package.json`, 'utf8')) as { version: string }
    expect(expectOk(await runCli(['--version'])).stdout).toBe(`${version}\n`)
  })

  it('--help lists the command groups and exits 0', async () => {
    const help = expectOk(await runCli(['--help'])).stdout
    for (const group of ['spend', 'wallets', 'tickets', 'usage', 'keys', 'tokens', 'events', 'export-jobs', 'serve'])
      expect(help).toMatch(new RegExp(`^  ${group}\\b`, 'm'))
  })
})

describe('usage and config errors exit 2', () => {
  it.each([
    ['an unknown command', ['budgets'], /unknown command 'budgets'/],
    ['an unknown flag', ['wallets', 'list', '--colour'], /unknown option '--colour'/],
    ['a missing argument', ['spend', 'budget', 'show'], /missing required argument 'id'/],
  ])('%s', async (_what, args, message) => {
    expect(expectFailure(await runCli(args, { TOLLGATE_URL: gw.url, TOLLGATE_TOKEN: ADMIN_TOKEN }), 2)).toMatch(message)
  })

  it('no admin token: says how to give one, sends nothing', async () => {
    const result = await runCli(['wallets', 'list'], { TOLLGATE_URL: deadUrl })
    expect(expectFailure(result, 2)).toMatch(/no admin token: pass --token or set TOLLGATE_TOKEN/)
    expect(result.stdout).toBe('')
  })

  it('a --url that is not http(s)', async () => {
    expect(expectFailure(await runCli(['wallets', 'list', '--url', 'ftp://example.test', '--token', 'x']), 2)).toMatch(/--url: expected an http\(s\) URL/)
    expect(expectFailure(await runCli(['wallets', 'list', '--url', 'not a url', '--token', 'x']), 2)).toMatch(/--url: expected an http\(s\) URL/)
    // A URL that does not parse is shown without the password it carries.
    const withPassword = expectFailure(await runCli(['wallets', 'list', '--url', 'http://user:PASSWORDINURL@127.0.0.1:99999', '--token', 'x']), 2)
    expect(withPassword).toMatch(/--url: expected an http\(s\) URL/)
    expect(withPassword).not.toContain('PASSWORDINURL')
  })
})

describe('serve', () => {
  it('on a port already in use says so and exits 1, rather than hang on its mock upstream', async () => {
    const busy = createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-busy-port-'))
    try {
      const result = await runCli(['serve', '--port', String((busy.address() as AddressInfo).port)], {}, dir)
      expect(expectFailure(result, 1)).toMatch(/EADDRINUSE/)
    } finally {
      await new Promise((resolve) => busy.close(resolve))
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('an unreachable gateway exits 3', () => {
  it.each([[['wallets', 'list']], [['spend', 'budget', 'list', '--json']], [['usage', 'top', '--by', 'user']]])(
    '%j says where it tried, prints nothing on stdout',
    async (args) => {
      const result = await runCli(args, { TOLLGATE_URL: deadUrl, TOLLGATE_TOKEN: ADMIN_TOKEN })
      expect(expectFailure(result, 3)).toMatch(new RegExp(`cannot reach the gateway at ${deadUrl} \\(ECONNREFUSED\\)`))
      expect(result.stdout).toBe('')
    },
  )

  it('--url on the command line wins over TOLLGATE_URL (and over a --url before the command)', async () => {
    const cli = cliFor({ url: deadUrl, adminToken: ADMIN_TOKEN })
    expect(jsonOf(expectOk(await cli('wallets', 'list', '--json', '--url', gw.url)))).toEqual({ data: [] })
    expect(jsonOf(expectOk(await cli('--url', deadUrl, 'wallets', 'list', '--json', '--url', gw.url)))).toEqual({ data: [] })
    expect(jsonOf(expectOk(await cli('--url', gw.url, '--json', 'wallets', 'list')))).toEqual({ data: [] })
  })
})

describe('secrets', () => {
  it('a wrong token exits 1 with unauthorized and is not echoed', async () => {
    const wrong = 'tg_admin_wrong_token_9f8e7d6c5b4a'
    const result = await runCli(['spend', 'budget', 'list'], { TOLLGATE_URL: gw.url, TOLLGATE_TOKEN: wrong })
    expect(expectFailure(result, 1)).toMatch(/^tollgate: unauthorized \(HTTP 401\): Missing or unknown admin token/)
    expect(result.stderr + result.stdout).not.toContain(wrong)
  })

  it('no output of any command, ok or failing, contains the admin token or a consumer key', async () => {
    const cli = cliFor(gw, ADMIN_TOKEN, { TOLLGATE_KEY: CONSUMER_KEY })
    const dead = cliFor({ url: deadUrl, adminToken: ADMIN_TOKEN }, ADMIN_TOKEN, { TOLLGATE_KEY: CONSUMER_KEY })
    const results: CliResult[] = [
      await cli('wallets', 'allocate', '--team', 'team_test', '--amount', '1'),
      await cli('wallets', 'list', '--json'),
      await cli('spend', 'budget', 'create', '--name', 'secret check', '--limit', '1', '--period', 'daily', '--json'),
      await cli('spend', 'budget', 'list'),
      await cli('spend', 'budget', 'show', 'bud_missing'),
      await cli('tickets', 'list', '--json'),
      await cli('usage', '--by', 'team'),
      await cli('spend', 'budget', 'create', '--name', 'x', '--limit', 'nope', '--period', 'daily'),
      await dead('wallets', 'list'),
      await dead('events', 'send', `${repoRoot}package.json`),
    ]
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 1, 0, 0, 2, 3, 2])
    for (const result of results) {
      expect(result.stdout + result.stderr).not.toContain(ADMIN_TOKEN)
      expect(result.stdout + result.stderr).not.toContain(CONSUMER_KEY)
    }
  })
})
