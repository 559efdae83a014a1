/// <reference lib="dom" />
/**
 * The web console in a real browser, against a gateway running the demo data (`tollgate demo
 * --fast`, in process): sign in with the admin token; the Overview shows the demo's spend and its
 * spike; a budget is created (after the API's message is shown on a bad amount) and its gauge
 * appears; a ticket is approved and the held request completes; a notification is marked read; an
 * export of events is run and its CSV downloaded (it matches the usage report); a viewer sees no
 * write control; sign-out ends the session. Every page is photographed at 1280 px
 * (plus one phone-width and one dark screenshot) into TOLLGATE_SCREENSHOTS_DIR (default
 * .tmp/screenshots; `npm run screenshots` writes docs/screenshots).
 *
 * How: playwright-core drives Debian's /usr/bin/chromium with a fresh --user-data-dir and the
 * flags this machine's closed network needs. Without chromium the file skips, saying why — except
 * under CI=true, where it fails. It needs the built console (npm test builds first).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { runDemo, type RunningDemo } from '../../src/cli/demo/run-demo.js'
import { CONSOLE_DIR_DEFAULT } from '../../src/web/serve.js'
import { formatUsd } from '../../console/src/format.js'
import { lastDays, wireRange } from '../../console/src/range.js'
import { csvObjects } from '../support/csv.js'

const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
const SCREENSHOTS = resolve(process.env.TOLLGATE_SCREENSHOTS_DIR ?? '.tmp/screenshots')
const DESKTOP = { width: 1280, height: 900 }
const PHONE = { width: 390, height: 844 }
const UI_TIMEOUT_MS = 15_000

const hasChromium = existsSync(CHROMIUM)
if (!hasChromium && process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get`)

describe.skipIf(!hasChromium)(hasChromium ? 'the web console' : `the web console (skipped: ${CHROMIUM} is not installed)`, () => {
  let demo: RunningDemo
  let context: BrowserContext
  let page: Page
  let profileDir: string

  const admin = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${demo.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${demo.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: response.status, body: (response.status === 204 ? undefined : await response.json()) as any }
  }

  const shoot = async (name: string, target: Page = page) => {
    await target.waitForLoadState('networkidle')
    await target.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
  }

  const open = async (path: string, heading: string, target: Page = page) => {
    await target.goto(`${demo.url}${path}`)
    await target.getByRole('heading', { level: 1, name: heading }).waitFor({ timeout: UI_TIMEOUT_MS })
  }

  const signIn = async (token: string, target: Page = page) => {
    await target.goto(`${demo.url}/usage`)
    await target.getByLabel('Admin token').fill(token)
    await target.getByRole('button', { name: 'Sign in' }).click()
    await target.getByRole('heading', { level: 1, name: 'Overview' }).waitFor({ timeout: UI_TIMEOUT_MS })
  }

  beforeAll(async () => {
    if (!existsSync(join(CONSOLE_DIR_DEFAULT, 'index.html'))) throw new Error(`no built console in ${CONSOLE_DIR_DEFAULT}: run npm run build first`)
    mkdirSync(SCREENSHOTS, { recursive: true })
    demo = await runDemo({ port: 0, fast: true, announce: () => {} })
    profileDir = mkdtempSync(join(tmpdir(), 'tollgate-chromium-'))
    // Reduced motion: charts draw at once (no animation), so a screenshot never catches a bar mid-growth.
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: DESKTOP,
      reducedMotion: 'reduce',
    })
    page = context.pages()[0] ?? (await context.newPage())
  }, 120_000)

  afterAll(async () => {
    await context?.close()
    await demo?.stop()
    if (profileDir) rmSync(profileDir, { recursive: true, force: true })
  })

  it('signs in with the admin token: an httpOnly session cookie, nothing kept in web storage', async () => {
    await page.goto(`${demo.url}/usage`)
    await page.getByRole('heading', { name: 'Tollgate console' }).waitFor({ timeout: UI_TIMEOUT_MS })
    await shoot('sign-in')
    await page.getByLabel('Admin token').fill('tg_admin_wrong')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByText('This token is not known to the gateway.').waitFor({ timeout: UI_TIMEOUT_MS })
    await signIn(demo.adminToken)
    const cookies = await context.cookies(demo.url)
    expect(cookies).toMatchObject([{ name: 'tollgate_session', httpOnly: true, sameSite: 'Strict', path: '/' }])
    const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))
    expect(storage).not.toContain(demo.adminToken)
    expect(await page.getByTestId('role').textContent()).toBe('admin')
  })

  it("shows the demo's spend over the last 7 days and its spike window on the Overview", async () => {
    const range = wireRange(lastDays(7, Date.now()))
    const report = (await admin('GET', `/v1/usage?from=${encodeURIComponent(range.from)}&to=${encodeURIComponent(range.to)}&bucket=hour`)).body
    expect(report.totals.cost_usd).toBeGreaterThan(1)
    expect(report.spikes.length).toBeGreaterThan(0)
    await open('/usage', 'Overview')
    await expect.poll(() => page.getByTestId('kpi-spend').textContent(), { timeout: UI_TIMEOUT_MS }).toContain(formatUsd(report.totals.cost_usd))
    expect(await page.getByTestId('kpi-spikes').textContent()).toContain(`${report.spikes.length} h`)
    await page.getByTestId('spend-chart').locator('text', { hasText: 'Spike' }).first().waitFor({ timeout: UI_TIMEOUT_MS })
    await page.getByTestId('breakdown-table').getByRole('cell', { name: 'growth', exact: true }).waitFor()
    expect(await page.getByTestId('budget-posture').locator('li').count()).toBe((await admin('GET', '/v1/billing/budgets')).body.data.length)
    await shoot('overview')

    await page.getByLabel('Break down by').selectOption('prompt_version')
    await page.getByTestId('breakdown-table').getByRole('cell', { name: 'summarize_v4', exact: true }).waitFor({ timeout: UI_TIMEOUT_MS })
  })

  it('leaves each budget the demo pushes just past its mark, not far beyond it', async () => {
    const budgets = (await admin('GET', '/v1/billing/budgets')).body.data as { name: string; posture: { percent: number } }[]
    const percentOf = (name: string) => budgets.find((b) => b.name === name)!.posture.percent
    // Each push stops at its mark (the pushes' steps are a few percent of the amount each).
    for (const [name, mark] of [
      ['Summarize shadow cap', 102],
      ['Support weekly', 85],
      ['Growth daily', 96],
    ] as const) {
      expect(percentOf(name), name).toBeGreaterThanOrEqual(mark)
      expect(percentOf(name), name).toBeLessThan(150)
    }
  })

  // Before the tests below add budgets of their own: the screenshots show the demo's data alone.
  it('reads at phone width and in dark mode', async () => {
    await page.setViewportSize(PHONE)
    await open('/usage', 'Overview')
    await page.getByTestId('spend-chart').locator('text', { hasText: 'Spike' }).first().waitFor({ timeout: UI_TIMEOUT_MS })
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
    expect(overflow).toBeLessThanOrEqual(0)
    // Every page's link is on the screen, none hidden past its edge in a row that scrolls sideways.
    const nav = page.getByRole('navigation', { name: 'Console' })
    const links = await nav.getByRole('link').evaluateAll((all) => all.map((a) => ({ name: a.textContent, right: a.getBoundingClientRect().right })))
    expect(links.length).toBeGreaterThanOrEqual(10)
    for (const link of links) expect(link.right, String(link.name)).toBeLessThanOrEqual(PHONE.width)
    // The breakdown keeps spend, share and requests and leaves the token columns out: nothing to scroll sideways.
    const breakdown = page.getByTestId('breakdown-table')
    await expect
      .poll(() => breakdown.getByRole('columnheader').allInnerTexts())
      .toEqual([expect.stringMatching(/^Team/), expect.stringMatching(/^Spend/), expect.stringMatching(/^Share/), expect.stringMatching(/^Requests/)])
    expect(await breakdown.evaluate((frame) => frame.scrollWidth - frame.clientWidth)).toBeLessThanOrEqual(0)
    await shoot('overview-phone')
    await page.setViewportSize(DESKTOP)
    await page.emulateMedia({ colorScheme: 'dark' })
    await open('/usage/budgets', 'Budgets')
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor)
    expect(background).toBe('rgb(13, 17, 23)')
    await shoot('budgets-dark')
    await page.emulateMedia({ colorScheme: 'light' })
  })

  it('lists top endpoints, users and prompt versions with their share and change', async () => {
    await open('/usage/top', 'Top spenders')
    await page.getByTestId('top-endpoint').getByRole('cell', { name: 'search.summarize', exact: true }).waitFor({ timeout: UI_TIMEOUT_MS })
    await page.getByTestId('top-prompt_version').getByRole('cell', { name: 'summarize_v4', exact: true }).waitFor()
    await shoot('top')
  })

  it('lists usage events newest first; selecting one shows where its numbers came from', async () => {
    const [newest] = (await admin('GET', '/v1/usage/events?limit=1')).body.data
    expect(newest).toBeDefined()
    await open('/usage/events', 'Events')
    const table = page.getByTestId('events-table')
    await table.getByRole('button', { name: `Event ${newest.request_id}`, exact: false }).click({ timeout: UI_TIMEOUT_MS })
    const details = page.getByTestId('event-details')
    await details.getByRole('heading', { name: `Event ${formatUsd(newest.cost_usd)}` }).waitFor({ timeout: UI_TIMEOUT_MS })
    expect(await details.textContent()).toContain(newest.usage_source)
    expect(await details.getByTestId('cost-breakdown').count()).toBe(newest.cost_breakdown ? 1 : 0)
    await shoot('events')
  })

  it('creates a budget: the API names a bad amount on its field, then the new gauge appears', async () => {
    await open('/usage/budgets', 'Budgets')
    await page.getByTestId('budget-Growth daily').waitFor({ timeout: UI_TIMEOUT_MS })
    await shoot('budgets')
    await page.getByRole('button', { name: 'New budget' }).click()
    await page.getByLabel('Name').fill('E2E research weekly')
    await page.getByLabel('Team id').fill('research')
    await page.getByLabel('Period').selectOption('weekly')
    await page.getByLabel('Amount (USD)').fill('lots')
    await page.getByRole('button', { name: 'Create budget' }).click()
    const amountError = page
      .locator('.field-invalid')
      .filter({ has: page.getByLabel('Amount (USD)') })
      .locator('.error')
    await expect.poll(() => amountError.textContent(), { timeout: UI_TIMEOUT_MS }).toMatch(/positive number of USD/)
    await shoot('budget-form-error')
    expect((await admin('GET', '/v1/billing/budgets')).body.data.map((b: { name: string }) => b.name)).not.toContain('E2E research weekly')
    await page.getByLabel('Amount (USD)').fill('5')
    await page.getByRole('button', { name: 'Create budget' }).click()
    const gauge = page.getByTestId('budget-E2E research weekly')
    await gauge.waitFor({ timeout: UI_TIMEOUT_MS })
    expect(await gauge.getByTestId('budget-spent').textContent()).toMatch(/of \$5\.00$/)
    const created = (await admin('GET', '/v1/billing/budgets')).body.data.find((b: { name: string }) => b.name === 'E2E research weekly')
    expect(created).toMatchObject({ amount_usd: 5, period: 'weekly', scope: { kind: 'team', id: 'research' } })
  })

  it('says a budget spent past its amount is spent in full, not that it "runs out" at a past time', async () => {
    // The demo pushes its shadow cap past 100% (checked above): the API then gives the exhaustion
    // time as the moment of the request. No budget of this test's own: its notices would show in
    // the notification screenshots.
    type Posture = { spend_usd: number; forecast_exhaustion_at: string | null }
    const budgets = (await admin('GET', '/v1/billing/budgets')).body.data as { name: string; amount_usd: number; posture: Posture }[]
    const overspent = budgets.find((b) => b.name === 'Summarize shadow cap')!
    expect(overspent.posture.spend_usd).toBeGreaterThanOrEqual(overspent.amount_usd)
    expect(overspent.posture.forecast_exhaustion_at).not.toBeNull()
    await open('/usage/budgets', 'Budgets')
    const gauge = page.getByTestId('budget-Summarize shadow cap')
    await gauge.waitFor({ timeout: UI_TIMEOUT_MS })
    expect(await gauge.getByTestId('budget-runs-out').textContent()).toBe('already spent in full')
    await open('/usage', 'Overview')
    const posture = page.getByTestId('budget-posture').locator('li', { hasText: 'Summarize shadow cap' })
    await posture.waitFor({ timeout: UI_TIMEOUT_MS })
    expect(await posture.textContent()).toContain('spent in full')
    expect(await posture.textContent()).not.toContain('runs out')
  })

  it('sets an owner, an escalation delay and per-threshold channels from the budget form', async () => {
    await open('/usage/budgets', 'Budgets')
    await page.getByRole('button', { name: 'New budget' }).click()
    await page.getByLabel('Name').fill('E2E routed monthly')
    await page.getByLabel('Team id').fill('research')
    await page.getByLabel('Amount (USD)').fill('50')
    await page.getByLabel('Owner (optional)').fill('finops-slack')
    await page.getByLabel('Escalate after (optional)').fill('2h')
    await page.getByRole('button', { name: 'Add action' }).click()
    await page.getByLabel('Action 1 at (%)').fill('80')
    await page.getByLabel('Action 1', { exact: true }).selectOption('notify')
    await page.getByLabel('Action 1 channels').fill('pager')
    await page.getByRole('button', { name: 'Create budget' }).click()
    const channelError = page
      .locator('.field-invalid')
      .filter({ has: page.getByLabel('Action 1 channels') })
      .locator('.error')
    await expect.poll(() => channelError.textContent(), { timeout: UI_TIMEOUT_MS }).toMatch(/unknown channel id pager/)
    await page.getByLabel('Action 1 channels').fill('finops-slack, ops-webhook')
    await page.getByRole('button', { name: 'Create budget' }).click()
    await page.getByTestId('budget-E2E routed monthly').waitFor({ timeout: UI_TIMEOUT_MS })
    const created = (await admin('GET', '/v1/billing/budgets')).body.data.find((b: { name: string }) => b.name === 'E2E routed monthly')
    expect(created).toMatchObject({
      owner: 'finops-slack',
      escalate_after: '2h',
      threshold_actions: [{ threshold_percent: 80, action: 'notify', channels: ['finops-slack', 'ops-webhook'] }],
    })
  })

  it('acknowledges an escalating notice from the inbox, which stops its escalation', async () => {
    // An org budget this month's demo spend has already taken to 90%: its 80% threshold fires as it
    // is created (the demo's "Org monthly" budget reads the same month's org spend).
    const budgets = (await admin('GET', '/v1/billing/budgets')).body.data as { name: string; posture: { spend_usd: number } }[]
    const monthSpend = budgets.find((b) => b.name === 'Org monthly')!.posture.spend_usd
    expect(monthSpend).toBeGreaterThan(0)
    const budget = await admin('POST', '/v1/billing/budgets', {
      name: 'Org spend watch',
      period: 'monthly',
      amount_usd: Math.ceil((monthSpend / 0.9) * 1e6) / 1e6,
      alert_thresholds: [80],
      escalate_after: '2h',
      owner: 'ops-webhook',
    })
    expect(budget.status).toBe(201)
    const notices = (await admin('GET', '/v1/notifications?limit=200')).body.data as {
      id: string
      type: string
      data: Record<string, unknown>
      escalate_at: string | null
    }[]
    const notice = notices.find((n) => n.data['budget_id'] === budget.body.id && n.type === 'budget.threshold')!
    expect(notice.escalate_at).not.toBeNull()
    await open('/notifications', 'Notifications')
    const item = page.getByTestId(`notification-${notice.id}`)
    await item.getByText(/Escalates .* unless acknowledged/).waitFor({ timeout: UI_TIMEOUT_MS })
    await shoot('notification-escalating')
    await item.getByRole('button', { name: /^Acknowledge/ }).click()
    await item.getByText(/^Acknowledged /).waitFor({ timeout: UI_TIMEOUT_MS })
    const stored = (await admin('GET', '/v1/notifications?limit=200')).body.data.find((n: { id: string }) => n.id === notice.id)
    expect(stored.acknowledged_at).not.toBeNull()
  })

  it('shows wallet balances, the cascade and a ledger', async () => {
    await open('/wallets', 'Wallets')
    await page.getByTestId('wallets-table').getByRole('cell', { name: 'team:labs' }).click()
    await page.getByTestId('ledger').getByRole('cell', { name: 'allocation' }).first().waitFor({ timeout: UI_TIMEOUT_MS })
    await shoot('wallets')
  })

  it('approves the cost ticket and the held request completes', async () => {
    await open('/cost-tickets', 'Cost tickets')
    const ticket = page.locator('li.ticket-pending').filter({ hasText: 'labs-notebook' }).first()
    await ticket.getByTestId('request-state').filter({ hasText: 'Held request waiting' }).waitFor({ timeout: UI_TIMEOUT_MS })
    await shoot('cost-tickets')
    await ticket.getByRole('button', { name: 'Approve' }).click()
    expect(await demo.heldRequest).toBe(200)
    await page.getByRole('button', { name: 'Approved' }).click()
    await page.getByTestId('request-state').filter({ hasText: 'Request completed' }).first().waitFor({ timeout: UI_TIMEOUT_MS })
  })

  it('marks a notification read and the unread count goes down', async () => {
    await open('/notifications', 'Notifications')
    const before = Number((await page.getByTestId('unread-count').textContent())?.replace('+', ''))
    expect(before).toBeGreaterThan(0)
    await shoot('notifications')
    // The shadow cap's 100% notice was written as its spend reached the amount: spent, not a forecast.
    const full = page.locator('li.notification', { hasText: 'Summarize shadow cap) reached 100%' })
    expect(await full.textContent()).toContain('spent in full')
    expect(await full.textContent()).not.toContain('runs out')
    const first = page.locator('li.notification.unread').first()
    const id = (await first.getAttribute('data-testid'))!.replace('notification-', '')
    await first.getByRole('button', { name: /Mark read/ }).click()
    await expect.poll(async () => Number((await page.getByTestId('unread-count').textContent())?.replace('+', '')), { timeout: UI_TIMEOUT_MS }).toBe(before - 1)
    const stored = (await admin('GET', '/v1/notifications?limit=200')).body.data.find((n: { id: string }) => n.id === id)
    expect(stored.read_at).not.toBeNull()
  })

  it('shows notification preferences', async () => {
    await open('/settings/notification-preferences', 'Notification preferences')
    await shoot('notification-preferences')
  })

  it('replays the demo traffic through a proposed policy: a bad field is named, then the report matches the API', async () => {
    await open('/policy/replay', 'Policy replay')
    const policy = page.getByTestId('replay-policy')
    await policy.fill('budgets:\n  - { name: growth cap, scope: { kind: team, id: growth }, period: monthly, amount_usd: -1, hard_limit: true }\n')
    await page.getByLabel('Traffic').selectOption('all')
    await page.getByRole('button', { name: 'Run replay' }).click()
    await page.getByText(/policy\.budgets\[0\]\.amount_usd/).waitFor({ timeout: UI_TIMEOUT_MS })
    const text = [
      'budgets:',
      '  - { name: growth cap, scope: { kind: team, id: growth }, period: daily, amount_usd: 0.05, hard_limit: true }',
      '  - { name: search degrade, scope: { kind: endpoint, id: search.summarize }, period: daily, amount_usd: 0.05, threshold_actions: [{ threshold_percent: 50, action: degrade }] }',
      'endpoint_tiers:',
      '  search.summarize: critical',
      '',
    ].join('\n')
    await policy.fill(text)
    await page.getByRole('button', { name: 'Run replay' }).click()
    await page.getByTestId('replay-report').waitFor({ timeout: UI_TIMEOUT_MS })
    // The same replay through the API: the page shows its figures.
    const window = wireRange(lastDays(30, Date.now()))
    const started = await admin('POST', '/v1/replays', { ...window, policy: text, data_mode: 'all' })
    let job = started.body
    while (job.status === 'running') job = (await admin('GET', `/v1/replays/${job.id}`)).body
    expect(job.report.totals.avoided_micros).toBeGreaterThan(0)
    expect(await page.getByTestId('replay-avoided').textContent()).toContain(formatUsd(job.report.totals.avoided_micros / 1e6))
    const growth = job.report.scopes.find((s: { name: string }) => s.name === 'growth cap')
    await page
      .getByTestId('replay-scopes')
      .getByRole('cell', { name: String(growth.blocked.count), exact: true })
      .first()
      .waitFor()
    await page.getByTestId('replay-chart').locator('text', { hasText: 'Spend avoided' }).first().waitFor({ timeout: UI_TIMEOUT_MS })
    await shoot('replay')
  })

  it('runs an export and downloads it: one CSV row per event of the range, the same spend as the report', async () => {
    await open('/exports', 'Exports')
    await page.getByLabel('What').selectOption('events')
    await page.getByLabel('Format').selectOption('csv')
    const from = await page.getByLabel('From').inputValue()
    const to = await page.getByLabel('To (included)').inputValue()
    await page.getByRole('button', { name: 'Start export' }).click()
    // The job names the days the form asked for, the last one included (not the API's excluded end).
    await page.locator('li.job').first().getByText(`${from} – ${to}`).waitFor({ timeout: UI_TIMEOUT_MS })
    const link = page.locator('li.job').first().getByRole('link', { name: 'Download' })
    await link.waitFor({ timeout: 60_000 })
    await shoot('exports')
    const job = (await admin('GET', '/v1/export-jobs')).body.data[0]
    expect(job).toMatchObject({ status: 'completed', type: 'events', format: 'csv', progress: 1 })
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()])
    expect(download.suggestedFilename()).toBe(
      `tollgate-events-${job.date_from.slice(0, 10).replace(/-/g, '')}-${job.date_to.slice(0, 10).replace(/-/g, '')}-${job.id}.csv`,
    )
    const rows = csvObjects(readFileSync(await download.path(), 'utf8'))
    const report = (await admin('GET', `/v1/usage?from=${encodeURIComponent(job.date_from)}&to=${encodeURIComponent(job.date_to)}`)).body
    expect(rows).toHaveLength(job.rows_written)
    expect(rows).toHaveLength(report.totals.requests)
    expect(rows.reduce((sum, row) => sum + Number(row.cost_micros), 0)).toBe(report.totals.cost_micros)
  })

  it('a viewer sees no write control, and the API refuses its writes', async () => {
    const viewer = (await admin('POST', '/v1/admin-tokens', { name: 'e2e viewer', role: 'viewer' })).body.token as string
    const viewerPage = await context.newPage()
    await context.clearCookies()
    await signIn(viewer, viewerPage)
    expect(await viewerPage.getByTestId('role').textContent()).toBe('viewer')
    await open('/usage/budgets', 'Budgets', viewerPage)
    await viewerPage.getByTestId('budget-Growth daily').waitFor({ timeout: UI_TIMEOUT_MS })
    expect(await viewerPage.getByRole('button', { name: /^(New budget|Edit|Delete)$/ }).allTextContents()).toEqual([])
    await open('/wallets', 'Wallets', viewerPage)
    await viewerPage.getByTestId('wallets-table').getByRole('cell', { name: 'team:growth' }).waitFor({ timeout: UI_TIMEOUT_MS })
    expect(await viewerPage.getByRole('button', { name: 'Allocate', exact: true }).allTextContents()).toEqual([])
    await open('/cost-tickets', 'Cost tickets', viewerPage)
    await viewerPage.getByRole('button', { name: 'All' }).click()
    await viewerPage.locator('li.ticket').first().waitFor({ timeout: UI_TIMEOUT_MS })
    expect(await viewerPage.getByRole('button', { name: /^(Approve|Deny)$/ }).allTextContents()).toEqual([])
    await open('/notifications', 'Notifications', viewerPage)
    await viewerPage.locator('li.notification').first().waitFor({ timeout: UI_TIMEOUT_MS })
    expect(await viewerPage.locator('li.notification.unread').count()).toBeGreaterThan(0)
    expect(await viewerPage.getByRole('button', { name: /^(Mark read|Acknowledge)/ }).allTextContents()).toEqual([])
    const refused = await viewerPage.evaluate(async () => {
      const session = await (await fetch('/v1/session')).json()
      const response = await fetch('/v1/wallets/allocate', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-tollgate-csrf': session.csrf_token },
        body: JSON.stringify({ team_id: 'growth', amount: 1, currency: 'USD' }),
      })
      return response.status
    })
    expect(refused).toBe(403)
    await viewerPage.close()
  })

  it('signs out: the session is revoked and the sign-in form is back', async () => {
    await context.clearCookies()
    await signIn(demo.adminToken)
    const cookie = (await context.cookies(demo.url)).find((c) => c.name === 'tollgate_session')!.value
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: UI_TIMEOUT_MS })
    expect((await context.cookies(demo.url)).find((c) => c.name === 'tollgate_session')).toBeUndefined()
    const reused = await fetch(`${demo.url}/v1/session`, { headers: { cookie: `tollgate_session=${cookie}` } })
    expect(reused.status).toBe(401)
  })
})
