/**
 * The command line as a user runs it: `tollgate config check` explains a broken file without a
 * stack trace and exits non-zero; `tollgate db migrate` applies the PostgreSQL migrations once.
 * Method: the built CLI (dist/cli/main.js) in a child process.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { gatewayMain } from '../support/processes.js'
import { describeWithPostgres } from '../support/services.js'

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function tollgate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [gatewayMain, ...args], { env: { ...process.env, OPENAI_API_KEY: '' } })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

describe('tollgate config check', () => {
  it('accepts the seed configuration as written', async () => {
    const result = await tollgate('config', 'check', 'src/config/fixtures/layered-caps.yaml')
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/is valid/)
  })

  it('names the file, the key path and what was expected, with no stack trace', async () => {
    const file = join(dir, 'broken.yaml')
    writeFileSync(
      file,
      ['providers:', '  targets:', '    - {id: main, provider: azure}', 'cost_tracking:', '  budget_alerts:', '    - {treshold_percent: 50, action: notify}'].join('\n'),
    )
    const result = await tollgate('config', 'check', file)
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(`tollgate: ${file} is not valid`)
    expect(result.stderr).toMatch(/providers\.targets\[0\]\.provider: expected one of openai \| anthropic \| openai-compatible \| mock, got "azure"/)
    expect(result.stderr).toMatch(/cost_tracking\.budget_alerts\[0\]: unknown key "treshold_percent"/)
    expect(result.stderr).not.toMatch(/\n\s+at /)
  })
})

describeWithPostgres('tollgate db migrate', (ctx) => {
  it('applies the migrations once and is a no-op the second time', async () => {
    const first = await tollgate('db', 'migrate', '--url', ctx.postgres.url)
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/applied \d+ migration\(s\): ledger-0001/)
    const second = await tollgate('db', 'migrate', '--url', ctx.postgres.url)
    expect(second.stdout).toMatch(/up to date/)
  })
})
