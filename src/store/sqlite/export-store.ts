/**
 * Export jobs on SQLite, and the rows they read. Claims are one UPDATE … RETURNING in an
 * immediate transaction, so processes sharing the file never claim the same job. A job reads its
 * rows through a read-only connection of its own inside one read transaction: `count()` and the
 * rows come from the same snapshot, `iterate()` hands out one row at a time, and the gateway's
 * own connection stays free for calls while the export pauses between pages.
 */
import Database from 'better-sqlite3'
import {
  throwOverLimits,
  type ExportJob,
  type ExportJobStore,
  type ExportReader,
  type ExportRequest,
  type ExportRowSource,
  type ExportSelection,
  type HeldByQueue,
  type PendingLimits,
  type ProgressUpdate,
} from '../../exports/types.js'
import { LEDGER_FROM, LEDGER_SELECT, attemptsExhausted, exportJobOf, selectionWhere, type ExportJobRow } from '../rows/export.js'
import type { SqliteDatabase, SqliteMigration } from './db.js'

export const exportMigrations: readonly SqliteMigration[] = [
  {
    id: 'exports-0001-jobs',
    sql: `
      CREATE TABLE export_jobs (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('events', 'ledger', 'budgets')),
        format TEXT NOT NULL CHECK (format IN ('csv', 'ndjson')),
        from_ms INTEGER NOT NULL,
        to_ms INTEGER NOT NULL,
        team_id TEXT,
        user_id TEXT,
        created_by TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
        rows_written INTEGER NOT NULL DEFAULT 0,
        rows_total INTEGER,
        bytes INTEGER,
        error TEXT,
        worker_id TEXT,
        lease_until_ms INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        started_at_ms INTEGER,
        completed_at_ms INTEGER
      );
      CREATE INDEX export_jobs_org ON export_jobs (org_id, created_at_ms);
      CREATE INDEX export_jobs_runnable ON export_jobs (status, created_at_ms) WHERE status IN ('queued', 'running');
      -- The ledger export reads entries by time across wallets.
      CREATE INDEX IF NOT EXISTS ledger_entries_at ON ledger_entries (at_ms);
    `,
  },
  {
    // Retention: a completed job becomes `expired` once its file is deleted. SQLite cannot alter a
    // CHECK constraint, so the table is rebuilt (the migration runs in one immediate transaction,
    // and no other table or trigger refers to it). Two indexes serve the per-org queue limit and
    // the sweeper without scanning the jobs' history.
    id: 'exports-0002-retention',
    sql: `
      CREATE TABLE export_jobs_0002 (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('events', 'ledger', 'budgets')),
        format TEXT NOT NULL CHECK (format IN ('csv', 'ndjson')),
        from_ms INTEGER NOT NULL,
        to_ms INTEGER NOT NULL,
        team_id TEXT,
        user_id TEXT,
        created_by TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'expired')),
        rows_written INTEGER NOT NULL DEFAULT 0,
        rows_total INTEGER,
        bytes INTEGER,
        error TEXT,
        worker_id TEXT,
        lease_until_ms INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        started_at_ms INTEGER,
        completed_at_ms INTEGER,
        expired_at_ms INTEGER
      );
      INSERT INTO export_jobs_0002 (id, org_id, type, format, from_ms, to_ms, team_id, user_id, created_by, created_at_ms, status,
        rows_written, rows_total, bytes, error, worker_id, lease_until_ms, attempts, started_at_ms, completed_at_ms)
      SELECT id, org_id, type, format, from_ms, to_ms, team_id, user_id, created_by, created_at_ms, status,
        rows_written, rows_total, bytes, error, worker_id, lease_until_ms, attempts, started_at_ms, completed_at_ms
      FROM export_jobs;
      DROP TABLE export_jobs;
      ALTER TABLE export_jobs_0002 RENAME TO export_jobs;
      CREATE INDEX export_jobs_org ON export_jobs (org_id, created_at_ms);
      CREATE INDEX export_jobs_runnable ON export_jobs (status, created_at_ms) WHERE status IN ('queued', 'running');
      CREATE INDEX export_jobs_pending ON export_jobs (org_id, team_id) WHERE status IN ('queued', 'running');
      CREATE INDEX export_jobs_completed ON export_jobs (completed_at_ms) WHERE status = 'completed';
    `,
  },
]

/** How long a reader waits for a writer's lock before failing (it only reads, so rarely). */
const READER_BUSY_TIMEOUT_MS = 10_000

export class SqliteExportStore implements ExportJobStore, ExportRowSource {
  private readonly sql
  private readonly claimTx
  private readonly createTx

