/**
 * `tollgate tokens create|list|revoke`: admin tokens, what people and scripts send to the admin
 * API. A token is printed once, by `tokens create`; lists show its prefix only.
 */
import { Option, type Command } from 'commander'
import { contextOf, withSharedOptions } from '../context.js'
import { UsageError } from '../errors.js'
import { renderFields, renderTable, timeText, type Column } from '../output.js'

export interface TokenView {
  readonly id: string
  readonly name: string
  readonly prefix: string
  readonly role: string
  readonly team_id: string | null
  readonly created_at: string | null
  readonly revoked_at: string | null
}

const ROLES = ['admin', 'team_admin', 'viewer'] as const

export function registerTokenCommands(program: Command): void {
  const tokens = program.command('tokens').description('Admin tokens: what people and scripts send to the admin API')

  withSharedOptions(tokens.command('create'))
    .description('Create an admin token; it is printed once')
    .requiredOption('--name <name>', 'who or what it is for')
    .addOption(new Option('--role <role>', 'admin: the whole org; team_admin: one team; viewer: read-only').choices(ROLES).makeOptionMandatory())
    .option('--team <id>', 'the team a team_admin manages')
    .action(async (flags: { name: string; role: string; team?: string }, command: Command) => {
      // Without a team a team_admin would be scoped to nothing in particular: refuse before sending.
      if (flags.role === 'team_admin' && flags.team === undefined) throw new UsageError('tokens create: a team_admin token needs --team ID')
      const ctx = contextOf(command)
      const body = { name: flags.name, role: flags.role, ...(flags.team !== undefined && { team_id: flags.team }) }
      const created = await ctx
        .admin()
        .json<{ id: string; token: string; name?: string; role: string; team_id: string | null }>('POST', '/v1/admin-tokens', { body })
      ctx.output.result(created, () =>
        [
          `Created ${created.role} token ${created.id}${created.team_id === null ? '' : ` for team ${created.team_id}`}`,
          `token: ${created.token}`,
          'Store it now: it is not shown again. Use it with --token or TOLLGATE_TOKEN.',
        ].join('\n'),
      )
    })

  withSharedOptions(tokens.command('list'))
    .description('List admin tokens (prefixes only)')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      const page = await ctx.admin().json<{ data: TokenView[] }>('GET', '/v1/admin-tokens')
      ctx.output.result(page, () => renderTable(page.data, TOKEN_COLUMNS, 'No admin tokens.'))
    })

  withSharedOptions(tokens.command('revoke').argument('<id>', 'token id'))
    .description('Revoke an admin token: requests with it are refused from now on')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      const revoked = await ctx.admin().json<TokenView>('DELETE', `/v1/admin-tokens/${encodeURIComponent(id)}`)
      ctx.output.result(revoked, () =>
        renderFields([
          ['revoked', `${revoked.name} (${revoked.id}, ${revoked.prefix}…)`],
          ['role', revoked.role],
          ['at', timeText(revoked.revoked_at)],
        ]),
      )
    })
}

const TOKEN_COLUMNS: Column<TokenView>[] = [
  { header: 'ID', value: (t) => t.id },
  { header: 'NAME', value: (t) => t.name },
  { header: 'PREFIX', value: (t) => `${t.prefix}…` },
  { header: 'ROLE', value: (t) => t.role },
  { header: 'TEAM', value: (t) => t.team_id },
  { header: 'CREATED', value: (t) => timeText(t.created_at) },
  { header: 'REVOKED', value: (t) => timeText(t.revoked_at) },
]
