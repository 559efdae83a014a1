/**
 * `tollgate tickets list|approve|deny`: cost tickets, opened when a call was refused for want of
 * funds. Approving tops the ticket's wallet up (by --amount, or by the refused call's estimate).
 */
import { Option, type Command } from 'commander'
import { contextOf, withSharedOptions } from '../context.js'
import { usdFlag } from '../flags.js'
import { renderFields, renderTable, timeText, usdText, type Column } from '../output.js'

export interface TicketView {
  readonly id: string
  readonly status: string
  readonly reason: string
  readonly scope: string
  readonly team_id: string | null
  readonly request_id: string
  readonly consumer: string
  readonly model: string
  readonly estimate_usd: number | null
  readonly grant_usd: number | null
  readonly note: string | null
  readonly resolved_by: string | null
  readonly created_at: string | null
  readonly expires_at: string | null
  readonly resolved_at: string | null
  /** Refused calls joined to this ticket while it was pending. */
  readonly refused_count?: number
}

const TICKET_STATUSES = ['pending', 'approved', 'denied', 'expired'] as const

export function registerTicketCommands(program: Command): void {
  const tickets = program.command('tickets').description('Cost tickets: refused calls waiting for an owner to add funds or say no')

  withSharedOptions(tickets.command('list'))
    .description('List cost tickets, newest first')
    .addOption(new Option('--status <status>', 'only tickets in this state').choices(TICKET_STATUSES))
    .action(async (flags: { status?: string }, command: Command) => {
      const ctx = contextOf(command)
      const page = await ctx.admin().json<{ data: TicketView[] }>('GET', '/v1/cost-tickets', { query: { status: flags.status } })
      ctx.output.result(page, () =>
        renderTable(page.data, TICKET_COLUMNS, flags.status === undefined ? 'No cost tickets.' : `No ${flags.status} cost tickets.`),
      )
    })

  withSharedOptions(tickets.command('approve').argument('<id>', 'ticket id (ct_…)'))
    .description('Approve a ticket: top its wallet up by --amount, or by the refused call’s estimate')
    .addOption(new Option('--amount <usd>', 'USD to add to the wallet (default: the refused call’s estimate)').argParser(usdFlag))
    .option('--note <text>', 'why, kept on the ticket')
    .action(async (id: string, flags: { amount?: string; note?: string }, command: Command) => {
      const ctx = contextOf(command)
      const body = { ...(flags.amount !== undefined && { amount: flags.amount }), ...(flags.note !== undefined && { note: flags.note }) }
      const ticket = await ctx.admin().json<TicketView>('POST', `/v1/cost-tickets/${encodeURIComponent(id)}/approve`, { body })
      ctx.output.result(ticket, () => `Approved ${ticket.id}: ${usdText(ticket.grant_usd)} USD added to ${ticket.scope}\n${ticketDetails(ticket)}`)
    })

  withSharedOptions(tickets.command('deny').argument('<id>', 'ticket id (ct_…)'))
    .description('Deny a ticket: no funds are added')
    .option('--note <text>', 'why, kept on the ticket')
    .action(async (id: string, flags: { note?: string }, command: Command) => {
      const ctx = contextOf(command)
      const body = flags.note === undefined ? {} : { note: flags.note }
      const ticket = await ctx.admin().json<TicketView>('POST', `/v1/cost-tickets/${encodeURIComponent(id)}/deny`, { body })
      ctx.output.result(ticket, () => `Denied ${ticket.id}\n${ticketDetails(ticket)}`)
    })
}

const TICKET_COLUMNS: Column<TicketView>[] = [
  { header: 'ID', value: (t) => t.id },
  { header: 'STATUS', value: (t) => t.status },
  { header: 'SCOPE', value: (t) => t.scope },
  { header: 'CONSUMER', value: (t) => t.consumer },
  { header: 'MODEL', value: (t) => t.model },
  { header: 'ESTIMATE USD', value: (t) => usdText(t.estimate_usd), align: 'right' },
  { header: 'GRANTED USD', value: (t) => (t.grant_usd === null ? '-' : usdText(t.grant_usd)), align: 'right' },
  { header: 'REFUSED', value: (t) => t.refused_count ?? 1, align: 'right' },
  { header: 'CREATED', value: (t) => timeText(t.created_at) },
]

function ticketDetails(t: TicketView): string {
  return renderFields([
    ['ticket', t.id],
    ['status', t.status],
    ['scope', t.scope],
    [
      'refused call',
      `${t.request_id} (${t.consumer}, ${t.model}, estimate ${usdText(t.estimate_usd)} USD)${(t.refused_count ?? 1) > 1 ? `, ${t.refused_count} refusals` : ''}`,
    ],
    ['granted', t.grant_usd === null ? '-' : `${usdText(t.grant_usd)} USD`],
    ['note', t.note],
    ['resolved', t.resolved_at === null ? '-' : `${timeText(t.resolved_at)} by ${t.resolved_by ?? '-'}`],
  ])
}
