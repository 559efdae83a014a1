/**
 * Shared fixtures for the hard-caps tests: a priced model with round numbers, a config
 * builder for wallets / hold consumers, and small readers for wallets and ledgers over HTTP.
 *
 * The `metered` model costs $0.001 per input and per output token and has a 100-token output
 * cap, so a short chat reserves about $0.11 and the mock's 40-word reply settles at about $0.04.
 */
import { stringify } from 'yaml'

export const METERED = 'metered'
export const METERED_OUTPUT_TOKENS_MAX = 100
/** USD per token of the metered model, input and output alike. */
export const METERED_USD_PER_TOKEN = 0.001

/** The variable a spawned gateway reads the mock upstream's key from. */
export const MOCK_KEY_ENV = 'HARD_CAPS_MOCK_KEY'

export interface CapsConsumer {
  readonly name: string
  readonly apiKey: string
  readonly teamId: string
  readonly userId?: string
  readonly hold?: { readonly timeoutMs: number }
}

export interface CapsConfigSpec {
  readonly consumers: readonly CapsConsumer[]
  readonly walletEnforcement?: boolean
  /** Set to put everything on one SQLite file (multi-process tests). */
  readonly sqlitePath?: string
  /** Set to point the mock target at an upstream started by the test. */
  readonly mockBaseUrl?: string
  readonly targetTimeoutMs?: number
  readonly reservations?: { readonly ttlMs: number; readonly sweepIntervalMs: number }
}

/** Gateway YAML: one mock target, the `metered` model, wallets enforced unless told otherwise. */
export function capsConfig(spec: CapsConfigSpec): string {
  return stringify({
    version: '1',
    ...(spec.sqlitePath === undefined ? {} : { storage: { sqlite: spec.sqlitePath } }),
    providers: {
      targets: [
        {
          id: 'mock',
          // With a base URL the gateway talks to the test's mock upstream over loopback.
          ...(spec.mockBaseUrl === undefined
            ? { provider: 'mock' }
            : { provider: 'openai-compatible', base_url: spec.mockBaseUrl, secret_key_ref: { env: MOCK_KEY_ENV } }),
          ...(spec.targetTimeoutMs === undefined ? {} : { timeout_ms: spec.targetTimeoutMs }),
        },
      ],
    },
    consumer_groups: spec.consumers.map((c) => ({
      name: c.name,
      api_key: c.apiKey,
      wallet_team_id: c.teamId,
      ...(c.userId === undefined ? {} : { user_id: c.userId }),
      ...(c.hold === undefined ? {} : { on_insufficient_funds: 'hold', hold_timeout_ms: c.hold.timeoutMs }),
    })),
    cost_tracking: {
      enabled: true,
      wallet_enforcement: spec.walletEnforcement ?? true,
      budget_alerts: [
        { threshold_percent: 50, action: 'notify' },
        { threshold_percent: 100, action: 'block' },
      ],
    },
    models: [
      {
        name: METERED,
        target: 'mock',
        upstream_model: 'gpt-4o-mini',
        pricing: { input_mtok: METERED_USD_PER_TOKEN * 1_000_000, output_mtok: METERED_USD_PER_TOKEN * 1_000_000 },
        max_output_tokens: METERED_OUTPUT_TOKENS_MAX,
      },
    ],
    ...(spec.reservations === undefined ? {} : { reservations: { ttl_ms: spec.reservations.ttlMs, sweep_interval_ms: spec.reservations.sweepIntervalMs } }),
  })
}

/** A wallet as `GET /v1/wallets` shows it (the fields these tests read). */
export interface WalletView {
  readonly id: string
  readonly scope: string
  readonly allocated_micros: number
  readonly spent_micros: number
  readonly reserved_micros: number
  readonly available_micros: number
}

export interface LedgerEntryView {
  readonly kind: 'allocation' | 'reservation' | 'settlement' | 'void' | 'expiry' | 'spend'
  readonly amount_micros: number
  readonly reservation_id: string | null
}

export type AdminCall = (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<{ status: number; body: any }>

export async function walletOf(admin: AdminCall, scope: string): Promise<WalletView | undefined> {
  const { status, body } = await admin('GET', '/v1/wallets')
  if (status !== 200) throw new Error(`GET /v1/wallets: ${status} ${JSON.stringify(body)}`)
  return (body.data as WalletView[]).find((w) => w.scope === scope)
}

/** Oldest first (the API pages newest first). */
export async function ledgerOf(admin: AdminCall, walletId: string): Promise<LedgerEntryView[]> {
  const { status, body } = await admin('GET', `/v1/wallets/${walletId}/ledger?limit=1000`)
  if (status !== 200) throw new Error(`GET ledger: ${status} ${JSON.stringify(body)}`)
  return (body.data as LedgerEntryView[]).slice().reverse()
}

/** The invariant every test ends on: the signed ledger entries add up to what is available. */
export function ledgerSum(entries: readonly LedgerEntryView[]): number {
  return entries.reduce((sum, e) => sum + e.amount_micros, 0)
}

export function usdToMicros(usd: string | null): number {
  if (usd === null) throw new Error('missing USD header')
  return Math.round(Number(usd) * 1_000_000)
}

export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

export function chatBody(content: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: METERED, messages: [{ role: 'user', content }], ...extra })
}

/** Runs `run` over `items` with at most `limit` in flight; results in input order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, run: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await run(items[index]!, index)
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  return results
}

/** The gateway's `tollgate_reservations_pending` gauge, read from its /metrics. */
export async function pendingReservations(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  const match = /^tollgate_reservations_pending(?:\{[^}]*\})? (\d+)/m.exec(text)
  if (!match) throw new Error('tollgate_reservations_pending missing from /metrics')
  return Number(match[1])
}
