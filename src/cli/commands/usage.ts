/**
 * `tollgate usage` (totals, groups and a time series from GET /v1/usage) and `tollgate usage top`
 * (the biggest spenders by one dimension, GET /v1/usage/top). Ranges are half-open [from, to);
 * a bare date as --to means through the end of that day.
 */
import { Option, type Command } from 'commander'
import { USAGE_GROUP_BY } from '../../usage/types.js'
import { contextOf, withSharedOptions } from '../context.js'
import { UsageError } from '../errors.js'
import { instantFlag, listFlag, positiveIntFlag } from '../flags.js'
import { plural, renderTable, timeText, usdText, type Column } from '../output.js'

interface Totals {
  readonly requests: number
  readonly cost_usd: number
  readonly input_tokens: number
  readonly output_tokens: number
}

export interface UsageReport {
  readonly from: string
  readonly to: string
  readonly bucket: string
  readonly group_by: string[]
  readonly totals: Totals
  readonly groups: (Totals & { key: Record<string, string | null> })[]
  readonly series: (Totals & { bucket_start: string; key: Record<string, string | null> })[]
}

export interface TopReport {
  readonly from: string
  readonly to: string
  readonly by: string
  readonly data: (Totals & Record<string, unknown>)[]
}

const TOP_DIMENSIONS = ['endpoint', 'user', 'prompt_version', 'model', 'team'] as const
const BUCKETS = ['hour', 'day'] as const
/** The API's bound on `usage top --limit`. */
const TOP_LIMIT_MAX = 100

interface UsageFlags {
  by?: string[]
  from?: string
  to?: string
  bucket?: string
  environment?: string
}

export function registerUsageCommands(program: Command): void {
  const usage = withSharedOptions(program.command('usage'))
    .description('Spend and tokens, grouped by any attribution dimension (default: the last 7 days)')
    .addOption(new Option('--by <dims>', `group by, comma-separated: ${USAGE_GROUP_BY.join(', ')}`).argParser(listFlag(USAGE_GROUP_BY)))
    .addOption(new Option('--from <date>', 'start (ISO-8601 or YYYY-MM-DD, UTC)').argParser(instantFlag('start')))
    .addOption(new Option('--to <date>', 'end, exclusive (a bare date includes that day)').argParser(instantFlag('end')))
    .addOption(new Option('--bucket <size>', 'also show a time series in buckets of this size').choices(BUCKETS))
    .option('--environment <env>', 'only calls from this environment (e.g. prod)')
    .action(async (flags: UsageFlags, command: Command) => {
      const ctx = contextOf(command)
      const report = await ctx.admin().json<UsageReport>('GET', '/v1/usage', {
        query: { group_by: flags.by?.join(','), from: flags.from, to: flags.to, bucket: flags.bucket, environment: flags.environment },
      })
      ctx.output.result(report, () => renderUsage(report, flags.bucket !== undefined))
    })

  withSharedOptions(usage.command('top'))
    .description('The biggest spenders by one dimension')
    .addOption(new Option('--by <dim>', 'rank by').choices(TOP_DIMENSIONS).makeOptionMandatory())
    .addOption(new Option('--limit <n>', `rows to show (at most ${TOP_LIMIT_MAX})`).argParser(positiveIntFlag))
    .addOption(new Option('--from <date>', 'start (ISO-8601 or YYYY-MM-DD, UTC)').argParser(instantFlag('start')))
    .addOption(new Option('--to <date>', 'end, exclusive (a bare date includes that day)').argParser(instantFlag('end')))
    .action(async (flags: { by: string; limit?: number; from?: string; to?: string }, command: Command) => {
      if (flags.limit !== undefined && flags.limit > TOP_LIMIT_MAX) throw new UsageError(`--limit: at most ${TOP_LIMIT_MAX} rows`)
      const ctx = contextOf(command)
      const report = await ctx.admin().json<TopReport>('GET', '/v1/usage/top', { query: { by: flags.by, limit: flags.limit, from: flags.from, to: flags.to } })
      ctx.output.result(report, () => renderTop(report))
    })
}

function renderUsage(report: UsageReport, withSeries: boolean): string {
  const lines = [
    `Usage ${timeText(report.from)} → ${timeText(report.to)}`,
    `Total: ${plural(report.totals.requests, 'request')}, ${usdText(report.totals.cost_usd)} USD, ${report.totals.input_tokens} input + ${report.totals.output_tokens} output tokens`,
  ]
  if (report.group_by.length > 0) {
    const keyColumns = report.group_by.map(
      (dim): Column<UsageReport['groups'][number]> => ({ header: dim.toUpperCase(), value: (g) => g.key[dim] ?? '(none)' }),
    )
    lines.push('', renderTable(report.groups, [...keyColumns, ...totalsColumns()], 'No usage in this range.'))
  }
  if (withSeries) {
    const keyColumns = report.group_by.map(
      (dim): Column<UsageReport['series'][number]> => ({ header: dim.toUpperCase(), value: (p) => p.key[dim] ?? '(none)' }),
    )
    const bucket: Column<UsageReport['series'][number]> = { header: report.bucket.toUpperCase(), value: (p) => timeText(p.bucket_start) }
    lines.push('', renderTable(report.series, [bucket, ...keyColumns, ...totalsColumns()], 'No usage in this range.'))
  }
  return lines.join('\n')
}

function renderTop(report: TopReport): string {
  const rows = report.data.map((row, i) => ({ ...row, rank: i + 1 }))
  const keyOf = (row: Record<string, unknown>) => row[report.by]
  const columns: Column<(typeof rows)[number]>[] = [
    { header: '#', value: (r) => r.rank, align: 'right' },
    { header: report.by.toUpperCase(), value: (r) => (keyOf(r) === null || keyOf(r) === undefined ? '(none)' : String(keyOf(r))) },
    ...totalsColumns(),
  ]
  return `Top ${report.by} ${timeText(report.from)} → ${timeText(report.to)}\n${renderTable(rows, columns, 'No usage in this range.')}`
}

function totalsColumns<Row extends Totals>(): Column<Row>[] {
  return [
    { header: 'REQUESTS', value: (r) => r.requests, align: 'right' },
    { header: 'COST USD', value: (r) => usdText(r.cost_usd), align: 'right' },
    { header: 'INPUT TOKENS', value: (r) => r.input_tokens, align: 'right' },
    { header: 'OUTPUT TOKENS', value: (r) => r.output_tokens, align: 'right' },
  ]
}
