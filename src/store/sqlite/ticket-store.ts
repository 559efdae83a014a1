/** TicketStore on SQLite. */
import type { CostTicket, TicketResolution, TicketStatus, TicketStore } from '../../tickets/types.js'
import type { SqliteDatabase, SqliteMigration } from './db.js'
import { ticketOf, type TicketRow } from '../rows/ticket.js'

export const ticketMigrations: readonly SqliteMigration[] = [
  {
    id: 'tickets-0001',
    sql: `
      CREATE TABLE cost_tickets (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        team_id TEXT,
        request_id TEXT NOT NULL,
        consumer_name TEXT NOT NULL,
        model TEXT NOT NULL,
        estimate_micros INTEGER NOT NULL CHECK (estimate_micros >= 0),
        reason TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        resolved_at_ms INTEGER,
        resolved_by TEXT,
        grant_micros INTEGER CHECK (grant_micros >= 0),
        note TEXT
      );
      CREATE INDEX cost_tickets_org ON cost_tickets (org_id, created_at_ms);
      CREATE INDEX cost_tickets_pending ON cost_tickets (expires_at_ms) WHERE status = 'pending';
    `,
  },
]

export class SqliteTicketStore implements TicketStore {
  private readonly resolveTx

  constructor(private readonly db: SqliteDatabase) {
    const select = db.prepare<[string], TicketRow>('SELECT * FROM cost_tickets WHERE id = ?')
    const update = db.prepare(
      `UPDATE cost_tickets SET status = ?, resolved_at_ms = ?, resolved_by = ?, grant_micros = ?, note = ?
       WHERE id = ? AND status = 'pending'`,
    )
    this.resolveTx = db.transaction(
      (id: string, change: Parameters<TicketStore['resolve']>[1]): TicketResolution => {
        const row = select.get(id)
        if (!row) return { kind: 'not_found' }
        const ticket = ticketOf(row)
        if (ticket.status !== 'pending' || ticket.expiresAtMs <= change.atMs) return { kind: 'already_resolved', ticket }
        update.run(change.status, change.atMs, change.by, change.grantMicros ?? null, change.note ?? null, id)
        return { kind: change.status, ticket: ticketOf(select.get(id)!) }
      },
    )
  }

  async create(t: CostTicket): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO cost_tickets (id, org_id, scope, team_id, request_id, consumer_name, model, estimate_micros, reason,
           status, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(t.id, t.orgId, t.scope, t.teamId ?? null, t.requestId, t.consumerName, t.model, t.estimateMicros, t.reason, t.status, t.createdAtMs, t.expiresAtMs)
  }

  async get(id: string): Promise<CostTicket | undefined> {
    const row = this.db.prepare<[string], TicketRow>('SELECT * FROM cost_tickets WHERE id = ?').get(id)
    return row && ticketOf(row)
  }

  async list(orgId: string, filter: { status: TicketStatus | undefined; teamId: string | undefined; limit: number }) {
    const where = ['org_id = @orgId']
    if (filter.status) where.push('status = @status')
    if (filter.teamId) where.push('team_id = @teamId')
    return this.db
      .prepare<Record<string, unknown>, TicketRow>(
        `SELECT * FROM cost_tickets WHERE ${where.join(' AND ')} ORDER BY created_at_ms DESC LIMIT @limit`,
      )
      .all({ orgId, status: filter.status, teamId: filter.teamId, limit: filter.limit })
      .map(ticketOf)
  }

  async resolve(id: string, change: Parameters<TicketStore['resolve']>[1]): Promise<TicketResolution> {
    return this.resolveTx.immediate(id, change)
  }

  async expireOverdue(nowMs: number, limit: number): Promise<number> {
    return this.db
      .prepare(
        `UPDATE cost_tickets SET status = 'expired', resolved_at_ms = ? WHERE id IN
           (SELECT id FROM cost_tickets WHERE status = 'pending' AND expires_at_ms <= ? LIMIT ?)`,
      )
      .run(nowMs, nowMs, limit).changes
  }
}
