/**
 * `tollgate demo --fast` as a person runs it: it shows progress while it generates, then prints
 * the console URL and an admin token; the gateway behind them answers with the demo's spend, a
 * request held on a cost ticket and a built console; Ctrl-C (SIGTERM here) stops it cleanly.
 * Method: the built CLI (dist/cli/main.js) in a child process.
 */
import { afterAll, expect, it } from 'vitest'
import { gatewayMain, spawnChild, type ChildHandle } from '../support/processes.js'

const READY_TIMEOUT_MS = 90_000
let child: ChildHandle | undefined

afterAll(async () => {
  await child?.kill('SIGKILL')
})

async function waitForLine(handle: ChildHandle, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const match = handle.output().match(pattern)
    if (match) return match
    if (handle.exitStatus() !== undefined) throw new Error(`demo exited before printing ${pattern}:\n${handle.output()}`)
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${handle.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

it('prints progress, then the console URL and an admin token that reads the demo data; stops on SIGTERM', async () => {
  child = spawnChild(process.execPath, [gatewayMain, 'demo', '--fast', '--port', '0'], {
    env: { ...process.env, OPENAI_API_KEY: '', TOLLGATE_ADMIN_TOKEN: '' },
  })
  const [, consoleUrl] = await waitForLine(child, /Console:\s+(http:\/\/127\.0\.0\.1:\d+\/usage)/, READY_TIMEOUT_MS)
  const [, token] = await waitForLine(child, /Admin token:\s+(tg_admin_[A-Za-z0-9_-]+)/, 1_000)
  const output = child.output()
  expect(output).toMatch(/history 50%/)
  expect(output).toMatch(/history 100%/)
  expect(output).toMatch(/held on a cost ticket/)

  const base = new URL(consoleUrl!).origin
  const headers = { authorization: `Bearer ${token}` }
  const usage = await (await fetch(`${base}/v1/usage`, { headers })).json()
  expect(usage.totals.requests).toBeGreaterThan(100)
  expect(usage.spikes.length).toBeGreaterThan(0)
  const tickets = await (await fetch(`${base}/v1/cost-tickets?status=pending`, { headers })).json()
  expect(tickets.data.map((t: { request: { state: string } }) => t.request.state)).toContain('waiting')
  // No call settled above its reservation: a settlement entry releases what was not charged.
  const wallets = await (await fetch(`${base}/v1/wallets`, { headers })).json()
  const labs = wallets.data.find((w: { scope: string }) => w.scope === 'team:labs')
  const ledger = await (await fetch(`${base}/v1/wallets/${labs.id}/ledger?limit=1000`, { headers })).json()
  const settlements = ledger.data.filter((e: { kind: string }) => e.kind === 'settlement')
  expect(settlements.length).toBeGreaterThan(0)
  expect(settlements.filter((e: { amount_micros: number }) => e.amount_micros < 0)).toEqual([])
  const page = await fetch(consoleUrl!, { headers: { accept: 'text/html' } })
  expect(page.status).toBe(200)
  expect(await page.text()).toContain('<div id="root">')

  await child.kill('SIGTERM')
  expect(await child.exited).toMatchObject({ code: 0 })
}, 120_000)
