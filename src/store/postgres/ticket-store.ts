/** TicketStore on PostgreSQL: resolution is one conditional UPDATE, so two approvers cannot both win. */
import type pg from 'pg'
import type { CostTicket, TicketResolution, TicketStatus, TicketStore } from '../../tickets/types.js'
import { ticketOf, type TicketRow } from '../rows/ticket.js'

export class PostgresTicketStore implements TicketStore {
  constructor(private readonly pool: pg.Pool) {}

  async openOrJoin(t: CostTicket): Promise<{ ticket: CostTicket; joined: boolean }> {
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      await client.query(
        `UPDATE cost_tickets SET status = 'expired', resolved_at_ms = $5
         WHERE org_id = $1 AND scope = $2 AND coalesce(team_id, '') = coalesce($6, '') AND consumer_name = $3 AND reason = $4
           AND status = 'pending' AND expires_at_ms <= $5`,
        [t.orgId, t.scope, t.consumerName, t.reason, t.createdAtMs, t.teamId ?? null],
      )
      const { rows } = await client.query<TicketRow>(
        `INSERT INTO cost_tickets (id, org_id, scope, team_id, request_id, consumer_name, model, estimate_micros, reason,
           status, created_at_ms, expires_at_ms, refused_count, last_seen_at_ms, digest_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, 1, $10, 1)
         ON CONFLICT (org_id, scope, (coalesce(team_id, '')), consumer_name, reason) WHERE status = 'pending' DO UPDATE SET
           refused_count = cost_tickets.refused_count + 1, last_seen_at_ms = excluded.last_seen_at_ms,
           estimate_micros = GREATEST(cost_tickets.estimate_micros, excluded.estimate_micros)
         RETURNING *`,
        [t.id, t.orgId, t.scope, t.teamId ?? null, t.requestId, t.consumerName, t.model, t.estimateMicros, t.reason, t.createdAtMs, t.expiresAtMs],
      )
      await client.query('COMMIT')
      const ticket = ticketOf(rows[0]!)
      return { ticket, joined: ticket.id !== t.id }
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }

  async claimDigests(nowMs: number, quietMs: number, limit: number): Promise<Array<{ ticket: CostTicket; newRefusals: number }>> {
    const { rows } = await this.pool.query<TicketRow & { previous: number }>(
      `UPDATE cost_tickets t SET digest_count = t.refused_count, digest_at_ms = $1
       FROM (SELECT id, digest_count AS previous FROM cost_tickets
             WHERE status = 'pending' AND refused_count > digest_count AND coalesce(digest_at_ms, created_at_ms) <= $2
             ORDER BY created_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED) due
       WHERE t.id = due.id RETURNING t.*, due.previous`,
      [nowMs, nowMs - quietMs, limit],
    )
    return rows.map((row) => ({ ticket: ticketOf(row), newRefusals: (row.refused_count as number) - row.previous }))
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

  async expireOverdue(nowMs: number, limit: number): Promise<CostTicket[]> {
    const { rows } = await this.pool.query<TicketRow>(
      `UPDATE cost_tickets SET status = 'expired', resolved_at_ms = $1 WHERE id IN
         (SELECT id FROM cost_tickets WHERE status = 'pending' AND expires_at_ms <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [nowMs, limit],
    )
    return rows.map(ticketOf)
  }
}
