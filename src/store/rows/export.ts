/** export_jobs rows → ExportJob, and the WHERE clauses of an export's rows; shared by both SQL stores. */
import type { ExportFormat, ExportJob, ExportSelection, ExportStatus, ExportType } from '../../exports/types.js'

export interface ExportJobRow {
  id: string
  org_id: string
  type: string
  format: string
  from_ms: number
  to_ms: number
  team_id: string | null
  user_id: string | null
  created_by: string
  created_at_ms: number
  status: string
  rows_written: number
  rows_total: number | null
  bytes: number | null
  error: string | null
  worker_id: string | null
  lease_until_ms: number | null
  attempts: number
  started_at_ms: number | null
  completed_at_ms: number | null
  expired_at_ms: number | null
}

const opt = <T>(value: T | null): T | undefined => (value === null ? undefined : value)
const num = (value: number | null): number | undefined => (value === null ? undefined : Number(value))

export function exportJobOf(row: ExportJobRow): ExportJob {
  return {
    id: row.id,
    orgId: row.org_id,
    type: row.type as ExportType,
    format: row.format as ExportFormat,
    fromMs: Number(row.from_ms),
    toMs: Number(row.to_ms),
    scope: { teamId: opt(row.team_id), userId: opt(row.user_id) },
    createdBy: row.created_by,
    createdAtMs: Number(row.created_at_ms),
    status: row.status as ExportStatus,
    rowsWritten: Number(row.rows_written),
    rowsTotal: num(row.rows_total),
    bytes: num(row.bytes),
    error: opt(row.error),
    workerId: opt(row.worker_id),
    leaseUntilMs: num(row.lease_until_ms),
    attempts: Number(row.attempts),
    startedAtMs: num(row.started_at_ms),
    completedAtMs: num(row.completed_at_ms),
    expiredAtMs: num(row.expired_at_ms),
  }
}

/** The message a job gets when its process died once too often while writing it. */
export function attemptsExhausted(attemptsMax: number): string {
  return `the gateway process writing this export stopped ${attemptsMax} times before it finished; start a new export (a smaller range may help)`
}

/**
 * The filter of an events or ledger export with `?` placeholders (PostgreSQL callers renumber
 * them), in the order of `params`.
 */
export function selectionWhere(selection: ExportSelection): { where: string; params: unknown[] } {
  const { teamId, userId } = selection.scope
  if (selection.type === 'events') {
    const where = ['org_id = ?', 'at_ms >= ?', 'at_ms < ?']
    const params: unknown[] = [selection.orgId, selection.fromMs, selection.toMs]
    if (teamId !== undefined) {
      where.push('team_id = ?')
      params.push(teamId)
    }
    if (userId !== undefined) {
      where.push('user_id = ?')
      params.push(userId)
    }
    return { where: where.join(' AND '), params }
  }
  const where = ['w.org_id = ?', 'e.at_ms >= ?', 'e.at_ms < ?']
  const params: unknown[] = [selection.orgId, selection.fromMs, selection.toMs]
  if (teamId !== undefined) {
    where.push("((w.scope_kind = 'team' AND w.scope_id = ?) OR (w.scope_kind = 'user' AND w.team_id = ?))")
    params.push(teamId, teamId)
  }
  if (userId !== undefined) {
    where.push("w.scope_kind = 'user' AND w.scope_id = ?")
    params.push(userId)
  }
  return { where: where.join(' AND '), params }
}

/** Columns of a ledger export row: the entry and its wallet. */
export const LEDGER_SELECT =
  'e.seq, e.wallet_id, e.kind, e.amount_micros, e.reservation_id, e.description, e.at_ms, w.scope_kind, w.scope_id, w.team_id AS wallet_team_id'
export const LEDGER_FROM = 'ledger_entries e JOIN wallets w ON w.id = e.wallet_id'
