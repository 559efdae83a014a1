#!/usr/bin/env node
/**
 * `tollgate`: the command line. `serve`, `config check` and `db migrate` run locally; every other
 * command talks to a running gateway over HTTP (docs/cli.md). This file composes the commands
 * (each group lives in commands/) and turns what went wrong into one line on stderr and an exit
 * code scripts can trust: 0 ok, 1 the server refused, 2 usage or config error, 3 unreachable.
 */
import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { closeClients, withSharedOptions } from './context.js'
import { CliError, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, oneLine } from './errors.js'
import { registerConfigCommands } from './commands/config.js'
import { demoCommand } from './commands/demo.js'
import { registerDbCommands } from './commands/db.js'
import { registerEventCommands } from './commands/events.js'
import { registerExportJobCommands } from './commands/export-jobs.js'
import { registerKeyCommands } from './commands/keys.js'
import { parsePort, registerServeCommand } from './commands/serve.js'
import { registerReplayCommand } from './commands/replay.js'
import { registerSpendCommands } from './commands/spend.js'
import { registerTicketCommands } from './commands/tickets.js'
import { registerTokenCommands } from './commands/tokens.js'
import { registerUsageCommands } from './commands/usage.js'
import { registerWalletCommands } from './commands/wallets.js'

function buildProgram(): Command {
  const program = new Command()
    .name('tollgate')
    .description('LLM spend gateway: reserve the worst case before dispatch, settle to the actual cost after.')
    .version(packageVersion(), '-V, --version', 'print the version')
    // Options before a command belong to the program, after it to the command: so `db migrate
    // --url` stays a PostgreSQL URL while `wallets list --url` is the gateway's.
    .enablePositionalOptions()
    // Usage errors throw instead of exiting, so they get exit code 2 (below).
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`tollgate: ${text.replace(/^error: /, '')}`) })
  withSharedOptions(program)

  registerServeCommand(program)
  registerConfigCommands(program)
  registerDbCommands(program)
  registerSpendCommands(program)
  registerWalletCommands(program)
  registerTicketCommands(program)
  registerUsageCommands(program)
  registerKeyCommands(program)
  registerTokenCommands(program)
  registerEventCommands(program)
  registerExportJobCommands(program)
  registerReplayCommand(program)
  program.addCommand(demoCommand(parsePort))
  return program
}

/** Runs one command line and returns its exit code; never throws. */
async function run(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK
  } catch (error) {
    return await report(error)
  } finally {
    await closeClients()
  }
}

async function report(error: unknown): Promise<number> {
  // Commander has already printed its message (or the help / version it was asked for).
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE
  if (error instanceof CliError) {
    process.stderr.write(`tollgate: ${error.line()}\n`)
    return error.exitCode
  }
  // Loaded only here: admin commands start without the config loader (and zod).
  const { ConfigError } = await import('../config/index.js')
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.format()}\n`)
    return EXIT_USAGE
  }
  // Anything else is a bug or a local failure (a file that cannot be written): one line, no stack.
  process.stderr.write(`tollgate: ${oneLine(error instanceof Error ? error.message : String(error))}\n`)
  return EXIT_REFUSED
}

function packageVersion(): string {
  // dist/cli/main.js and src/cli/main.ts both sit two levels below package.json.
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return manifest.version
}

// `tollgate … --json | head`: the reader went away, which is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? EXIT_OK)
  throw error
})

process.exitCode = await run(process.argv)
