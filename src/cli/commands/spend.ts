/**
 * `tollgate spend budget create|list|show|update|delete`: budgets over `/v1/billing/budgets`.
 * With no --scope a new budget covers the caller's whole org, so
 * `tollgate spend budget create --name "Marketing Monthly Cap" --limit 500 --period monthly` works.
 */
import { Option, type Command } from 'commander'
import type { BudgetView } from '../../budgets/budget.js'
import { contextOf, withSharedOptions } from '../context.js'
import { UsageError } from '../errors.js'
import { BUDGET_PERIODS, scopeFlag, thresholdsFlag, timezoneFlag, usdFlag, type ScopeFlag } from '../flags.js'
import { renderFields, renderTable, timeText, usdText, type Column } from '../output.js'

/** A budget as the API shows it: the record plus where it stands this period. */
export interface BudgetWithPosture extends BudgetView {
  readonly posture: {
    readonly period_key: string
    readonly period_start: string
    readonly period_end: string
    readonly spend_usd: number
    readonly reserved_usd: number
    readonly percent: number
    readonly limit_usd: number | null
  }
}

interface BudgetFlags {
  name?: string
  limit?: string
  period?: string
  scope?: ScopeFlag
  team?: string
  timezone?: string
  thresholds?: number[]
  hard?: boolean
}

export function registerSpendCommands(program: Command): void {
  const budget = program
    .command('spend')
    .description('Spend controls')
    .command('budget')
    .description('Budgets: spend limits per period that notify, degrade or block')

  withSharedOptions(budgetFlags(budget.command('create'), 'create'))
    .description('Create a budget (with no --scope it covers your whole org)')
    .action(async (flags: BudgetFlags, command: Command) => {
      const ctx = contextOf(command)
      const created = await ctx.admin().json<BudgetWithPosture>('POST', '/v1/billing/budgets', { body: budgetBody(flags) })
      ctx.output.result(created, () => `Created budget ${created.id}\n${budgetDetails(created)}`)
    })

  withSharedOptions(budget.command('list'))
    .description('List budgets with this period’s spend')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      const page = await ctx.admin().json<{ data: BudgetWithPosture[] }>('GET', '/v1/billing/budgets')
      ctx.output.result(page, () =>
        renderTable(page.data, BUDGET_COLUMNS, 'No budgets yet. Create one with: tollgate spend budget create --name NAME --limit USD --period monthly'),
      )
    })

  withSharedOptions(budget.command('show').argument('<id>', 'budget id (bud_…)'))
    .description('Show one budget and where it stands this period')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      const shown = await ctx.admin().json<BudgetWithPosture>('GET', `/v1/billing/budgets/${encodeURIComponent(id)}`)
      ctx.output.result(shown, () => budgetDetails(shown))
    })

  withSharedOptions(budgetFlags(budget.command('update').argument('<id>', 'budget id (bud_…)'), 'update'))
    .description('Change a budget: only the flags given change')
    .action(async (id: string, flags: BudgetFlags, command: Command) => {
      const ctx = contextOf(command)
      const body = budgetBody(flags)
      if (Object.keys(body).length === 0)
        throw new UsageError(
          'spend budget update: nothing to change; give at least one of --name, --limit, --period, --scope [--team], --timezone, --thresholds, --hard/--no-hard',
        )
      const updated = await ctx.admin().json<BudgetWithPosture>('PATCH', `/v1/billing/budgets/${encodeURIComponent(id)}`, { body })
      ctx.output.result(updated, () => `Updated budget ${updated.id}\n${budgetDetails(updated)}`)
    })

  withSharedOptions(budget.command('delete').argument('<id>', 'budget id (bud_…)'))
    .description('Delete a budget')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      await ctx.admin().json('DELETE', `/v1/billing/budgets/${encodeURIComponent(id)}`)
      ctx.output.result({ id, deleted: true }, () => `Deleted budget ${id}`)
    })
}

