/** `tollgate demo`: the gateway with weeks of synthetic traffic, for trying the console. */
import { Command, Option } from 'commander'

export function demoCommand(parsePort: (value: string) => number): Command {
  return new Command('demo')
    .description('Run a gateway on a fresh temporary store with the mock provider and weeks of synthetic traffic, for the web console')
    .addOption(new Option('-p, --port <port>', 'port to listen on').argParser(parsePort).default(4100))
    .option('--fast', 'fewer days and calls (for tests)', false)
    .action(async (options: { port: number; fast: boolean }) => {
      // Imported here: the demo loads the whole gateway, which the admin commands never need.
      const { runDemo } = await import('../demo/run-demo.js')
      const say = (line: string) => process.stdout.write(`${line}\n`)
      const demo = await runDemo({ port: options.port, fast: options.fast, announce: say })
      say('')
      say(`  Console:      ${demo.consoleUrl}`)
      say(`  Admin token:  ${demo.adminToken}`)
      say('')
      say('  Sign in with the admin token. The store is temporary: stop with Ctrl-C and it is gone.')
      let stopping = false
      const onSignal = () => {
        if (stopping) process.exit(1)
        stopping = true
        demo
          .stop()
          .then(() => process.exit(0))
          .catch(() => process.exit(1))
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
    })
}
