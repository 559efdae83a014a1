/**
 * The gateway under test: a config written to a temp dir, `node dist/cli/main.js serve` as a
 * child process, and (for the enforced modes) a large wallet and a hard monthly budget for the
 * bench team, so every call reserves against both.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnChild, type Child } from './procs.js'

/** `plain`: metering only; `enforced`: wallet + hard budget; each on SQLite, or on Redis + PostgreSQL (`postgres-…`). */
export type GatewayMode = 'plain' | 'enforced' | 'postgres-plain' | 'postgres'

export const benchTeam = 'bench'
export const benchConsumerKey = 'tg-bench-consumer-key-0123456789'
const adminToken = 'tg-bench-admin-token-0123456789'
const upstreamKeyEnv = 'TOLLGATE_BENCH_UPSTREAM_KEY'
const walletUsd = 1_000_000
const allocateTimeoutMs = 10_000
const cliPath = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))

export interface GatewayOptions {
  readonly mode: GatewayMode
  readonly mockUrl: string
  readonly dir: string
  readonly postgresUrl?: string
  readonly redisUrl?: string
  /** CPUs the process is pinned to (taskset), e.g. `'0'`; unpinned when undefined. */
  readonly cpus?: string | undefined
  /** Extra node flags, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[]
  /** Names this process's config file and log prefix apart when several run in one mode (the scale section). */
  readonly instance?: string
  /** Extra environment of the process, e.g. `TOLLGATE_REDIS_PREFIX`. */
  readonly env?: Readonly<Record<string, string>>
  /** The gateway's built entry point; default this checkout's `dist/cli/main.js` (`--ab` runs another build). */
  readonly cliPath?: string
  /** Allocate the bench wallet through this process. Default: in every mode but `plain`; several processes sharing a wallet allocate it once. */
  readonly allocateWallet?: boolean
}

export interface Gateway {
  readonly child: Child
  readonly url: string
}

/**
 * The `mock` target is declared as an OpenAI target with a base URL, so the gateway sends its
 * calls to the out-of-process mock (a `provider: mock` target would start one in-process) and
 * prices them from the catalogue as gpt-4o-mini.
 */
export function gatewayConfigYaml(options: GatewayOptions): string {
  const storage = options.mode.startsWith('postgres')
    ? `storage:\n  postgres: ${JSON.stringify(options.postgresUrl)}\n  redis: ${JSON.stringify(options.redisUrl)}\n`
    : `storage:\n  sqlite: ${JSON.stringify(join(options.dir, `tollgate-${options.mode}.db`))}\n`
  return [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    storage.trimEnd(),
    'providers:',
    '  targets:',
    '    - id: mock',
    '      provider: openai',
    `      base_url: ${options.mockUrl}/v1`,
    `      secret_key_ref: {env: ${upstreamKeyEnv}}`,
    'consumer_groups:',
    '  - name: bench',
    `    api_key: ${benchConsumerKey}`,
    `    team_id: ${benchTeam}`,
    'cost_tracking:',
    `  wallet_enforcement: ${enforces(options.mode)}`,
    // Enforced modes also reserve against a hard team budget: the cascade a real install runs.
    ...(enforces(options.mode) ? hardBudgetYaml : []),
    '',
  ].join('\n')
}

export const enforces = (mode: GatewayMode): boolean => mode === 'enforced' || mode === 'postgres'

/** A monthly hard budget for the bench team, far above what a run spends. */
const hardBudgetYaml = [
  'budgets:',
  '  - name: bench hard cap',
  `    scope: {kind: team, id: ${benchTeam}}`,
  '    period: monthly',
  '    amount_usd: 1000000',
  '    hard_limit: true',
]

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const name = options.instance === undefined ? options.mode : `${options.mode}-${options.instance}`
  const configPath = join(options.dir, `tollgate-${name}.yaml`)
  writeFileSync(configPath, gatewayConfigYaml(options))
  const env = {
    ...process.env,
    TOLLGATE_ADMIN_TOKEN: adminToken,
    [upstreamKeyEnv]: 'sk-bench',
    TOLLGATE_LOG_LEVEL: process.env.TOLLGATE_LOG_LEVEL ?? 'info',
    ...options.env,
  }
  const args = [...(options.nodeFlags ?? []), options.cliPath ?? cliPath, 'serve', '--config', configPath, '--host', '127.0.0.1', '--port', '0']
  const child = spawnChild(`gateway (${name})`, args, env, options.cpus)
  try {
    const url = await child.waitFor(/listening on (http:\/\/[^\s]+)/)
    if (options.allocateWallet ?? enforces(options.mode)) await allocateBenchWallet(url)
    return { child, url }
  } catch (error) {
    await child.stop()
    throw error
  }
}

/** Adds `walletUsd` to the bench team's wallet, through the gateway at `url` with the admin token. */
export async function allocateBenchWallet(url: string): Promise<void> {
  const response = await fetch(`${url}/v1/wallets/allocate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ team_id: benchTeam, amount: walletUsd }),
    signal: AbortSignal.timeout(allocateTimeoutMs),
  })
  if (response.status !== 201) throw new Error(`allocating the bench wallet: HTTP ${response.status} ${await response.text()}`)
}
