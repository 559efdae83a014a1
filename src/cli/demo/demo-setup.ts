/**
 * What the demo configures before and after its history: the gateway config (wallet
 * enforcement on, a degrade route, the consumers), wallets, and budgets. Budgets are created at
 * the start of the history with an amount no history reaches; once the history is in, each is
 * set to an amount that puts this period's spend at its target share, so the live calls cross
 * the thresholds (50/80/95, a degrade, a shadow block) in front of the person watching.
 */
import { randomBytes } from 'node:crypto'
import { stringify } from 'yaml'
import { ALL_CONSUMERS, DEMO_TEAMS } from './scenario.js'

export interface DemoBudget {
  readonly name: string
  readonly body: Record<string, unknown>
  /**
   * Pushed budgets: the share of the amount this period's spend stands at when the amount is set
   * (live calls then push it over its thresholds). Others: the share of the amount the forecast
   * for the period end comes to, so a monthly budget looks the same on the 1st as on the 20th.
   */
  readonly targetShare: number
  readonly pushed: boolean
}

/** An amount no demo traffic reaches: a budget holds it from its creation until its real amount is set. */
export const BUDGET_AMOUNT_PARKED_USD = 1_000_000

export const DEMO_BUDGETS: readonly DemoBudget[] = [
  { name: 'Org monthly', targetShare: 0.85, pushed: false, body: { scope: { kind: 'org', id: 'default' }, period: 'monthly', alert_thresholds: [50, 80, 95] } },
  { name: 'Growth daily', targetShare: 0.42, pushed: true, body: { scope: { kind: 'team', id: 'growth' }, period: 'daily', alert_thresholds: [50, 80, 95] } },
  {
    name: 'Support weekly',
    targetShare: 0.6,
    pushed: true,
    body: {
      scope: { kind: 'team', id: 'support' },
      period: 'weekly',
      alert_thresholds: [50, 80],
      threshold_actions: [{ threshold_percent: 80, action: 'degrade' }],
    },
  },
  {
    name: 'Summarize shadow cap',
    targetShare: 0.9,
    pushed: true,
    body: {
      scope: { kind: 'endpoint', id: 'search.summarize' },
      period: 'daily',
      shadow: true,
      alert_thresholds: [80],
      threshold_actions: [{ threshold_percent: 100, action: 'block' }],
    },
  },
  {
    name: 'Research monthly',
    targetShare: 1.2,
    pushed: false,
    body: { scope: { kind: 'team', id: 'research' }, period: 'monthly', alert_thresholds: [50, 80, 95] },
  },
  {
    name: 'Finance quarterly',
    targetShare: 0.5,
    pushed: false,
    body: { scope: { kind: 'team', id: 'finance' }, period: 'quarterly', alert_thresholds: [50, 80, 95] },
  },
]

/** A user wallet in front of its team's, so the cascade has three steps; small, so it runs dry. */
export const USER_WALLET = { user: 'ana', team: 'growth', usd: 2 } as const

export function demoAdminToken(): string {
  return `tg_admin_${randomBytes(32).toString('base64url')}`
}

export function demoConsumerKeys(): Map<string, string> {
  return new Map(ALL_CONSUMERS.map((c) => [c.name, `tg_key_${randomBytes(24).toString('base64url')}`]))
}

/** Hold timeout of the notebook's requests: the longest the gateway allows, so a person has time to act. */
export const HOLD_TIMEOUT_MS = 300_000

/** The environment variable the demo's webhook secret is read from. */
export const DEMO_WEBHOOK_SECRET_ENV = 'TOLLGATE_DEMO_WEBHOOK_SECRET'

export function demoConfigYaml(sqlitePath: string, keys: ReadonlyMap<string, string>, receiverUrl: string): string {
  return stringify({
    version: '1',
    storage: { sqlite: sqlitePath },
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    models: [{ name: 'gpt-4o', degrade_to: 'gpt-4o-mini' }],
    consumer_groups: ALL_CONSUMERS.map((c) => ({
      name: c.name,
      api_key: keys.get(c.name),
      team_id: c.team,
      environment: c.environment,
      ...(c.agent === undefined ? {} : { agent_id: c.agent }),
      ...(c.holds ? { on_insufficient_funds: 'hold', hold_timeout_ms: HOLD_TIMEOUT_MS } : {}),
    })),
    // Two channels delivering to the demo's own receiver (demo-receiver.ts).
    notifications: {
      channels: [
        { id: 'ops-webhook', type: 'webhook', url: `${receiverUrl}/webhook`, secret_ref: { env: DEMO_WEBHOOK_SECRET_ENV } },
        { id: 'finops-slack', type: 'slack', webhook_url: `${receiverUrl}/slack` },
      ],
    },
    // Wallets notify at 50% and 80% of their allocation; nothing blocks before 100%.
    cost_tracking: {
      enabled: true,
      wallet_enforcement: true,
      budget_alerts: [
        { threshold_percent: 50, action: 'notify' },
        { threshold_percent: 80, action: 'notify' },
      ],
    },
  })
}

/** Who hears what: FinOps on Slack for budget news, the ops webhook for blocks, dry wallets and tickets. */
export const DEMO_PREFERENCE = {
  subject: { type: 'role', id: 'admin' },
  types: {
    'budget.threshold': ['finops-slack'],
    'budget.forecast': ['finops-slack'],
    'budget.spike': ['finops-slack', 'ops-webhook'],
    'budget.blocked': ['ops-webhook'],
    'wallet.exhausted': ['ops-webhook'],
    'ticket.created': ['ops-webhook', 'finops-slack'],
    'ticket.resolved': ['ops-webhook'],
  },
} as const

export const TEAM_WALLETS: ReadonlyArray<{ team: string; usd: number }> = DEMO_TEAMS.map((t) => ({ team: t.id, usd: t.walletUsd }))

/** The amount that puts `spendUsd` at `share` of it, in cents, never below a cent. */
export function amountForShare(spendUsd: number, share: number, minimumUsd: number): number {
  if (spendUsd <= 0) return minimumUsd
  return Math.max(0.01, Math.ceil((spendUsd / share) * 100) / 100)
}
