/**
 * `tollgate keys create|list|revoke`: consumer keys, what applications send to the proxy. A key
 * is printed once, by `keys create`; lists show its prefix only.
 */
import type { Command } from 'commander'
import { contextOf, withSharedOptions } from '../context.js'
import { renderTable, timeText, type Column } from '../output.js'

export interface KeyView {
  readonly id: string
  readonly name: string
  readonly prefix: string
  readonly team_id: string | null
  readonly user_id: string | null
  readonly agent_id: string | null
  readonly environment: string
  readonly endpoint_tag: string | null
  readonly created_at: string | null
  readonly revoked_at: string | null
}

interface KeyFlags {
  name: string
  team?: string
  user?: string
  agent?: string
  environment?: string
  endpoint?: string
  hold?: boolean
}

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('Consumer keys: what applications send to the proxy')

  withSharedOptions(keys.command('create'))
    .description('Create a consumer key; it is printed once')
    .requiredOption('--name <name>', 'a name for the key (shown in usage reports)')
    .option('--team <id>', 'team its calls are attributed to and charged against')
    .option('--user <id>', 'user its calls are attributed to')
    .option('--agent <id>', 'agent its calls are attributed to')
    .option('--environment <env>', 'environment of its calls (default prod)')
    .option('--endpoint <tag>', 'endpoint tag of its calls')
    .option('--hold', 'when funds run out, hold the call while its cost ticket waits, instead of refusing at once')
    .action(async (flags: KeyFlags, command: Command) => {
      const ctx = contextOf(command)
      const body = {
        name: flags.name,
        ...(flags.team !== undefined && { team_id: flags.team }),
        ...(flags.user !== undefined && { user_id: flags.user }),
        ...(flags.agent !== undefined && { agent_id: flags.agent }),
        ...(flags.environment !== undefined && { environment: flags.environment }),
        ...(flags.endpoint !== undefined && { endpoint_tag: flags.endpoint }),
        ...(flags.hold === true && { on_insufficient_funds: 'hold' }),
      }
      const created = await ctx.admin().json<KeyView & { key: string }>('POST', '/v1/keys', { body })
      ctx.output.result(created, () =>
        [
          `Created consumer key ${created.name}${created.id === undefined ? '' : ` (${created.id})`}`,
          `key: ${created.key}`,
          'Store it now: it is not shown again. Applications send it as "Authorization: Bearer KEY".',
        ].join('\n'),
      )
    })

  withSharedOptions(keys.command('list'))
    .description('List consumer keys (prefixes only)')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      const page = await ctx.admin().json<{ data: KeyView[] }>('GET', '/v1/keys')
      ctx.output.result(page, () => renderTable(page.data, KEY_COLUMNS, 'No consumer keys created through the API.'))
    })

  withSharedOptions(keys.command('revoke').argument('<id>', 'key id'))
    .description('Revoke a consumer key: calls with it are refused from now on')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command)
      const revoked = await ctx.admin().json<KeyView>('DELETE', `/v1/keys/${encodeURIComponent(id)}`)
      ctx.output.result(revoked, () => `Revoked consumer key ${revoked.name} (${revoked.id}, ${revoked.prefix}…) at ${timeText(revoked.revoked_at)}`)
    })
}

const KEY_COLUMNS: Column<KeyView>[] = [
  { header: 'ID', value: (k) => k.id },
  { header: 'NAME', value: (k) => k.name },
  { header: 'PREFIX', value: (k) => `${k.prefix}…` },
  { header: 'TEAM', value: (k) => k.team_id },
  { header: 'USER', value: (k) => k.user_id },
  { header: 'AGENT', value: (k) => k.agent_id },
  { header: 'ENV', value: (k) => k.environment },
  { header: 'ENDPOINT', value: (k) => k.endpoint_tag },
  { header: 'CREATED', value: (k) => timeText(k.created_at) },
  { header: 'REVOKED', value: (k) => timeText(k.revoked_at) },
]
