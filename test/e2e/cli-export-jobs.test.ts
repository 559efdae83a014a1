/**
 * `tollgate export-jobs …` as an analyst uses it: `create` starts an export of today's usage
 * events, follows its progress (plain lines on stderr here, not a terminal), and writes the file:
 * the CSV holds one row per proxied call, no `.partial` file is left, and with no --out the file
 * takes the server's name in the current folder. `list`, `show` and `download` find the same job
 * and the same bytes. A range the server refuses exits 1; bad flags, or an --out folder that
 * cannot be written, exit 2 before any job is started.
 *
 * How: a listening gateway on SQLite with a mock upstream; proxied calls with fetch; the built
 * CLI in a child process, run in a temp folder.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, startTestGateway, type TestGateway } from '../support/gateway.js'
import { cliFor, expectFailure, expectOk, jsonOf, tableRows, type Cli } from './cli-harness.js'

let gw: TestGateway
let cli: Cli
const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-export-'))
const requestIds: string[] = []
let today = ''

beforeAll(async () => {
  gw = await startTestGateway()
  cli = cliFor(gw, ADMIN_TOKEN, {}, dir)
  today = new Date().toISOString().slice(0, 10)
  for (let i = 0; i < 3; i++) {
    const response = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.consumerKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: `call ${i}` }] }),
    })
    await response.arrayBuffer()
    expect(response.status).toBe(200)
    requestIds.push(response.headers.get('x-tollgate-request-id')!)
  }
})
afterAll(async () => {
  await gw?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function jobCount(): Promise<number> {
  return (await gw.admin('GET', '/v1/export-jobs')).body.data.length
}

describe('tollgate export-jobs create', () => {
  it('follows the job to completion and writes the CSV to --out, one row per call', async () => {
    const out = join(dir, 'today.csv')
    const result = await cli('export-jobs', 'create', '--type', 'events', '--format', 'csv', '--date-from', today, '--date-to', today, '--out', out)
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`^Export exp_\\w+ completed: 3 rows, \\d+ bytes written to ${out}\\n$`))
    const progress = result.stderr.split('\n').filter(Boolean)
    expect(progress.at(-1)).toMatch(/^export exp_\w+: 100% /)
    expect(result.stderr).not.toMatch(/tollgate: /)

    const rows = readFileSync(out, 'utf8').trim().split('\n')
    expect(rows).toHaveLength(4)
    for (const id of requestIds) expect(rows.filter((row) => row.includes(id))).toHaveLength(1)
    expect(existsSync(`${out}.partial`)).toBe(false)
  })

  it('with no --out writes the server’s file name in the current folder; --json adds file and bytes to the job', async () => {
    const before = new Set(readdirSync(dir))
    const job = jsonOf(
      expectOkWithProgress(await cli('export-jobs', 'create', '--type', 'events', '--format', 'ndjson', '--date-from', today, '--date-to', today, '--json')),
    )
    expect(job).toMatchObject({
      id: expect.stringMatching(/^exp_/),
      status: 'completed',
      type: 'events',
      format: 'ndjson',
      rows_written: 3,
      file: expect.stringMatching(/^tollgate-events-\d{8}-\d{8}-exp_\w+\.ndjson$/),
    })
    const created = readdirSync(dir).filter((name) => !before.has(name))
    expect(created).toEqual([job.file])
    const lines = readFileSync(join(dir, job.file), 'utf8').trim().split('\n')
    expect(lines.map((line) => JSON.parse(line))).toHaveLength(3)
    expect(job.bytes).toBe(readFileSync(join(dir, job.file)).length)
  })
})

describe('tollgate export-jobs list | show | download', () => {
  it('finds a finished job and downloads the same bytes again', async () => {
    const job = jsonOf(
      expectOkWithProgress(
        await cli(
          'export-jobs',
          'create',
          '--type',
          'events',
          '--format',
          'csv',
          '--date-from',
          today,
          '--date-to',
          today,
          '--out',
          join(dir, 'first.csv'),
          '--json',
        ),
      ),
    )

    const rows = tableRows(expectOk(await cli('export-jobs', 'list')).stdout)
    expect(rows[0]).toEqual(['ID', 'STATUS', 'TYPE', 'FORMAT', 'FROM', 'TO', 'PROGRESS', 'ROWS', 'CREATED'])
    expect(rows.find((r) => r[0] === job.id)?.slice(1, 4)).toEqual(['completed', 'events', 'csv'])

    const shown = expectOk(await cli('export-jobs', 'show', job.id)).stdout
    expect(shown).toMatch(/status:\s+completed/)
    expect(shown).toMatch(/progress:\s+100% \(3\/3 rows\)/)
    expect(jsonOf(expectOk(await cli('export-jobs', 'show', job.id, '--json')))).toMatchObject({ id: job.id, rows_written: 3 })

    const again = join(dir, 'again.csv')
    expect(expectOk(await cli('export-jobs', 'download', job.id, '--out', again)).stdout).toBe(`${job.bytes} bytes written to ${again}\n`)
    expect(readFileSync(again)).toEqual(readFileSync(join(dir, 'first.csv')))
  })
})

describe('refusals and usage errors', () => {
  it('a range the server refuses exits 1 naming the field', async () => {
    expect(
      expectFailure(
        await cli('export-jobs', 'create', '--type', 'events', '--format', 'csv', '--date-from', '2026-05-02', '--date-to', '2026-05-01T00:00:00Z'),
        1,
      ),
    ).toMatch(/invalid_request \(HTTP 400\): date_to: "date_to" must be after "date_from"/)
    expect(expectFailure(await cli('export-jobs', 'show', 'exp_nope'), 1)).toMatch(/not_found \(HTTP 404\)/)
  })

  it('a job past its retention: show says expired, download exits 1 with one line saying to start a new export', async () => {
    const job = jsonOf(
      expectOkWithProgress(
        await cli(
          'export-jobs',
          'create',
          '--type',
          'events',
          '--format',
          'csv',
          '--date-from',
          today,
          '--date-to',
          today,
          '--out',
          join(dir, 'old.csv'),
          '--json',
        ),
      ),
    )
    // The sweep of a day later, as the gateway's own loop would run it (24 h is the default retention).
    const expired = await gw.app.stores.exports.expireExportJobs(Date.now() + 25 * 3_600_000, gw.app.exports.retentionMs)
    expect(expired).toBeGreaterThanOrEqual(1)
    expect(expectOk(await cli('export-jobs', 'show', job.id)).stdout).toMatch(/status:\s+expired[\s\S]*file:\s+deleted .*start a new export/)
    const line = expectFailure(await cli('export-jobs', 'download', job.id, '--out', join(dir, 'gone.csv')), 1)
    expect(line).toMatch(new RegExp(`^tollgate: export ${job.id} expired at .*: the gateway deleted its file after the retention period .*Start a new export`))
    expect(existsSync(join(dir, 'gone.csv'))).toBe(false)
  })

  it.each([
    [['--type', 'wallets', '--format', 'csv', '--date-from', '2026-05-01', '--date-to', '2026-05-31'], /'--type <type>' argument 'wallets' is invalid/],
    [['--type', 'events', '--format', 'xlsx', '--date-from', '2026-05-01', '--date-to', '2026-05-31'], /'--format <format>' argument 'xlsx' is invalid/],
    [['--type', 'events', '--format', 'csv', '--date-to', '2026-05-31'], /required option '--date-from <date>'/],
    [['--type', 'events', '--format', 'csv', '--date-from', '2026-02-30', '--date-to', '2026-05-31'], /not a calendar date/],
    [
      ['--type', 'events', '--format', 'csv', '--date-from', '2026-05-01', '--date-to', '2026-05-31', '--out', '/nonexistent-folder/x.csv'],
      /--out: cannot write into \/nonexistent-folder/,
    ],
  ])('exits 2 before starting a job: %j', async (args, message) => {
    const before = await jobCount()
    expect(expectFailure(await cli('export-jobs', 'create', ...args), 2)).toMatch(message)
    expect(await jobCount()).toBe(before)
  })
})

/** A run that succeeded: exit 0, and stderr holds only progress lines. */
function expectOkWithProgress(result: { code: number; stdout: string; stderr: string }) {
  expect(result.code, result.stderr).toBe(0)
  for (const line of result.stderr.split('\n').filter(Boolean)) expect(line).toMatch(/^export exp_\w+: \d+% /)
  return result
}
