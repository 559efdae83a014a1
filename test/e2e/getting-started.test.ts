/**
 * docs/getting-started.md works as written: its configuration starts a gateway, and its commands
 * — the `npx tollgate …` lines and the curl loop — run in order against it and end with what the
 * page promises: a funded wallet, a budget whose 50/80/95% alerts fired, and a report.
 *
 * The page is read, not copied: change a command there and this test runs the new one.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { freePort } from '../support/free-port.js'
import { gatewayMain, spawnChild, type ChildHandle } from '../support/processes.js'
import { runCli } from './cli-harness.js'

const PAGE = readFileSync(new URL('../../docs/getting-started.md', import.meta.url), 'utf8')
const DOC_ORIGIN = 'http://127.0.0.1:4100'

/** The fenced blocks of one `## N. Title` section, by language. */
function blocks(sectionStart: string, language: string): string[] {
  const from = PAGE.indexOf(`## ${sectionStart}`)
  expect(from, `section "${sectionStart}"`).toBeGreaterThan(-1)
  const to = PAGE.indexOf('\n## ', from + 1)
  const section = PAGE.slice(from, to === -1 ? undefined : to)
  return [...section.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!)
}

/** `npx tollgate …` commands of a section (continuation lines joined), as argument lists. */
function tollgateCommands(sectionStart: string): string[][] {
  const lines = blocks(sectionStart, 'sh')
    .join('\n')
    .replace(/\\\n\s*/g, '')
    .split('\n')
  return lines.filter((l) => l.startsWith('npx tollgate ')).map((l) => shellWords(l.replace(/\s+#.*$/, '')).slice(2))
}

function shellWords(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!)
}

let dir: string
let gateway: ChildHandle
let origin: string
let env: NodeJS.ProcessEnv
const keyLine = /export SUPPORT_BOT_KEY=(\S+)/.exec(PAGE)

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-getting-started-'))
  const [config] = blocks('2.', 'yaml')
  writeFileSync(join(dir, 'tollgate.yaml'), config!)
  const port = await freePort()
  origin = `http://127.0.0.1:${port}`
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TOLLGATE_') && !name.endsWith('_API_KEY')))
  env = { ...base, SUPPORT_BOT_KEY: keyLine![1]! }
  gateway = spawnChild(process.execPath, [gatewayMain, 'serve', '--config', 'tollgate.yaml', '--port', String(port)], {
    name: 'getting-started gateway',
    cwd: dir,
    env,
  })
  await gateway.waitForHttp(`${origin}/healthz`, { timeoutMs: 30_000 })
  const adminToken = /admin token \(shown once, store it now\): (tg_admin_\S+)/.exec(gateway.output())?.[1]
  expect(adminToken, gateway.output()).toBeDefined()
  env = { ...env, TOLLGATE_URL: origin, TOLLGATE_TOKEN: adminToken }
}, 60_000)

afterAll(async () => {
  await gateway?.kill('SIGTERM')
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function run(args: string[]): Promise<string> {
  const result = await runCli(args, env, dir)
  expect(result.code, `tollgate ${args.join(' ')}\n${result.stdout}\n${result.stderr}`).toBe(0)
  return result.stdout
}

function bash(script: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-euo', 'pipefail', '-c', script], { env, cwd: dir, timeout: 60_000 }, (error, stdout) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout })
    })
  })
}

it('the page’s configuration is valid and its store lives where it says', async () => {
  for (const args of tollgateCommands('2.')) if (args[0] === 'config') expect(await run(args)).toMatch(/is valid/)
  expect(gateway.output()).toContain('store ./data/tollgate.db')
})

it('funds a wallet, sets a budget, makes calls, fires each alert once and reports the spend, as written', { timeout: 180_000 }, async () => {
  for (const section of ['3.', '4.', '5.']) for (const args of tollgateCommands(section)) await run(args)

  const [loop] = blocks('6.', 'sh')
  const calls = await bash(loop!.replaceAll(DOC_ORIGIN, origin))
  expect(calls.code).toBe(0)
  expect(calls.stdout.match(/^x-tollgate-cost-usd:/gim)?.length).toBe(8)
  expect(calls.stdout).toMatch(/x-tollgate-wallet: team:support/i)

  const seven = tollgateCommands('7.')
  expect(await run(seven[0]!)).toMatch(/Support daily/)
  const inbox = (await (await fetch(`${origin}/v1/notifications`, { headers: { authorization: `Bearer ${env['TOLLGATE_TOKEN']}` } })).json()) as {
    data: Array<{ type: string; data: { threshold_percent?: number } }>
  }
  const fired = inbox.data
    .filter((n) => n.type === 'budget.threshold')
    .map((n) => n.data.threshold_percent)
    .sort((a, b) => a! - b!)
  expect(fired).toEqual([50, 80, 95])

  const report = tollgateCommands('8.')
  expect(await run(report[0]!)).toMatch(/gpt-4o-mini\s+8\b/)
  expect(await run(report[1]!)).toMatch(/alice/)
})
