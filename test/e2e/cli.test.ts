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

  it('prints what each tier in use expands to, and refuses a critical budget that would block', async () => {
    const file = join(dir, 'tiers.yaml')
    writeFileSync(
      file,
      [
        'endpoint_tiers: {checkout: critical, lab: experimental}',
        'notifications:',
        '  channels: [{id: finops-slack, type: slack, webhook_url: "http://127.0.0.1:9/slack"}]',
        'budgets:',
        '  - {name: checkout, scope: {kind: endpoint, id: checkout}, period: monthly, amount_usd: 500, owner: finops-slack}',
        '  - name: lab',
        '    scope: {kind: endpoint, id: lab}',
        '    period: daily',
        '    amount_usd: 20',
        '    threshold_actions: [{threshold_percent: 80, action: notify, channels: [finops-slack]}]',
      ].join('\n'),
    )
    const result = await tollgate('config', 'check', file)
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(
      'tier critical (endpoints: checkout): soft cap: notify at 50% and 80%, degrade at 100% (never blocks), escalate to the owner after 30m',
    )
    expect(result.stdout).toContain('budget "checkout" (critical): 50% notify, 80% notify, 100% degrade; escalate after 30m')
    expect(result.stdout).toContain('budget "lab" (experimental): 50% notify, 80% notify → finops-slack, 100% block (hard cap); no escalation')

    writeFileSync(
      file,
      [
        'endpoint_tiers: {checkout: critical}',
        'budgets:',
        '  - {name: c, scope: {kind: endpoint, id: checkout}, period: daily, amount_usd: 5, hard_limit: true}',
      ].join('\n'),
    )
    const refused = await tollgate('config', 'check', file)
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/budgets\[0\]\.scope\.id: a critical budget degrades instead of blocking/)
  })

  it('names the file, the key path and what was expected, with no stack trace', async () => {
    const file = join(dir, 'broken.yaml')
    writeFileSync(
      file,
      [
        'providers:',
        '  targets:',
        '    - {id: main, provider: azure}',
        'cost_tracking:',
        '  budget_alerts:',
        '    - {treshold_percent: 50, action: notify}',
      ].join('\n'),
    )
    const result = await tollgate('config', 'check', file)
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(`tollgate: ${file} is not valid`)
    expect(result.stderr).toMatch(/providers\.targets\[0\]\.provider: expected one of openai \| anthropic \| openai-compatible \| mock, got "azure"/)
    expect(result.stderr).toMatch(/cost_tracking\.budget_alerts\[0\]: unknown key "treshold_percent"/)
    expect(result.stderr).not.toMatch(/\n\s+at /)
  })

  it('never prints a secret pasted where a variable name belongs, in check or in serve', async () => {
    const file = join(dir, 'pasted.yaml')
    writeFileSync(
      file,
      [
        'providers:',
        '  targets:',
        '    - {id: main, provider: openai, secret_key_ref: {env: sk_live_51HqPASTEDsecret9}}',
        'notifications:',
        '  channels: [{id: hook, type: webhook, url: "http://127.0.0.1:9/hook", secret_ref: {env: whsec_PASTEDsecret123}}]',
      ].join('\n'),
    )
    const checked = await tollgate('config', 'check', file)
    expect(checked.code).toBe(0)
    expect(checked.stdout).toContain('note: the environment variable named by target main (its name is not shown')
    const served = await tollgate('serve', '--config', file)
    expect(served.code).toBe(2)
    expect(served.stderr).toContain('providers.targets[0].secret_key_ref.env: the environment variable named here (its name is not shown')
    expect(served.stderr).toContain('notifications.channels[0].secret_ref.env: the environment variable named here')
    for (const output of [checked.stdout, checked.stderr, served.stdout, served.stderr]) {
      expect(output).not.toContain('PASTED')
    }
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
