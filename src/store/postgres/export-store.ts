/**
 * Export jobs on PostgreSQL, and the rows they read. A claim is one UPDATE whose subquery takes
 * the oldest runnable job `FOR UPDATE SKIP LOCKED`, so any number of gateway processes claim each
 * job once. Rows are read in keyset pages ordered by (time, id): each page is one short query
 * (no connection held between pages, no statement near the statement timeout), and memory holds
 * one page at most.
 */
import type pg from 'pg'
import {
  throwOverLimits,
  type ExportJob,
  type ExportJobStore,
  type ExportReader,
  type ExportRequest,
  type ExportRowSource,
  type ExportSelection,
  type PendingLimits,
  type ProgressUpdate,
} from '../../exports/types.js'
import { LEDGER_FROM, LEDGER_SELECT, attemptsExhausted, exportJobOf, selectionWhere, type ExportJobRow } from '../rows/export.js'

export const exportJobsSchema = `
  CREATE TABLE export_jobs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('events', 'ledger', 'budgets')),
    format TEXT NOT NULL CHECK (format IN ('csv', 'ndjson')),
    from_ms BIGINT NOT NULL,
    to_ms BIGINT NOT NULL,
    team_id TEXT,
    user_id TEXT,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    rows_written BIGINT NOT NULL DEFAULT 0,
    rows_total BIGINT,
    bytes BIGINT,
    error TEXT,
    worker_id TEXT,
    lease_until_ms BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at_ms BIGINT,
    completed_at_ms BIGINT
  );
  CREATE INDEX export_jobs_org ON export_jobs (org_id, created_at_ms);
  CREATE INDEX export_jobs_runnable ON export_jobs (status, created_at_ms) WHERE status IN ('queued', 'running');
  CREATE INDEX IF NOT EXISTS ledger_entries_at ON ledger_entries (at_ms, seq);
`

/**
 * Retention: a completed job becomes `expired` once its file is deleted (a new status, so the
 * CHECK is replaced), with when. Two indexes serve the per-org queue limit and the sweeper without
 * scanning the jobs' history.
 */
export const exportRetentionSchema = `
  ALTER TABLE export_jobs DROP CONSTRAINT export_jobs_status_check;
  ALTER TABLE export_jobs ADD CONSTRAINT export_jobs_status_check CHECK (status IN ('queued', 'running', 'completed', 'failed', 'expired'));
  ALTER TABLE export_jobs ADD COLUMN expired_at_ms BIGINT;
  CREATE INDEX export_jobs_pending ON export_jobs (org_id, team_id) WHERE status IN ('queued', 'running');
  CREATE INDEX export_jobs_completed ON export_jobs (completed_at_ms) WHERE status = 'completed';
`

/** The advisory lock namespace of an org's export queue (a create counts and inserts under it). */
const QUEUE_LOCK_SEED = 0x65787074 // 'expt'

/** `?` placeholders → `$1…`, starting after `offset` parameters. */
function numbered(sql: string, offset = 0): string {
  let n = offset
  return sql.replace(/\?/g, () => `$${++n}`)
}

export class PostgresExportStore implements ExportJobStore, ExportRowSource {
  constructor(private readonly pool: pg.Pool) {}

