/**
 * `tollgate replay --from --to --policy FILE`: what a proposed policy would have done to the
 * recorded usage of a window (POST /v1/replays, then GET /v1/replays/{id} until it is done, with
 * a progress bar on stderr). The file has the config's `budgets`, `cost_tracking` and
 * `endpoint_tiers` sections plus `wallets`; the gateway validates it and names any bad field.
 * Table mode prints the totals, one row per budget or wallet, and when thresholds would have
 * fired; `--json` prints the job with its whole report.
 */
import { readFile, stat } from 'node:fs/promises'
import { Option, type Command } from 'commander'
import { contextOf, withSharedOptions } from '../context.js'
import { UsageError } from '../errors.js'
import { instantFlag } from '../flags.js'
import { plural, renderFields, renderTable, startProgress, timeText, usdText } from '../output.js'

/** How often the job is asked for its progress. */
export const REPLAY_POLL_MS = 250
/** The gateway's limit on a policy file. */
const POLICY_BYTES_MAX = 1_000_000

interface Stat {
  readonly count: number
  readonly first_at: string | null
  readonly last_at: string | null
}

interface ScopeRow {
  readonly kind: 'budget' | 'wallet'
  readonly scope: string
  readonly name: string | null
  readonly blocked: Stat
  readonly degraded: Stat
  readonly would_block: Stat
  readonly critical_refusals: Stat
  readonly avoided_micros: number
  /** The first firings only (the gateway lists at most 100 per scope); `thresholds_total` counts them all. */
  readonly thresholds: ReadonlyArray<{ threshold_percent: number | null; kind: string; action: string | null; period: string | null; at: string }>
  readonly thresholds_total: number
}

export interface ReplayJobView {
  readonly id: string
  readonly status: 'running' | 'done' | 'failed'
  readonly from: string
  readonly to: string
  readonly progress: { readonly processed: number; readonly total: number }
  readonly error?: string
  readonly report?: {
    readonly totals: {
      readonly events: number
      readonly baseline_cost_micros: number
      readonly replayed_cost_micros: number
      readonly avoided_micros: number
      readonly changed_decisions: number
      readonly estimated_costs: number
      readonly critical_refusals: number
      readonly decisions: Record<string, number>
    }
    readonly scopes: readonly ScopeRow[]
  }
}

interface ReplayFlags {
  from: string
  to: string
  policy: string
  dataMode?: string
}

export function registerReplayCommand(program: Command): void {
  withSharedOptions(program.command('replay'))
    .description('Replay the recorded usage of a window through a proposed policy: what it would have blocked, degraded and saved')
    .addOption(new Option('--from <date>', 'start (ISO-8601 or YYYY-MM-DD, UTC)').argParser(instantFlag('start')).makeOptionMandatory())
    .addOption(new Option('--to <date>', 'end, exclusive (a bare date includes that day)').argParser(instantFlag('end')).makeOptionMandatory())
    .requiredOption('--policy <file>', 'policy file (YAML or JSON): budgets, cost_tracking, endpoint_tiers, wallets')
    .addOption(new Option('--data-mode <mode>', "which events: real traffic (default), the demo's, or all").choices(['real', 'demo', 'all']))
    .action(async (flags: ReplayFlags, command: Command) => {
      const ctx = contextOf(command)
      const policy = await readPolicy(flags.policy)
      const client = ctx.admin()
      let job = await client.json<ReplayJobView>('POST', '/v1/replays', {
        body: { from: flags.from, to: flags.to, policy, ...(flags.dataMode && { data_mode: flags.dataMode }) },
      })
      // The total is counted when the job starts; events arriving meanwhile are replayed too, so the bar stops at its end.
      const total = Math.max(1, job.progress.total)
      const progress = startProgress('replay', total)
      try {
        while (job.status === 'running') {
          await new Promise((resolve) => setTimeout(resolve, REPLAY_POLL_MS))
          job = await client.json<ReplayJobView>('GET', `/v1/replays/${encodeURIComponent(job.id)}`)
          progress.update(Math.min(job.progress.processed, total), `${job.progress.processed}/${job.progress.total} events`)
        }
      } finally {
        progress.stop()
      }
      if (job.status === 'failed') throw new UsageError(`replay ${job.id} failed: ${job.error ?? 'see the gateway log'}`)
      ctx.output.result(job, () => renderReplay(job))
    })
}

