/**
 * `tollgate wallets allocate|list|ledger`: the hard control. Allocating adds funds to a team's,
 * user's or org's wallet; the ledger lists every entry (allocation, reservation, settlement,
 * void, expiry) newest first.
 */
import { Option, type Command } from 'commander'
import { contextOf, withSharedOptions } from '../context.js'
import { UsageError } from '../errors.js'
import { positiveIntFlag, usdFlag } from '../flags.js'
import { renderFields, renderTable, timeText, usdText, type Column } from '../output.js'

export interface WalletView {
  readonly id: string
  readonly scope: string
  readonly allocated_usd: number
  readonly spent_usd: number
  readonly reserved_usd: number
  readonly available_usd: number
  readonly created_at: string | null
}

export interface LedgerEntryView {
  readonly id: string
  readonly kind: string
  readonly amount_usd: number
  readonly reservation_id: string | null
  readonly description: string | null
  readonly at: string | null
}

/** The most ledger entries one call returns (the API's page limit). */
const LEDGER_ENTRIES_MAX = 1000

interface AllocateFlags {
  team?: string
  user?: string
  org?: string
  amount: string
  description?: string
}

export function registerWalletCommands(program: Command): void {
  const wallets = program.command('wallets').description('Wallets: funds a team, user or org can spend (the hard cap)')

  withSharedOptions(wallets.command('allocate'))
    .description('Add funds to a wallet: a team’s, a user’s (with --team: of that team) or the org’s')
    .addOption(new Option('--team <id>', 'the team’s wallet; with --user, the team the user’s wallet belongs to').conflicts(['org']))
    .addOption(new Option('--user <id>', 'the user’s wallet').conflicts(['org']))
    .addOption(new Option('--org <id>', 'the org’s wallet').conflicts(['team', 'user']))
    .addOption(new Option('--amount <usd>', 'USD to add').argParser(usdFlag).makeOptionMandatory())
    .option('--description <text>', 'why, shown in the ledger')
    .action(async (flags: AllocateFlags, command: Command) => {
      const target = walletTarget(flags)
      const ctx = contextOf(command)
      const body = { ...target, amount: flags.amount, ...(flags.description !== undefined && { description: flags.description }) }
      const wallet = await ctx.admin().json<WalletView>('POST', '/v1/wallets/allocate', { body })
      ctx.output.result(wallet, () => `Allocated ${usdText(Number(flags.amount))} USD to ${wallet.scope}\n${walletDetails(wallet)}`)
    })

  withSharedOptions(wallets.command('list'))
    .description('List wallets and their balances')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      const page = await ctx.admin().json<{ data: WalletView[] }>('GET', '/v1/wallets')
      ctx.output.result(page, () => renderTable(page.data, WALLET_COLUMNS, 'No wallets yet. Fund one with: tollgate wallets allocate --team ID --amount USD'))
    })

  withSharedOptions(wallets.command('ledger').argument('<wallet-id>', 'wallet id (wal_…)'))
    .description('A wallet’s ledger entries, newest first')
    .addOption(new Option('--limit <n>', `entries to show (at most ${LEDGER_ENTRIES_MAX})`).argParser(positiveIntFlag).default(100))
    .action(async (walletId: string, flags: { limit: number }, command: Command) => {
      if (flags.limit > LEDGER_ENTRIES_MAX) throw new UsageError(`--limit: at most ${LEDGER_ENTRIES_MAX} entries`)
      const ctx = contextOf(command)
      const page = await ctx.admin().json<{ wallet: WalletView; data: LedgerEntryView[] }>('GET', `/v1/wallets/${encodeURIComponent(walletId)}/ledger`, {
        query: { limit: flags.limit },
      })
      ctx.output.result(page, () => `${walletDetails(page.wallet)}\n\n${renderTable(page.data, ENTRY_COLUMNS, 'No ledger entries.')}`)
    })
}

function walletTarget(flags: AllocateFlags): Record<string, string> {
  if (flags.user !== undefined) return { user_id: flags.user, ...(flags.team !== undefined && { team_id: flags.team }) }
  if (flags.team !== undefined) return { team_id: flags.team }
  if (flags.org !== undefined) return { org_id: flags.org }
  throw new UsageError('wallets allocate: say whose wallet with --team ID, --user ID (optionally with --team) or --org ID')
}

const WALLET_COLUMNS: Column<WalletView>[] = [
  { header: 'ID', value: (w) => w.id },
  { header: 'SCOPE', value: (w) => w.scope },
  { header: 'ALLOCATED USD', value: (w) => usdText(w.allocated_usd), align: 'right' },
  { header: 'SPENT USD', value: (w) => usdText(w.spent_usd), align: 'right' },
  { header: 'RESERVED USD', value: (w) => usdText(w.reserved_usd), align: 'right' },
  { header: 'AVAILABLE USD', value: (w) => usdText(w.available_usd), align: 'right' },
]

const ENTRY_COLUMNS: Column<LedgerEntryView>[] = [
  { header: 'AT', value: (e) => timeText(e.at) },
  { header: 'KIND', value: (e) => e.kind },
  { header: 'AMOUNT USD', value: (e) => usdText(e.amount_usd), align: 'right' },
  { header: 'RESERVATION', value: (e) => e.reservation_id },
  { header: 'DESCRIPTION', value: (e) => e.description },
]

function walletDetails(w: WalletView): string {
  return renderFields([
    ['wallet', `${w.id} (${w.scope})`],
    ['allocated', `${usdText(w.allocated_usd)} USD`],
    ['spent', `${usdText(w.spent_usd)} USD`],
    ['reserved', `${usdText(w.reserved_usd)} USD`],
    ['available', `${usdText(w.available_usd)} USD`],
  ])
}
