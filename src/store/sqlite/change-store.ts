/** Change versions (lib/change-feed.ts) on SQLite: one row per topic, bumped in one statement. */
import type { ChangeVersionStore } from '../../lib/change-feed.js'
import type { SqliteDatabase, SqliteMigration } from './db.js'

export const changeMigrations: readonly SqliteMigration[] = [
  {
    id: 'changes-0001-versions',
    sql: `CREATE TABLE change_versions (topic TEXT PRIMARY KEY, version INTEGER NOT NULL)`,
  },
]

export class SqliteChangeStore implements ChangeVersionStore {
  private readonly bump
  private readonly all

  constructor(db: SqliteDatabase) {
    this.bump = db.prepare('INSERT INTO change_versions (topic, version) VALUES (?, 1) ON CONFLICT (topic) DO UPDATE SET version = version + 1')
    this.all = db.prepare<[], { topic: string; version: number }>('SELECT topic, version FROM change_versions')
  }

  async bumpVersion(topic: string): Promise<void> {
    this.bump.run(topic)
  }

  async versions(): Promise<ReadonlyMap<string, number>> {
    return new Map(this.all.all().map((row) => [row.topic, row.version]))
  }
}