  constructor(
    private readonly db: SqliteDatabase,
    /** The database file, opened again read-only by each export reader. */
    private readonly path: string,
  ) {
    this.sql = {
      insert: db.prepare(
        `INSERT INTO export_jobs (id, org_id, type, format, from_ms, to_ms, team_id, user_id, created_by, created_at_ms, status)
         VALUES (@id, @orgId, @type, @format, @fromMs, @toMs, @teamId, @userId, @createdBy, @createdAtMs, 'queued')`,
      ),
      get: db.prepare<[string], ExportJobRow>('SELECT * FROM export_jobs WHERE id = ?'),
      pending: db.prepare<Record<string, unknown>, HeldByQueue>(
        `SELECT count(*) FILTER (WHERE status <> 'completed') AS org,
           count(*) FILTER (WHERE team_id = @team AND status <> 'completed') AS team,
           count(*) FILTER (WHERE team_id = @team AND status = 'completed') AS teamKept,
           coalesce(sum(bytes) FILTER (WHERE team_id = @team AND status <> 'queued'), 0) AS teamBytes
         FROM export_jobs WHERE org_id = @org AND status IN ('queued', 'running', 'completed')`,
      ),
      teamBytes: db.prepare<[string, string, string], { n: number }>(
        `SELECT coalesce(sum(bytes), 0) AS n FROM export_jobs
         WHERE org_id = ? AND team_id = ? AND status IN ('running', 'completed') AND id <> ?`,
      ),
      expire: db.prepare(
        `UPDATE export_jobs SET status = 'expired', expired_at_ms = completed_at_ms + @retention
         WHERE status = 'completed' AND completed_at_ms + @retention <= @now`,
      ),
      list: db.prepare<[string, string | null, string | null, number], ExportJobRow>(
        'SELECT * FROM export_jobs WHERE org_id = ? AND (? IS NULL OR team_id = ?) ORDER BY created_at_ms DESC, id DESC LIMIT ?',
      ),
      failExhausted: db.prepare(
        `UPDATE export_jobs SET status = 'failed', error = @error, completed_at_ms = @now, worker_id = NULL, lease_until_ms = NULL
         WHERE status = 'running' AND lease_until_ms < @now AND attempts >= @max`,
      ),
      claim: db.prepare<Record<string, unknown>, ExportJobRow>(
        `UPDATE export_jobs SET status = 'running', worker_id = @worker, lease_until_ms = @lease, attempts = attempts + 1,
           started_at_ms = @now, rows_written = 0, bytes = NULL
         WHERE id = (SELECT id FROM export_jobs WHERE status = 'queued' OR (status = 'running' AND lease_until_ms < @now)
                     ORDER BY created_at_ms, id LIMIT 1)
         RETURNING *`,
      ),
      progress: db.prepare(
        `UPDATE export_jobs SET rows_written = @rowsWritten, rows_total = @rowsTotal, bytes = @bytesWritten, lease_until_ms = @leaseUntilMs
         WHERE id = @id AND worker_id = @worker AND status = 'running'`,
      ),
      complete: db.prepare(
        `UPDATE export_jobs SET status = 'completed', rows_written = @rowsWritten, rows_total = @rowsWritten, bytes = @bytes,
           completed_at_ms = @atMs, lease_until_ms = NULL
         WHERE id = @id AND worker_id = @worker AND status = 'running'`,
      ),
      fail: db.prepare(
        `UPDATE export_jobs SET status = 'failed', error = @error, completed_at_ms = @atMs, lease_until_ms = NULL
         WHERE id = @id AND worker_id = @worker AND status = 'running'`,
      ),
      release: db.prepare(
        `UPDATE export_jobs SET status = 'queued', worker_id = NULL, lease_until_ms = NULL, rows_written = 0, bytes = NULL
         WHERE id = @id AND worker_id = @worker AND status = 'running'`,
      ),
    }
    this.claimTx = db.transaction((worker: string, now: number, lease: number, max: number, error: string) => {
      this.sql.failExhausted.run({ error, now, max })
      return this.sql.claim.get({ worker, now, lease })
    })
    // Immediate: the count and the insert hold the write lock together, so two processes cannot
    // both see one free place.
    this.createTx = db.transaction((r: ExportRequest, limits: PendingLimits | undefined) => {
      if (limits) {
        const teamId = r.scope.teamId ?? null
        const pending = this.sql.pending.get({ team: teamId, org: r.orgId })!
        throwOverLimits(limits, teamId, pending)
      }
      this.insert(r)
    })
  }

