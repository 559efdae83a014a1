/**
 * `tollgate serve`: run the gateway in this process. The server modules are imported only when
 * serving, so the admin commands start without loading the engine.
 */
import { InvalidArgumentError, Option, type Command } from 'commander'
import type { Config } from '../../config/index.js'

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('Run the gateway (the built-in config with the mock provider when no --config is given)')
    .option('-c, --config <file>', 'YAML configuration file (env TOLLGATE_CONFIG)')
    .addOption(new Option('-p, --port <port>', 'port to listen on (overrides server.port)').argParser(parsePort))
    .option('--host <host>', 'host to bind (overrides server.host)')
    .action(async (options: { config?: string; port?: number; host?: string }) => {
      const { builtInConfig, loadConfigFile } = await import('../../config/index.js')
      const { startServer, stopOnSignals } = await import('../../server.js')
      const path = options.config ?? process.env.TOLLGATE_CONFIG
      const config: Config = path ? loadConfigFile(path, { requireSecrets: true }) : builtInConfig(process.env)
      const server = await startServer(config, {
        ...(options.port !== undefined ? { port: options.port } : {}),
        ...(options.host !== undefined ? { host: options.host } : {}),
      })
      stopOnSignals(server)
    })
}

export function parsePort(value: string): number {
  const port = Number(value)
  if (!/^\d+$/.test(value) || port > 65_535) throw new InvalidArgumentError('expected a port from 0 to 65535')
  return port
}