  async createExportJob(r: ExportRequest, limits?: PendingLimits): Promise<ExportJob> {
    const insert = `INSERT INTO export_jobs (id, org_id, type, format, from_ms, to_ms, team_id, user_id, created_by, created_at_ms, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued') RETURNING *`
    const values = [r.id, r.orgId, r.type, r.format, r.fromMs, r.toMs, r.scope.teamId ?? null, r.scope.userId ?? null, r.createdBy, r.createdAtMs]
    if (!limits) return exportJobOf((await this.pool.query<ExportJobRow>(insert, values)).rows[0]!)
    // The org's lock for the count and the insert: under READ COMMITTED, two creates counting at
    // once would both see the last free place. The count runs after the lock, in a new snapshot,
    // so it sees every job a previous holder committed.
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, $2))', [r.orgId, QUEUE_LOCK_SEED])
      const teamId = r.scope.teamId ?? null
      const { rows } = await client.query<{ org: string; team: string; team_kept: string; team_bytes: string }>(
        `SELECT count(*) FILTER (WHERE status <> 'completed') AS org,
           count(*) FILTER (WHERE team_id = $2 AND status <> 'completed') AS team,
           count(*) FILTER (WHERE team_id = $2 AND status = 'completed') AS team_kept,
           coalesce(sum(bytes) FILTER (WHERE team_id = $2 AND status <> 'queued'), 0) AS team_bytes
         FROM export_jobs WHERE org_id = $1 AND status IN ('queued', 'running', 'completed')`,
        [r.orgId, teamId],
      )
      const row = rows[0]!
      throwOverLimits(limits, teamId, {
        org: Number(row.org),
        team: Number(row.team),
        teamKept: Number(row.team_kept),
        teamBytes: Number(row.team_bytes),
      })
      const job = exportJobOf((await client.query<ExportJobRow>(insert, values)).rows[0]!)
      await client.query('COMMIT')
      return job
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }

  async findExportJobs(ids: readonly string[]): Promise<ExportJob[]> {
    if (ids.length === 0) return []
    const { rows } = await this.pool.query<ExportJobRow>('SELECT * FROM export_jobs WHERE id = ANY($1::text[])', [ids])
    return rows.map(exportJobOf)
  }

  async expireExportJobs(nowMs: number, retentionMs: number): Promise<number> {
    const result = await this.pool.query(
      `UPDATE export_jobs SET status = 'expired', expired_at_ms = completed_at_ms + $2
       WHERE status = 'completed' AND completed_at_ms + $2 <= $1`,
      [nowMs, retentionMs],
    )
    return result.rowCount ?? 0
  }

  async getExportJob(id: string): Promise<ExportJob | undefined> {
    const { rows } = await this.pool.query<ExportJobRow>('SELECT * FROM export_jobs WHERE id = $1', [id])
    return rows[0] && exportJobOf(rows[0])
  }

  async listExportJobs(orgId: string, teamId: string | undefined, limit: number): Promise<ExportJob[]> {
    const { rows } = await this.pool.query<ExportJobRow>(
      'SELECT * FROM export_jobs WHERE org_id = $1 AND ($2::text IS NULL OR team_id = $2) ORDER BY created_at_ms DESC, id DESC LIMIT $3',
      [orgId, teamId ?? null, limit],
    )
    return rows.map(exportJobOf)
  }

  async claimExportJob(workerId: string, nowMs: number, leaseUntilMs: number, attemptsMax: number): Promise<ExportJob | undefined> {
    await this.pool.query(
      `UPDATE export_jobs SET status = 'failed', error = $1, completed_at_ms = $2, worker_id = NULL, lease_until_ms = NULL
       WHERE status = 'running' AND lease_until_ms < $2 AND attempts >= $3`,
      [attemptsExhausted(attemptsMax), nowMs, attemptsMax],
    )
    const { rows } = await this.pool.query<ExportJobRow>(
      `UPDATE export_jobs SET status = 'running', worker_id = $1, lease_until_ms = $2, attempts = attempts + 1,
         started_at_ms = $3, rows_written = 0, bytes = NULL
       WHERE id = (SELECT id FROM export_jobs WHERE status = 'queued' OR (status = 'running' AND lease_until_ms < $3)
                   ORDER BY created_at_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED)
         AND (status = 'queued' OR lease_until_ms < $3)
       RETURNING *`,
      [workerId, leaseUntilMs, nowMs],
    )
    return rows[0] && exportJobOf(rows[0])
  }

  async teamExportBytes(orgId: string, teamId: string, exceptId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT coalesce(sum(bytes), 0) AS n FROM export_jobs
       WHERE org_id = $1 AND team_id = $2 AND status IN ('running', 'completed') AND id <> $3`,
      [orgId, teamId, exceptId],
    )
    return Number(rows[0]!.n)
  }

  async updateExportProgress(id: string, workerId: string, p: ProgressUpdate): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE export_jobs SET rows_written = $3, rows_total = $4, bytes = $6, lease_until_ms = $5 WHERE id = $1 AND worker_id = $2 AND status = 'running'`,
      [id, workerId, p.rowsWritten, p.rowsTotal, p.leaseUntilMs, p.bytesWritten],
    )
    return result.rowCount === 1
  }

  async completeExportJob(id: string, workerId: string, r: { rowsWritten: number; bytes: number; atMs: number }): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE export_jobs SET status = 'completed', rows_written = $3, rows_total = $3, bytes = $4, completed_at_ms = $5, lease_until_ms = NULL
       WHERE id = $1 AND worker_id = $2 AND status = 'running'`,
      [id, workerId, r.rowsWritten, r.bytes, r.atMs],
    )
    return result.rowCount === 1
  }

  async failExportJob(id: string, workerId: string, error: string, atMs: number): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE export_jobs SET status = 'failed', error = $3, completed_at_ms = $4, lease_until_ms = NULL WHERE id = $1 AND worker_id = $2 AND status = 'running'`,
      [id, workerId, error, atMs],
    )
    return result.rowCount === 1
  }

  async releaseExportJob(id: string, workerId: string): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE export_jobs SET status = 'queued', worker_id = NULL, lease_until_ms = NULL, rows_written = 0, bytes = NULL WHERE id = $1 AND worker_id = $2 AND status = 'running'`,
      [id, workerId],
    )
    return result.rowCount === 1
  }

  async openExportReader(selection: ExportSelection & { type: 'events' | 'ledger' }, pageSize: number): Promise<ExportReader> {
    const pool = this.pool
    const { where, params } = selectionWhere(selection)
    const events = selection.type === 'events'
    const from = events ? 'usage_events' : LEDGER_FROM
    const select = events ? '*' : `e.id, ${LEDGER_SELECT}`
    const [timeCol, idCol] = events ? ['at_ms', 'id'] : ['e.at_ms', 'e.seq']
    const countSql = numbered(`SELECT count(*) AS n FROM ${from} WHERE ${where}`)
    const firstSql = numbered(`SELECT ${select} FROM ${from} WHERE ${where} ORDER BY ${timeCol}, ${idCol} LIMIT ${pageSize}`)
    const nextSql = numbered(`SELECT ${select} FROM ${from} WHERE ${where} AND (${timeCol}, ${idCol}) > (?, ?) ORDER BY ${timeCol}, ${idCol} LIMIT ${pageSize}`)
    const keyOf = (row: Record<string, unknown>) => [row.at_ms, events ? row.id : row.seq]
    return {
      async count() {
        return Number((await pool.query<{ n: number }>(countSql, params)).rows[0]!.n)
      },
      async *pages() {
        let page = (await pool.query<Record<string, unknown>>(firstSql, params)).rows
        while (page.length > 0) {
          // Taken before the page is handed over: the consumer may empty it.
          const full = page.length === pageSize
          const key = keyOf(page.at(-1)!)
          yield page
          if (!full) return
          page = (await pool.query<Record<string, unknown>>(nextSql, [...params, ...key])).rows
        }
      },
      async close() {},
    }
  }
}
