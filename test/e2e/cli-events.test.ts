/**
 * `tollgate events send FILE.ndjson` as an application owner uses it: 2,500 events go in three
 * batches with progress lines on stderr (not a terminal here), the summary counts what the
 * gateway created, the rejected events are named by their line in the file (blank lines counted)
 * and make the exit code 1, the usage report then holds exactly the created events, and sending a
 * file again creates nothing. A malformed file sends nothing (exit 2); an admin token instead of
 * a consumer key is refused (exit 1); no gateway is exit 3.
 *
 * How: a listening gateway on SQLite; NDJSON files written to a temp dir; the built CLI in a child
 * process; the usage report read back through the admin API.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, CONSUMER_KEY, startTestGateway, type TestGateway } from '../support/gateway.js'
import { freePort } from '../support/free-port.js'
import { cliFor, expectFailure, expectOk, jsonOf, type Cli, type CliResult } from './cli-harness.js'

let gw: TestGateway
let cli: Cli
const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-events-'))

beforeAll(async () => {
  gw = await startTestGateway()
  cli = cliFor(gw, ADMIN_TOKEN, { TOLLGATE_KEY: CONSUMER_KEY })
})
afterAll(async () => {
  await gw?.close()
  rmSync(dir, { recursive: true, force: true })
})

function anEvent(id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { externalRequestId: id, provider: 'openai', model: 'gpt-4o-mini', inputTokens: 120, outputTokens: 30, ...over }
}

function ndjson(name: string, lines: readonly string[]): string {
  const file = join(dir, name)
  writeFileSync(file, `${lines.join('\n')}\n`)
  return file
}

async function ingestedRequests(): Promise<number> {
  const { status, body } = await gw.admin('GET', '/v1/usage')
  expect(status).toBe(200)
  return body.totals.requests as number
}

function stderrLines(result: CliResult): string[] {
  return result.stderr.split('\n').filter((line) => line !== '')
}

describe('tollgate events send', () => {
  it('sends 2,500 events in batches, reports each rejected one by its line, exits 1, and the report holds the rest', async () => {
    const lines: string[] = []
    for (let i = 0; i < 2500; i++) lines.push(JSON.stringify(anEvent(`run1-${i}`)))
    // Line numbers are 1-based file lines; a blank line is skipped but still counted.
    lines[16] = JSON.stringify(anEvent('run1-16', { inputTokens: -5 }))
    lines[1500] = JSON.stringify(anEvent('run1-1500', { colour: 'red' }))
    lines[2499] = JSON.stringify(anEvent('run1-2499', { model: 'no-such-model-anywhere' }))
    lines.splice(10, 0, '')
    const file = ndjson('run1.ndjson', lines)
    const before = await ingestedRequests()

    const result = await cli('events', 'send', file)
    expect(result.code, result.stderr).toBe(1)
    expect(result.stdout).toContain(`Sent 2500 events from ${file}: 2497 created, 0 duplicates, 3 rejected`)
    expect(result.stdout).toMatch(/^ {2}line 18: invalid_request \(inputTokens\): /m)
    expect(result.stdout).toMatch(/^ {2}line 1502: invalid_request \(.*\): .*colour/m)
    expect(result.stdout).toMatch(/^ {2}line 2501: model_not_priced /m)
    const errLines = stderrLines(result)
    expect(errLines[0]).toBe('events: 40% 1000/2500 events')
    expect(errLines).toContain('events: 100% 2500/2500 events')
    expect(errLines.at(-1)).toBe('tollgate: 3 of 2500 events were rejected (lines 18, 1502, 2501)')
    expect(result.stderr).not.toMatch(/\n\s+at /)

    expect(await ingestedRequests()).toBe(before + 2497)
  })

  it('--json summarises created, duplicates and each rejection with its line; a second send creates nothing', async () => {
    const file = ndjson('run2.ndjson', [
      JSON.stringify(anEvent('run2-a')),
      JSON.stringify(anEvent('run2-b', { outputTokens: 'many' })),
      JSON.stringify(anEvent('run2-c')),
    ])
    const first = await cli('events', 'send', file, '--json')
    expect(first.code).toBe(1)
    expect(jsonOf(first)).toMatchObject({
      file,
      events: 3,
      created: 2,
      duplicates: 0,
      rejected: 1,
      rejections: [{ line: 2, code: 'invalid_request', field: 'outputTokens', message: expect.stringMatching(/number of tokens/) }],
    })
    const before = await ingestedRequests()
    const again = jsonOf(await cli('events', 'send', file, '--json'))
    expect(again).toMatchObject({ created: 0, duplicates: 2, rejected: 1 })
    expect(await ingestedRequests()).toBe(before)
  })

  it('a clean file exits 0; --key on the command line wins over TOLLGATE_KEY', async () => {
    const file = ndjson('run3.ndjson', [JSON.stringify(anEvent('run3-a', { userId: 'ana' }))])
    const result = await cliFor(gw, ADMIN_TOKEN, { TOLLGATE_KEY: 'tg_key_wrong_000000000000000000' })('events', 'send', file, '--key', CONSUMER_KEY)
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toBe(`Sent 1 event from ${file}: 1 created, 0 duplicates, 0 rejected\n`)
    expect(result.stdout + result.stderr).not.toContain(CONSUMER_KEY)
  })

  it('a line that is not a JSON object sends nothing: exit 2 naming the file and line', async () => {
    const file = ndjson('bad.ndjson', [JSON.stringify(anEvent('bad-a')), '', '{"externalRequestId": "bad-b",', JSON.stringify(anEvent('bad-c'))])
    const before = await ingestedRequests()
    expect(expectFailure(await cli('events', 'send', file), 2)).toMatch(new RegExp(`${file}:3: not valid JSON .*nothing was sent`))
    expect(expectFailure(await cli('events', 'send', ndjson('array.ndjson', ['[1, 2]'])), 2)).toMatch(/array\.ndjson:1: expected a JSON object/)
    expect(expectFailure(await cli('events', 'send', join(dir, 'missing.ndjson')), 2)).toMatch(/cannot read .*missing\.ndjson \(ENOENT\)/)
    expect(expectFailure(await cli('events', 'send', ndjson('empty.ndjson', ['', ''])), 2)).toMatch(/no events in it/)
    expect(await ingestedRequests()).toBe(before)
  })

  it('refusals and failures: an admin token as the key (exit 1), no key (exit 2), no gateway (exit 3)', async () => {
    const file = ndjson('run4.ndjson', [JSON.stringify(anEvent('run4-a'))])
    expect(expectFailure(await cli('events', 'send', file, '--key', ADMIN_TOKEN), 1)).toMatch(/forbidden \(HTTP 403\): POST \/v1\/events takes a consumer key/)
    expect(expectFailure(await cliFor(gw)('events', 'send', file), 2)).toMatch(/no consumer key: pass --key or set TOLLGATE_KEY/)
    const dead = `http://127.0.0.1:${await freePort()}`
    expect(expectFailure(await cli('events', 'send', file, '--url', dead), 3)).toMatch(/cannot reach the gateway/)
    const unknownKey = await cli('events', 'send', file, '--key', 'tg_key_unknown_00000000000000000')
    expect(expectFailure(unknownKey, 1)).toMatch(/\(HTTP 401\)/)
    expect(unknownKey.stderr).not.toContain('tg_key_unknown_00000000000000000')
  })
})

describe('tollgate events send --help', () => {
  it('takes --key, not --token', async () => {
    const help = expectOk(await cli('events', 'send', '--help')).stdout
    expect(help).toContain('--key <key>')
    expect(help).not.toContain('--token')
  })
})