/** The flags create and update share; create requires --name, --limit and --period. */
function budgetFlags(command: Command, mode: 'create' | 'update'): Command {
  const required = mode === 'create'
  return command
    .addOption(new Option('--name <name>', 'budget name').makeOptionMandatory(required))
    .addOption(new Option('--limit <usd>', 'amount per period, in USD').argParser(usdFlag).makeOptionMandatory(required))
    .addOption(new Option('--period <period>', 'period').choices(BUDGET_PERIODS).makeOptionMandatory(required))
    .addOption(new Option('--scope <kind:id>', 'what the budget covers, e.g. team:marketing (default: your org)').argParser(scopeFlag))
    .addOption(new Option('--team <id>', 'with a user, agent, key, endpoint, model or provider --scope: count only that team’s calls'))
    .addOption(new Option('--timezone <tz>', 'IANA time zone the period starts in (default UTC)').argParser(timezoneFlag))
    .addOption(new Option('--thresholds <percents>', 'alert thresholds, e.g. 50,80,95 (the default)').argParser(thresholdsFlag))
    .addOption(new Option('--hard', 'refuse calls that would take spend past the limit'))
    .addOption(new Option('--no-hard', 'notify only (the default for a new budget)'))
}

/** Flags → the API body; only the flags given appear (PATCH changes nothing else). */
export function budgetBody(flags: BudgetFlags): Record<string, unknown> {
  if (flags.team !== undefined && (flags.scope === undefined || flags.scope.kind === 'org' || flags.scope.kind === 'team')) {
    throw new UsageError('--team narrows a user, agent, key, endpoint, model or provider --scope to one team; for a team’s own budget use --scope team:ID')
  }
  return {
    ...(flags.name !== undefined && { name: flags.name }),
    ...(flags.scope !== undefined && { scope: { kind: flags.scope.kind, id: flags.scope.id, ...(flags.team !== undefined && { team_id: flags.team }) } }),
    ...(flags.period !== undefined && { period: flags.period }),
    ...(flags.timezone !== undefined && { timezone: flags.timezone }),
    ...(flags.limit !== undefined && { amount_usd: flags.limit }),
    ...(flags.thresholds !== undefined && { alert_thresholds: flags.thresholds }),
    ...(flags.hard !== undefined && { hard_limit: flags.hard }),
  }
}

const scopeText = (b: BudgetView) =>
  `${b.scope.kind}:${b.scope.id}${b.scope.environment === undefined ? '' : `@${b.scope.environment}`}${b.scope.team_id === undefined ? '' : ` (team ${b.scope.team_id})`}`

const BUDGET_COLUMNS: Column<BudgetWithPosture>[] = [
  { header: 'ID', value: (b) => b.id },
  { header: 'NAME', value: (b) => b.name },
  { header: 'SCOPE', value: scopeText },
  { header: 'PERIOD', value: (b) => b.period },
  { header: 'LIMIT USD', value: (b) => usdText(b.amount_usd), align: 'right' },
  { header: 'SPENT USD', value: (b) => usdText(b.posture.spend_usd), align: 'right' },
  { header: 'USED', value: (b) => `${b.posture.percent}%`, align: 'right' },
  { header: 'HARD', value: (b) => (b.hard_limit ? 'yes' : 'no') },
]

function budgetDetails(b: BudgetWithPosture): string {
  return renderFields([
    ['id', b.id],
    ['name', b.name],
    ['scope', scopeText(b)],
    ['period', `${b.period} (${b.timezone})`],
    ['limit', `${usdText(b.amount_usd)} USD${b.hard_limit ? ', hard: calls past it are refused' : ''}${b.shadow ? ' (shadow)' : ''}`],
    ['thresholds', b.alert_thresholds.map((t) => `${t}%`).join(', ')],
    ['this period', `${timeText(b.posture.period_start)} → ${timeText(b.posture.period_end)}`],
    ['spent', `${usdText(b.posture.spend_usd)} USD (${b.posture.percent}%), ${usdText(b.posture.reserved_usd)} USD reserved`],
  ])
}
