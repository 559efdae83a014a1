/**
 * PostgreSQL connection pool and migrations. Every gateway process opens one pool; migrations run
 * on start under `pg_advisory_lock`, so any number of processes starting at once apply each
 * migration exactly once (the others wait on the lock, then see it recorded).
 */
import pg from 'pg'
import { postgresMigrations, type PostgresMigration } from './schema.js'

export interface PostgresPoolOptions {
  /** Connections per process. Small: the journal writer batches, and N processes share the server's max_connections. */
  readonly maxConnections?: number
  /** A statement running longer is cancelled by the server, so a stuck query cannot pin a connection forever. */
  readonly statementTimeoutMs?: number
  /** Fail fast when the server is down instead of waiting on the OS TCP timeout. */
  readonly connectionTimeoutMs?: number
  /** `search_path` for every connection (tests use a schema per run; the URL's `options` also work). */
  readonly schema?: string
}

export const POOL_DEFAULTS = {
  maxConnections: 8,
  statementTimeoutMs: 10_000,
  connectionTimeoutMs: 3_000,
} as const

/**
 * JSON text `jsonb` accepts. PostgreSQL text holds no NUL, so jsonb refuses the escape `\u0000`
 * and with it the whole document: a NUL someone put in a string (a request id, a label) would
 * make a journal event PostgreSQL can never take. It is stored as U+FFFD instead, as usage rows
 * already are.
 */
export function jsonbSafe(text: string): string {
  return text.includes('\\u0000') ? text.replaceAll('\\u0000', '\\ufffd') : text
}

const NUL_ESCAPE = Buffer.from('\\u0000')

/** `jsonbSafe` on JSON text as UTF-8 bytes: the same bytes unless they escape a NUL. */
export function jsonbSafeBytes(bytes: Buffer): Buffer {
  return bytes.includes(NUL_ESCAPE) ? Buffer.from(jsonbSafe(bytes.toString('utf8'))) : bytes
}

/** jsonb's binary wire format: a version byte (1), then the JSON text. */
const JSONB_ARRAY_OPEN = Buffer.from([1, 0x5b])
const COMMA = Buffer.from(',')
const ARRAY_CLOSE = Buffer.from(']')

/**
 * A `$n::jsonb` parameter holding the JSON array of `items` (each a JSON value as UTF-8 bytes),
 * sent as bytes: node-postgres sends a Buffer parameter in binary format, and jsonb's binary
 * format is its text behind a version byte. Items read from Redis as bytes go to PostgreSQL
 * without being decoded into strings and encoded back.
 */
export function jsonbArrayParam(items: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [JSONB_ARRAY_OPEN]
  items.forEach((item, i) => {
    if (i > 0) parts.push(COMMA)
    parts.push(item)
  })
  parts.push(ARRAY_CLOSE)
  return Buffer.concat(parts)
}

/** BIGINT (20) and NUMERIC (1700, what sum(bigint) returns) as JS numbers: money is integer micros below 2^53. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === 20 || oid === 1700) return (value: string) => Number(value)
    return pg.types.getTypeParser(oid, format ?? 'text')
  }) as pg.CustomTypesConfig['getTypeParser'],
}

export function createPool(url: string, options: PostgresPoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? POOL_DEFAULTS.maxConnections,
    statement_timeout: options.statementTimeoutMs ?? POOL_DEFAULTS.statementTimeoutMs,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? POOL_DEFAULTS.connectionTimeoutMs,
    // Idle connections are closed so a restarted server is reconnected to cleanly.
    idleTimeoutMillis: 10_000,
    types,
    ...(options.schema !== undefined ? { options: `-c search_path=${options.schema}` } : {}),
  })
  // An idle client losing its connection (server restart) must not crash the process; the next
  // checkout gets a fresh connection.
  pool.on('error', () => {})
  return pool
}

/** Advisory lock key for migrations ('tollgate' as a 32-bit number). */
const MIGRATION_LOCK_KEY = 0x746f6c6c

/** Applies the migrations not yet recorded in `schema_migrations`. Safe to run concurrently. */
export async function migrate(pool: pg.Pool, migrations: readonly PostgresMigration[] = postgresMigrations): Promise<string[]> {
  const client = await pool.connect()
  const applied: string[] = []
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
    try {
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)')
      const done = new Set((await client.query<{ id: string }>('SELECT id FROM schema_migrations')).rows.map((r) => r.id))
      for (const migration of migrations) {
        if (done.has(migration.id)) continue
        await client.query('BEGIN')
        try {
          await client.query(migration.sql)
          await client.query('INSERT INTO schema_migrations (id, applied_at_ms) VALUES ($1, $2)', [migration.id, Date.now()])
          await client.query('COMMIT')
          applied.push(migration.id)
        } catch (error) {
          await client.query('ROLLBACK')
          throw error
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
    }
  } finally {
    client.release()
  }
  return applied
}

/** `tollgate db migrate`: applies pending migrations and returns their ids. */
export async function migratePostgres(url: string, options: { schema?: string } = {}): Promise<string[]> {
  const pool = createPool(url, { maxConnections: 1, ...(options.schema !== undefined ? { schema: options.schema } : {}) })
  try {
    return await migrate(pool)
  } finally {
    await pool.end()
  }
}
