#!/usr/bin/env node
/**
 * `tollgate`: the command line (SPEC §8). `serve` and `config check` run locally; the other
 * commands talk to a running gateway over HTTP.
 */
import { Command, Option } from 'commander'
import { ConfigError, builtInConfig, loadConfigFile, type Config } from '../config/index.js'
import { startServer, stopOnSignals } from '../server.js'
import { demoCommand } from './commands/demo.js'

const program = new Command()
program.name('tollgate').description('LLM spend gateway: reserve the worst case before dispatch, settle to the actual cost after.')

function loadConfig(path: string | undefined, requireSecrets = true): Config {
  return path ? loadConfigFile(path, { requireSecrets }) : builtInConfig(process.env)
}

program
  .command('serve')
  .description('Run the gateway (the built-in config with the mock provider when no --config is given)')
  .option('-c, --config <file>', 'YAML configuration file')
  .addOption(new Option('-p, --port <port>', 'port to listen on (overrides server.port)').argParser(parsePort))
  .option('--host <host>', 'host to bind (overrides server.host)')
  .action(async (options: { config?: string; port?: number; host?: string }) => {
    const config = loadConfig(options.config ?? process.env.TOLLGATE_CONFIG)
    const server = await startServer(config, {
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.host !== undefined ? { host: options.host } : {}),
    })
    stopOnSignals(server)
  })

const configCommand = program.command('config').description('Configuration tools')
configCommand
  .command('check')
  .description('Validate a configuration file without starting the gateway')
  .argument('<file>', 'YAML configuration file')
  .action((file: string) => {
    const config = loadConfigFile(file, { requireSecrets: false })
    const missing = config.targets.filter((t) => t.apiKeyEnv !== undefined && t.apiKey === undefined).map((t) => t.apiKeyEnv)
    process.stdout.write(
      `tollgate: ${file} is valid — ${config.targets.length} target(s), ${config.consumerGroups.length} consumer group(s), ` +
        `${config.models.length} model route(s), ${config.budgets.length} budget(s)\n`,
    )
    for (const name of missing) process.stdout.write(`  note: environment variable ${name} is not set here; serve will need it\n`)
  })

program
  .command('db')
  .description('Database tools')
  .command('migrate')
  .description('Apply PostgreSQL migrations (they also run on start); with no --url, uses storage.postgres from --config')
  .option('-c, --config <file>', 'YAML configuration file with storage.postgres')
  .option('--url <url>', 'PostgreSQL URL (overrides the config)')
  .action(async (options: { config?: string; url?: string }) => {
    let url = options.url ?? process.env.DATABASE_URL
    if (url === undefined && options.config) {
      const config = loadConfigFile(options.config, { requireSecrets: false })
      if (config.storage.kind === 'postgres') url = config.storage.postgresUrl
    }
    if (url === undefined) throw new Error('db migrate: give --url, DATABASE_URL, or a --config with storage.postgres')
    const { migratePostgres } = await import('../store/postgres/db.js')
    const applied = await migratePostgres(url)
    process.stdout.write(applied.length ? `tollgate: applied ${applied.length} migration(s): ${applied.join(', ')}\n` : 'tollgate: database is up to date\n')
  })

program.addCommand(demoCommand(parsePort))

function parsePort(value: string): number {
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--port: expected 0–65535, got "${value}"`)
  return port
}

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.format()}\n`)
    process.exit(2)
  }
  process.stderr.write(`tollgate: ${(error as Error).message}\n`)
  process.exit(1)
})
