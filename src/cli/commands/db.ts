/** `tollgate db migrate`: apply the PostgreSQL migrations (they also run when the gateway starts). */
import type { Command } from 'commander'
import { UsageError } from '../errors.js'

export function registerDbCommands(program: Command): void {
  program
    .command('db')
    .description('Database tools')
    .command('migrate')
    .description('Apply PostgreSQL migrations (they also run on start); with no --url, uses storage.postgres from --config')
    .option('-c, --config <file>', 'YAML configuration file with storage.postgres')
    .option('--url <url>', 'PostgreSQL URL (env DATABASE_URL; overrides the config)')
    .action(async (options: { config?: string; url?: string }) => {
      let url = options.url ?? process.env.DATABASE_URL
      if (url === undefined && options.config) {
        const { loadConfigFile } = await import('../../config/index.js')
        const config = loadConfigFile(options.config, { requireSecrets: false })
        if (config.storage.kind === 'postgres') url = config.storage.postgresUrl
      }
      if (url === undefined) throw new UsageError('db migrate: give --url, DATABASE_URL, or a --config with storage.postgres')
      const { migratePostgres } = await import('../../store/postgres/db.js')
      const applied = await migratePostgres(url)
      process.stdout.write(applied.length ? `tollgate: applied ${applied.length} migration(s): ${applied.join(', ')}\n` : 'tollgate: database is up to date\n')
    })
}