async function readPolicy(file: string): Promise<string> {
  try {
    const info = await stat(file)
    if (!info.isFile()) throw new UsageError(`--policy ${file}: not a file`)
    if (info.size > POLICY_BYTES_MAX) throw new UsageError(`--policy ${file}: larger than ${POLICY_BYTES_MAX} bytes`)
    return await readFile(file, 'utf8')
  } catch (error) {
    if (error instanceof UsageError) throw error
    throw new UsageError(`--policy: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

const usdOfMicros = (micros: number): string => usdText(micros / 1e6)

export function renderReplay(job: ReplayJobView): string {
  const report = job.report!
  const t = report.totals
  const decisions = Object.entries(t.decisions)
    .map(([decision, count]) => `${decision} ${count}`)
    .join(', ')
  const lines = [
    renderFields([
      ['Window', `${timeText(job.from)} → ${timeText(job.to)}`],
      ['Events', `${t.events} (${decisions || 'none'})`],
      ['Spend with no policy', `$${usdOfMicros(t.baseline_cost_micros)}`],
      ['Spend under the policy', `$${usdOfMicros(t.replayed_cost_micros)}`],
      ['Spend avoided', `$${usdOfMicros(t.avoided_micros)}`],
      ['Decisions that differ', `${t.changed_decisions} from what was recorded`],
      ['Critical refusals', t.critical_refusals],
    ]),
    '',
    renderTable(
      report.scopes,
      [
        { header: 'SCOPE', value: (s) => `${s.kind} ${s.scope}` },
        { header: 'NAME', value: (s) => s.name },
        { header: 'BLOCKED', value: (s) => s.blocked.count, align: 'right' },
        { header: 'FIRST BLOCKED', value: (s) => timeText(s.blocked.first_at) },
        { header: 'DEGRADED', value: (s) => s.degraded.count, align: 'right' },
        { header: 'WOULD_BLOCK', value: (s) => s.would_block.count, align: 'right' },
        { header: 'CRITICAL', value: (s) => s.critical_refusals.count, align: 'right' },
        { header: 'AVOIDED USD', value: (s) => usdOfMicros(s.avoided_micros), align: 'right' },
      ],
      'The policy has no budgets or wallets.',
    ),
  ]
  const fired = report.scopes.flatMap((s) => s.thresholds.map((f) => ({ ...f, scope: s.name ?? s.scope })))
  const firedTotal = report.scopes.reduce((n, s) => n + s.thresholds_total, 0)
  if (fired.length > 0) {
    const listed = fired.length < firedTotal ? `; the first ${fired.length} listed, --json counts each threshold` : ''
    lines.push('', `Thresholds that would have fired (${plural(firedTotal, 'firing')}${listed}):`)
    lines.push(
      renderTable(
        fired,
        [
          { header: 'SCOPE', value: (f) => f.scope },
          { header: 'AT', value: (f) => timeText(f.at) },
          { header: 'THRESHOLD', value: (f) => (f.kind === 'blocked' ? 'first refusal' : `${f.threshold_percent}%`) },
          { header: 'ACTION', value: (f) => f.action },
          { header: 'PERIOD', value: (f) => f.period },
        ],
        '',
      ),
    )
  }
  if (t.estimated_costs > 0)
    lines.push('', `${plural(t.estimated_costs, 'event')} had been refused when recorded; their cost is estimated from the same key's last call of that model.`)
  return lines.join('\n')
}
