/** `tollgate config check FILE`: validate a configuration file without starting the gateway. */
import type { Command } from 'commander'

export function registerConfigCommands(program: Command): void {
  program
    .command('config')
    .description('Configuration tools')
    .command('check')
    .description('Validate a configuration file without starting the gateway')
    .argument('<file>', 'YAML configuration file')
    .action(async (file: string) => {
      const { envVarLabel, loadConfigFile } = await import('../../config/index.js')
      const config = loadConfigFile(file, { requireSecrets: false })
      const missing = config.targets.filter((t) => t.apiKeyEnv !== undefined && t.apiKey === undefined)
      process.stdout.write(
        `tollgate: ${file} is valid — ${config.targets.length} target(s), ${config.consumerGroups.length} consumer group(s), ` +
          `${config.models.length} model route(s), ${config.budgets.length} budget(s)\n`,
      )
      // A name that looks like a pasted secret is not printed (envVarLabel).
      for (const t of missing) {
        process.stdout.write(`  note: ${envVarLabel(t.apiKeyEnv!, `by target ${t.id}`)} is not set here; serve will need it\n`)
      }
      // Tiers are shorthand: show what they stand for, so nobody has to guess what "critical" does.
      const { describeTiers } = await import('../../budgets/tiers.js')
      for (const line of describeTiers(config.budgets, config.endpointTiers)) process.stdout.write(`  ${line}\n`)
    })
}
