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
  {
    id: 'tickets-0002-join',
    sql: `
      -- Refusals of one scope and consumer join one pending ticket (one incident, one alert).
      ALTER TABLE cost_tickets ADD COLUMN refused_count INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE cost_tickets ADD COLUMN last_seen_at_ms BIGINT;
      ALTER TABLE cost_tickets ADD COLUMN digest_count INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE cost_tickets ADD COLUMN digest_at_ms BIGINT;
      UPDATE cost_tickets SET last_seen_at_ms = created_at_ms;
      UPDATE cost_tickets SET status = 'expired', resolved_at_ms = created_at_ms
        WHERE status = 'pending' AND id NOT IN
          (SELECT max(id) FROM cost_tickets WHERE status = 'pending' GROUP BY org_id, scope, consumer_name, reason);
      CREATE UNIQUE INDEX cost_tickets_open ON cost_tickets (org_id, scope, consumer_name, reason) WHERE status = 'pending';
    `,
  },
  {
    // A team's refusals join only its own team's ticket, even when two teams' consumers share a
    // name and both are refused against the org wallet.
    id: 'tickets-0003-team',
    sql: `
      DROP INDEX cost_tickets_open;
      CREATE UNIQUE INDEX cost_tickets_open ON cost_tickets (org_id, scope, ifnull(team_id, ''), consumer_name, reason) WHERE status = 'pending';
    `,
  },
]

export class SqliteTicketStore implements TicketStore {
  private readonly resolveTx
  private readonly openOrJoinTx
  private readonly claimDigestsTx
  private readonly expireTx

  constructor(private readonly db: SqliteDatabase) {
    const select = db.prepare<[string], TicketRow>('SELECT * FROM cost_tickets WHERE id = ?')
    const update = db.prepare(
      `UPDATE cost_tickets SET status = ?, resolved_at_ms = ?, resolved_by = ?, grant_micros = ?, note = ?
       WHERE id = ? AND status = 'pending'`,
    )
    this.resolveTx = db.transaction((id: string, change: Parameters<TicketStore['resolve']>[1]): TicketResolution => {
      const row = select.get(id)
      if (!row) return { kind: 'not_found' }
      const ticket = ticketOf(row)
      if (ticket.status !== 'pending' || ticket.expiresAtMs <= change.atMs) return { kind: 'already_resolved', ticket }
      update.run(change.status, change.atMs, change.by, change.grantMicros ?? null, change.note ?? null, id)
      return { kind: change.status, ticket: ticketOf(select.get(id)!) }
    })
    const expireStale = db.prepare(
      `UPDATE cost_tickets SET status = 'expired', resolved_at_ms = @now
       WHERE org_id = @orgId AND scope = @scope AND ifnull(team_id, '') = ifnull(@teamId, '') AND consumer_name = @consumer
         AND reason = @reason AND status = 'pending' AND expires_at_ms <= @now`,
    )
    const upsert = db.prepare<Record<string, unknown>, TicketRow>(
      `INSERT INTO cost_tickets (id, org_id, scope, team_id, request_id, consumer_name, model, estimate_micros, reason,
         status, created_at_ms, expires_at_ms, refused_count, last_seen_at_ms, digest_count)
       VALUES (@id, @orgId, @scope, @teamId, @requestId, @consumer, @model, @estimate, @reason, 'pending', @now, @expires, 1, @now, 1)
       ON CONFLICT (org_id, scope, ifnull(team_id, ''), consumer_name, reason) WHERE status = 'pending' DO UPDATE SET
         refused_count = refused_count + 1, last_seen_at_ms = excluded.last_seen_at_ms,
         estimate_micros = max(estimate_micros, excluded.estimate_micros)
       RETURNING *`,
    )
    this.openOrJoinTx = db.transaction((t: CostTicket) => {
      const params = {
        id: t.id,
        orgId: t.orgId,
        scope: t.scope,
        teamId: t.teamId ?? null,
        requestId: t.requestId,
        consumer: t.consumerName,
        model: t.model,
        estimate: t.estimateMicros,
        reason: t.reason,
        now: t.createdAtMs,
        expires: t.expiresAtMs,
      }
      expireStale.run(params)
      const ticket = ticketOf(upsert.get(params)!)
      return { ticket, joined: ticket.id !== t.id }
    })
    const due = db.prepare<[number, number], TicketRow>(
      `SELECT * FROM cost_tickets WHERE status = 'pending' AND refused_count > digest_count
         AND coalesce(digest_at_ms, created_at_ms) <= ? ORDER BY created_at_ms LIMIT ?`,
    )
    const markDigested = db.prepare('UPDATE cost_tickets SET digest_count = ?, digest_at_ms = ? WHERE id = ? AND digest_count = ?')
    this.claimDigestsTx = db.transaction((nowMs: number, quietMs: number, limit: number) =>
      due.all(nowMs - quietMs, limit).flatMap((row) => {
        const ticket = ticketOf(row)
        if (markDigested.run(ticket.refusedCount, nowMs, ticket.id, ticket.digestCount).changes !== 1) return []
        return [{ ticket, newRefusals: ticket.refusedCount - ticket.digestCount }]
      }),
    )
    const overdue = db.prepare<[number, number], TicketRow>(`SELECT * FROM cost_tickets WHERE status = 'pending' AND expires_at_ms <= ? LIMIT ?`)
    const expireOne = db.prepare(`UPDATE cost_tickets SET status = 'expired', resolved_at_ms = ? WHERE id = ? AND status = 'pending'`)
    this.expireTx = db.transaction((nowMs: number, limit: number) =>
      overdue
        .all(nowMs, limit)
        .flatMap((row) => (expireOne.run(nowMs, row.id).changes === 1 ? [ticketOf({ ...row, status: 'expired', resolved_at_ms: nowMs })] : [])),
    )
  }

  async openOrJoin(ticket: CostTicket): Promise<{ ticket: CostTicket; joined: boolean }> {
    return this.openOrJoinTx.immediate(ticket)
  }

  async claimDigests(nowMs: number, quietMs: number, limit: number) {
    return this.claimDigestsTx.immediate(nowMs, quietMs, limit)
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
      .prepare<Record<string, unknown>, TicketRow>(`SELECT * FROM cost_tickets WHERE ${where.join(' AND ')} ORDER BY created_at_ms DESC LIMIT @limit`)
      .all({ orgId, status: filter.status, teamId: filter.teamId, limit: filter.limit })
      .map(ticketOf)
  }

  async resolve(id: string, change: Parameters<TicketStore['resolve']>[1]): Promise<TicketResolution> {
    return this.resolveTx.immediate(id, change)
  }

  async expireOverdue(nowMs: number, limit: number): Promise<CostTicket[]> {
    return this.expireTx.immediate(nowMs, limit)
  }
}