  async createExportJob(r: ExportRequest, limits?: PendingLimits): Promise<ExportJob> {
    this.createTx.immediate(r, limits)
    return exportJobOf(this.sql.get.get(r.id)!)
  }

  private insert(r: ExportRequest): void {
    this.sql.insert.run({
      id: r.id,
      orgId: r.orgId,
      type: r.type,
      format: r.format,
      fromMs: r.fromMs,
      toMs: r.toMs,
      teamId: r.scope.teamId ?? null,
      userId: r.scope.userId ?? null,
      createdBy: r.createdBy,
      createdAtMs: r.createdAtMs,
    })
  }

  async getExportJob(id: string): Promise<ExportJob | undefined> {
    const row = this.sql.get.get(id)
    return row && exportJobOf(row)
  }

  async findExportJobs(ids: readonly string[]): Promise<ExportJob[]> {
    const jobs: ExportJob[] = []
    // Below SQLite's bound on host parameters, whatever the folder holds.
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500)
      const rows = this.db.prepare<string[], ExportJobRow>(`SELECT * FROM export_jobs WHERE id IN (${chunk.map(() => '?').join(', ')})`).all(...chunk)
      for (const row of rows) jobs.push(exportJobOf(row))
    }
    return jobs
  }

  async expireExportJobs(nowMs: number, retentionMs: number): Promise<number> {
    return this.sql.expire.run({ now: nowMs, retention: retentionMs }).changes
  }

  async listExportJobs(orgId: string, teamId: string | undefined, limit: number): Promise<ExportJob[]> {
    return this.sql.list.all(orgId, teamId ?? null, teamId ?? null, limit).map(exportJobOf)
  }

  async claimExportJob(workerId: string, nowMs: number, leaseUntilMs: number, attemptsMax: number): Promise<ExportJob | undefined> {
    const row = this.claimTx.immediate(workerId, nowMs, leaseUntilMs, attemptsMax, attemptsExhausted(attemptsMax))
    return row && exportJobOf(row)
  }

  async teamExportBytes(orgId: string, teamId: string, exceptId: string): Promise<number> {
    return this.sql.teamBytes.get(orgId, teamId, exceptId)!.n
  }

  async updateExportProgress(id: string, workerId: string, p: ProgressUpdate): Promise<boolean> {
    return this.sql.progress.run({ id, worker: workerId, ...p }).changes === 1
  }

  async completeExportJob(id: string, workerId: string, result: { rowsWritten: number; bytes: number; atMs: number }): Promise<boolean> {
    return this.sql.complete.run({ id, worker: workerId, ...result }).changes === 1
  }

  async failExportJob(id: string, workerId: string, error: string, atMs: number): Promise<boolean> {
    return this.sql.fail.run({ id, worker: workerId, error, atMs }).changes === 1
  }

  async releaseExportJob(id: string, workerId: string): Promise<boolean> {
    return this.sql.release.run({ id, worker: workerId }).changes === 1
  }

  async openExportReader(selection: ExportSelection & { type: 'events' | 'ledger' }, pageSize: number): Promise<ExportReader> {
    if (this.path === ':memory:') throw new Error('exports read the store through a second connection: the SQLite store must be a file, not :memory:')
    const reader = new Database(this.path, { readonly: true, fileMustExist: true })
    reader.pragma(`busy_timeout = ${READER_BUSY_TIMEOUT_MS}`)
    const { where, params } = selectionWhere(selection)
    const [countSql, rowsSql] =
      selection.type === 'events'
        ? [`SELECT count(*) AS n FROM usage_events WHERE ${where}`, `SELECT * FROM usage_events WHERE ${where} ORDER BY at_ms, id`]
        : [`SELECT count(*) AS n FROM ${LEDGER_FROM} WHERE ${where}`, `SELECT ${LEDGER_SELECT} FROM ${LEDGER_FROM} WHERE ${where} ORDER BY e.at_ms, e.seq`]
    // One read transaction: the count and every page see the same snapshot.
    reader.exec('BEGIN')
    let rows: IterableIterator<Record<string, unknown>> | undefined
    return {
      async count() {
        return reader.prepare<unknown[], { n: number }>(countSql).get(...params)!.n
      },
      async *pages() {
        rows = reader.prepare<unknown[], Record<string, unknown>>(rowsSql).iterate(...params)
        let page: Record<string, unknown>[] = []
        for (const row of rows) {
          page.push(row)
          if (page.length >= pageSize) {
            yield page
            page = []
          }
        }
        if (page.length > 0) yield page
      },
      async close() {
        rows?.return?.()
        if (reader.inTransaction) reader.exec('COMMIT')
        reader.close()
      },
    }
  }
}
