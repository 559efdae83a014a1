/**
 * The options every gateway command shares (`--url`, `--token`, `--json`) and what a command
 * builds from them: a client for the admin API, a client for a consumer key, and the output.
 *
 * The options are declared on the program AND on each command, so they may stand before or after
 * the command (`tollgate --json wallets list`, `tollgate wallets list --json`); the program uses
 * positional options, which keeps `db migrate --url` (a PostgreSQL URL) its own flag. Values are
 * resolved here: the command's flag, then the program's, then the environment, then the default.
 */
import { Option, type Command } from 'commander'
import { GatewayClient } from './client.js'
import { UsageError } from './errors.js'
import { createOutput, type Output } from './output.js'

export const DEFAULT_URL = 'http://127.0.0.1:4100'

export interface CliContext {
  readonly output: Output
  /** A client that sends the admin token; UsageError (exit 2) when no token was given. */
  admin(): GatewayClient
  /** A client that sends a consumer key (`--key` or TOLLGATE_KEY); UsageError when there is none. */
  consumer(key: string | undefined): GatewayClient
}

interface SharedOptions {
  url?: string | undefined
  token?: string | undefined
  json?: boolean | undefined
}

/**
 * Adds --url, --json and (unless `token` is false: a command that sends a consumer key) --token
 * to `command`, with no defaults: those are applied in `contextOf`.
 */
export function withSharedOptions(command: Command, { token = true }: { token?: boolean } = {}): Command {
  command.addOption(new Option('--url <url>', `gateway URL (env TOLLGATE_URL, default ${DEFAULT_URL})`))
  if (token) command.addOption(new Option('--token <token>', 'admin token (env TOLLGATE_TOKEN)'))
  return command.addOption(new Option('--json', 'print the JSON the gateway answered, for scripts'))
}

const openClients = new Set<GatewayClient>()

/** Closes every client a command opened (main calls it once the command is done). */
export async function closeClients(): Promise<void> {
  await Promise.all([...openClients].map((client) => client.close()))
  openClients.clear()
}

export function contextOf(command: Command, env: NodeJS.ProcessEnv = process.env): CliContext {
  const shared = sharedOptionsOf(command)
  const url = shared.url ?? nonEmpty(env.TOLLGATE_URL) ?? DEFAULT_URL
  const open = (credential: string): GatewayClient => {
    const client = GatewayClient.connect(url, credential)
    openClients.add(client)
    return client
  }
  return {
    output: createOutput(shared.json === true),
    admin() {
      const token = shared.token ?? nonEmpty(env.TOLLGATE_TOKEN)
      if (token === undefined) throw new UsageError('no admin token: pass --token or set TOLLGATE_TOKEN (the gateway prints one on its first start)')
      return open(token)
    },
    consumer(key) {
      const credential = key ?? nonEmpty(env.TOLLGATE_KEY)
      if (credential === undefined)
        throw new UsageError('no consumer key: pass --key or set TOLLGATE_KEY (events are sent with a consumer key, not an admin token)')
      return open(credential)
    },
  }
}

/** The nearest --url / --token / --json from the command up to the program. */
function sharedOptionsOf(command: Command): SharedOptions {
  const shared: SharedOptions = {}
  for (let current: Command | null = command; current !== null; current = current.parent) {
    const options = current.opts<SharedOptions>()
    shared.url ??= options.url
    shared.token ??= options.token
    shared.json ??= options.json
  }
  return shared
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}
