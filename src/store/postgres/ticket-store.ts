/** TicketStore on PostgreSQL: resolution is one conditional UPDATE, so two approvers cannot both win. */
import type pg from 'pg'
import type { CostTicket, TicketResolution, TicketStatus, TicketStore } from '../../tickets/types.js'
import { ticketOf, type TicketRow } from '../rows/ticket.js'

export class PostgresTicketStore implements TicketStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(t: CostTicket): Promise<void> {
    await this.pool.query(
      `INSERT INTO cost_tickets (id, org_id, scope, team_id, request_id, consumer_name, model, estimate_micros, reason,
         status, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [t.id, t.orgId, t.scope, t.teamId ?? null, t.requestId, t.consumerName, t.model, t.estimateMicros, t.reason, t.status, t.createdAtMs, t.expiresAtMs],
    )
  }

  async get(id: string): Promise<CostTicket | undefined> {
    const row = (await this.pool.query<TicketRow>('SELECT * FROM cost_tickets WHERE id = $1', [id])).rows[0]
    return row && ticketOf(row)
  }

  async list(orgId: string, filter: { status: TicketStatus | undefined; teamId: string | undefined; limit: number }): Promise<CostTicket[]> {
    const params: unknown[] = [orgId]
    const where = ['org_id = $1']
    if (filter.status) where.push(`status = $${params.push(filter.status)}`)
    if (filter.teamId) where.push(`team_id = $${params.push(filter.teamId)}`)
    const limit = `$${params.push(filter.limit)}`
    const { rows } = await this.pool.query<TicketRow>(
      `SELECT * FROM cost_tickets WHERE ${where.join(' AND ')} ORDER BY created_at_ms DESC LIMIT ${limit}`,
      params,
    )
    return rows.map(ticketOf)
  }

  async resolve(id: string, change: Parameters<TicketStore['resolve']>[1]): Promise<TicketResolution> {
    const updated = await this.pool.query<TicketRow>(
      `UPDATE cost_tickets SET status = $1, resolved_at_ms = $2, resolved_by = $3, grant_micros = $4, note = $5
       WHERE id = $6 AND status = 'pending' AND expires_at_ms > $2 RETURNING *`,
      [change.status, change.atMs, change.by, change.grantMicros ?? null, change.note ?? null, id],
    )
    const row = updated.rows[0]
    if (row) return { kind: change.status, ticket: ticketOf(row) }
    const ticket = await this.get(id)
    return ticket ? { kind: 'already_resolved', ticket } : { kind: 'not_found' }
  }

  async expireOverdue(nowMs: number, limit: number): Promise<number> {
    const result = await this.pool.query(
      `UPDATE cost_tickets SET status = 'expired', resolved_at_ms = $1 WHERE id IN
         (SELECT id FROM cost_tickets WHERE status = 'pending' AND expires_at_ms <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [nowMs, limit],
    )
    return result.rowCount ?? 0
  }
}
