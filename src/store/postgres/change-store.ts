/** Change versions (lib/change-feed.ts) on PostgreSQL: one row per topic, bumped in one statement. */
import type pg from 'pg'
import type { ChangeVersionStore } from '../../lib/change-feed.js'

export class PostgresChangeStore implements ChangeVersionStore {
  constructor(private readonly pool: pg.Pool) {}

  async bumpVersion(topic: string): Promise<void> {
    await this.pool.query(
      'INSERT INTO change_versions (topic, version) VALUES ($1, 1) ON CONFLICT (topic) DO UPDATE SET version = change_versions.version + 1',
      [topic],
    )
  }

  async versions(): Promise<ReadonlyMap<string, number>> {
    const { rows } = await this.pool.query<{ topic: string; version: number }>('SELECT topic, version FROM change_versions')
    return new Map(rows.map((row) => [row.topic, row.version]))
  }
}
