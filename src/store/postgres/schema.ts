/**
 * The PostgreSQL schema: the same tables as the SQLite store (column for column where they
 * overlap), plus what the Redis-backed ledger needs — `org_id` on budget counters (so an org's
 * counters can be rebuilt into Redis), an `emergency` flag on reservations served fail-open,
 * `journal_events` for idempotent replays, and `tg_journal_apply(jsonb)`, which applies one batch
 * of ledger journal events in one round trip.
 *
 * Journal events are idempotent and order-independent: a resolution that arrives before its
 * reservation (another process's journal was slower, or lost with a killed process) inserts the
 * final row and applies the net effect; the late reservation is then a no-op.
 */
import { rollupTableSql, rollupUpsertFromSql } from '../rows/usage-rollups.js'
import { exportJobsSchema, exportRetentionSchema } from './export-store.js'

/** First key of the journal's per-org advisory locks ('tolj'); the migration lock uses the one-key form. */
const JOURNAL_APPLY_LOCK_SPACE = 0x746f6c6a

export interface PostgresMigration {
  readonly id: string
  readonly sql: string
}

const ledger = `
  CREATE TABLE wallets (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('user', 'team', 'org')),
    scope_id TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    allocated_micros BIGINT NOT NULL CHECK (allocated_micros >= 0),
    -- reserved/spent mirror Redis through the journal; no cross-column CHECK here, because a
    -- failing constraint would jam the journal (Redis enforces available >= 0, and the
    -- reconciliation reports any drift).
    reserved_micros BIGINT NOT NULL DEFAULT 0,
    spent_micros BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (org_id, scope_kind, scope_id)
  );
  CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    wallet_id TEXT,
    scope TEXT,
    amount_micros BIGINT NOT NULL CHECK (amount_micros >= 0),
    status TEXT NOT NULL CHECK (status IN ('pending', 'settled', 'voided', 'expired')),
    settled_micros BIGINT CHECK (settled_micros >= 0),
    unbilled_micros BIGINT NOT NULL DEFAULT 0 CHECK (unbilled_micros >= 0),
    budgets_json JSONB NOT NULL,
    request_id TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    -- Served against a process's emergency allowance while Redis was unreachable (fail open).
    emergency BOOLEAN NOT NULL DEFAULT false,
    cascade_json JSONB,
    CHECK (status <> 'expired' OR settled_micros = amount_micros),
    CHECK (status <> 'voided' OR settled_micros = 0)
  );
  CREATE INDEX reservations_pending ON reservations (expires_at_ms) WHERE status = 'pending';
  CREATE INDEX reservations_org_pending ON reservations (org_id) WHERE status = 'pending';
  CREATE INDEX reservations_org_created ON reservations (org_id, created_at_ms);
  CREATE TABLE ledger_entries (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    wallet_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_micros BIGINT NOT NULL,
    reservation_id TEXT,
    description TEXT,
    at_ms BIGINT NOT NULL
  );
  CREATE INDEX ledger_entries_wallet ON ledger_entries (wallet_id, at_ms, seq);
  CREATE TABLE budget_counters (
    budget_id TEXT NOT NULL,
    period_key TEXT NOT NULL,
    org_id TEXT NOT NULL,
    reserved_micros BIGINT NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
    spent_micros BIGINT NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    period_end_ms BIGINT NOT NULL,
    PRIMARY KEY (budget_id, period_key)
  );
  CREATE INDEX budget_counters_org ON budget_counters (org_id, period_end_ms);
  CREATE TABLE journal_events (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL
  );
`

/*
 * Event shapes (built by src/store/redis/journal-events.ts):
 *   reserve: {kind, entryId, r}           r = reservation fields (id, orgId, walletId, scope, amount,
 *                                             budgets, requestId, createdAt, expiresAt, emergency, cascade)
 *   resolve: {kind, entryId, entryId2, wanted, r}   r also has status, settled, unbilled, resolvedAt
 *   spend:   {kind, eventId, orgId, amount, atMs, budgets}
 *   charge:  {kind, eventId, entryId, orgId, reservationId, walletId, charged, wanted, atMs, budgets}
 *            (an emergency reservation's cost applied to the wallet once Redis is back)
 */
const journalFunction = `
  CREATE OR REPLACE FUNCTION tg_counter_add(b jsonb, org text, reserved_delta bigint, spent_delta bigint) RETURNS void
  LANGUAGE plpgsql AS $fn$
  BEGIN
    INSERT INTO budget_counters (budget_id, period_key, org_id, reserved_micros, spent_micros, period_end_ms)
    VALUES (b->>'budgetId', b->>'periodKey', org, GREATEST(reserved_delta, 0), GREATEST(spent_delta, 0), (b->>'periodEndMs')::bigint)
    ON CONFLICT (budget_id, period_key) DO UPDATE SET
      reserved_micros = GREATEST(budget_counters.reserved_micros + reserved_delta, 0),
      spent_micros = GREATEST(budget_counters.spent_micros + spent_delta, 0);
  END
  $fn$;

  CREATE OR REPLACE FUNCTION tg_journal_apply(events jsonb) RETURNS integer
  LANGUAGE plpgsql AS $fn$
  DECLARE
    e jsonb; r jsonb; b jsonb; st text; n integer; applied integer := 0;
    amt bigint; charged bigint; wanted bigint; wid text; emergency boolean;
  BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(events) LOOP
      r := e->'r';
      IF e->>'kind' = 'reserve' THEN
        amt := (r->>'amount')::bigint; wid := r->>'walletId'; emergency := COALESCE((r->>'emergency')::boolean, false);
        INSERT INTO reservations (id, org_id, wallet_id, scope, amount_micros, status, unbilled_micros, budgets_json,
          request_id, created_at_ms, expires_at_ms, emergency, cascade_json)
        VALUES (r->>'id', r->>'orgId', wid, r->>'scope', amt, 'pending', 0, r->'budgets', r->>'requestId',
          (r->>'createdAt')::bigint, (r->>'expiresAt')::bigint, emergency, r->'cascade')
        ON CONFLICT (id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 1 AND NOT emergency THEN
          applied := applied + 1;
          IF wid IS NOT NULL THEN
            UPDATE wallets SET reserved_micros = reserved_micros + amt WHERE id = wid;
            INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
            VALUES (e->>'entryId', wid, 'reservation', -amt, r->>'id', (r->>'createdAt')::bigint) ON CONFLICT (id) DO NOTHING;
          END IF;
          FOR b IN SELECT value FROM jsonb_array_elements(r->'budgets') LOOP
            PERFORM tg_counter_add(b, r->>'orgId', amt, 0);
          END LOOP;
        END IF;
      ELSIF e->>'kind' = 'resolve' THEN
        amt := (r->>'amount')::bigint; charged := (r->>'settled')::bigint; wanted := (e->>'wanted')::bigint;
        wid := r->>'walletId'; emergency := COALESCE((r->>'emergency')::boolean, false);
        SELECT status INTO st FROM reservations WHERE id = r->>'id' FOR UPDATE;
        IF NOT FOUND THEN
          -- The reservation's own record never arrived (its process died first): apply the net effect.
          INSERT INTO reservations (id, org_id, wallet_id, scope, amount_micros, status, settled_micros, unbilled_micros,
            budgets_json, request_id, created_at_ms, expires_at_ms, resolved_at_ms, emergency, cascade_json)
          VALUES (r->>'id', r->>'orgId', wid, r->>'scope', amt, r->>'status', charged, (r->>'unbilled')::bigint,
            r->'budgets', r->>'requestId', (r->>'createdAt')::bigint, (r->>'expiresAt')::bigint,
            (r->>'resolvedAt')::bigint, emergency, r->'cascade');
          IF NOT emergency THEN
            applied := applied + 1;
            IF wid IS NOT NULL THEN
              UPDATE wallets SET spent_micros = spent_micros + charged WHERE id = wid;
              INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
              VALUES (e->>'entryId2', wid, 'reservation', -amt, r->>'id', (r->>'createdAt')::bigint) ON CONFLICT (id) DO NOTHING;
              INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
              VALUES (e->>'entryId', wid, e->>'entryKind', amt - charged, r->>'id', (r->>'resolvedAt')::bigint) ON CONFLICT (id) DO NOTHING;
            END IF;
            FOR b IN SELECT value FROM jsonb_array_elements(r->'budgets') LOOP
              PERFORM tg_counter_add(b, r->>'orgId', 0, wanted);
            END LOOP;
          END IF;
        ELSIF st = 'pending' THEN
          UPDATE reservations SET status = r->>'status', settled_micros = charged, unbilled_micros = (r->>'unbilled')::bigint,
            resolved_at_ms = (r->>'resolvedAt')::bigint WHERE id = r->>'id';
          IF NOT emergency THEN
            applied := applied + 1;
            IF wid IS NOT NULL THEN
              UPDATE wallets SET reserved_micros = reserved_micros - amt, spent_micros = spent_micros + charged WHERE id = wid;
              INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
              VALUES (e->>'entryId', wid, e->>'entryKind', amt - charged, r->>'id', (r->>'resolvedAt')::bigint) ON CONFLICT (id) DO NOTHING;
            END IF;
            FOR b IN SELECT value FROM jsonb_array_elements(r->'budgets') LOOP
              PERFORM tg_counter_add(b, r->>'orgId', -amt, wanted);
            END LOOP;
          END IF;
        END IF;
      ELSIF e->>'kind' IN ('spend', 'charge') THEN
        INSERT INTO journal_events (id, at_ms) VALUES (e->>'eventId', (e->>'atMs')::bigint) ON CONFLICT (id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 1 THEN
          applied := applied + 1;
          wid := e->>'walletId';
          IF e->>'kind' = 'charge' AND wid IS NOT NULL THEN
            UPDATE wallets SET spent_micros = spent_micros + (e->>'charged')::bigint WHERE id = wid;
            INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, description, at_ms)
            VALUES (e->>'entryId', wid, 'spend', -(e->>'charged')::bigint, e->>'reservationId',
              'served while the counter store was unreachable (fail open)', (e->>'atMs')::bigint) ON CONFLICT (id) DO NOTHING;
            UPDATE reservations SET wallet_id = wid, scope = e->>'scope' WHERE id = e->>'reservationId';
          END IF;
          FOR b IN SELECT value FROM jsonb_array_elements(e->'budgets') LOOP
            PERFORM tg_counter_add(b, e->>'orgId', 0, COALESCE((e->>'wanted')::bigint, (e->>'amount')::bigint));
          END LOOP;
        END IF;
      END IF;
    END LOOP;
    RETURN applied;
  END
  $fn$;
`

const usage = `
  CREATE TABLE usage_events (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    org_id TEXT NOT NULL,
    team_id TEXT,
    user_id TEXT,
    agent_id TEXT,
    key_name TEXT,
    endpoint_tag TEXT,
    prompt_version TEXT,
    environment TEXT NOT NULL,
    provider TEXT NOT NULL,
    target_id TEXT,
    model_requested TEXT NOT NULL,
    model_served TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    audio_input_tokens BIGINT NOT NULL,
    audio_output_tokens BIGINT NOT NULL,
    usage_source TEXT NOT NULL,
    cost_micros BIGINT NOT NULL CHECK (cost_micros >= 0),
    price_source TEXT NOT NULL,
    latency_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    is_stream INTEGER NOT NULL,
    decision TEXT NOT NULL,
    reservation_id TEXT,
    wallet_id TEXT,
    data_mode TEXT NOT NULL,
    source TEXT NOT NULL,
    external_request_id TEXT
  );
  CREATE INDEX usage_events_org_at ON usage_events (org_id, at_ms);
  CREATE INDEX usage_events_team_at ON usage_events (team_id, at_ms);
  CREATE UNIQUE INDEX usage_events_external ON usage_events (org_id, external_request_id)
    WHERE external_request_id IS NOT NULL;
`

const tickets = `
  CREATE TABLE cost_tickets (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    team_id TEXT,
    request_id TEXT NOT NULL,
    consumer_name TEXT NOT NULL,
    model TEXT NOT NULL,
    estimate_micros BIGINT NOT NULL CHECK (estimate_micros >= 0),
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    resolved_by TEXT,
    grant_micros BIGINT CHECK (grant_micros >= 0),
    note TEXT
  );
  CREATE INDEX cost_tickets_org ON cost_tickets (org_id, created_at_ms);
  CREATE INDEX cost_tickets_pending ON cost_tickets (expires_at_ms) WHERE status = 'pending';
`

const idempotency = `
  CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'done')),
    response_json TEXT,
    expires_at_ms BIGINT NOT NULL
  );
`

const auth = `
  CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    org_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'team_admin', 'viewer')),
    team_id TEXT,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
  );
  CREATE TABLE consumer_keys (
    key_hash TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    consumer_json TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
  );
`

const budgets = `
  CREATE TABLE budgets (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    scope_kind TEXT NOT NULL
      CHECK (scope_kind IN ('org', 'team', 'user', 'agent', 'key', 'endpoint', 'model', 'provider')),
    scope_id TEXT NOT NULL,
    environment TEXT,
    period TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly')),
    timezone TEXT NOT NULL,
    amount_micros BIGINT NOT NULL CHECK (amount_micros > 0),
    alert_thresholds_json TEXT NOT NULL,
    threshold_actions_json TEXT NOT NULL,
    hard_limit INTEGER NOT NULL CHECK (hard_limit IN (0, 1)),
    shadow INTEGER NOT NULL CHECK (shadow IN (0, 1)),
    categories_json TEXT NOT NULL,
    owner TEXT,
    channels_json TEXT,
    source TEXT NOT NULL CHECK (source IN ('config', 'api')),
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (org_id, name)
  );
  CREATE TABLE fired_thresholds (
    dedupe_key TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    fired_at_ms BIGINT NOT NULL
  );
  CREATE INDEX fired_thresholds_subject ON fired_thresholds (subject_id);
`

const notify = `
  CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    type TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    data_json TEXT NOT NULL,
    read_at_ms BIGINT
  );
  CREATE INDEX notifications_org_id ON notifications (org_id, id);
  CREATE TABLE notify_outbox (
    id TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at_ms BIGINT NOT NULL,
    lease_until_ms BIGINT,
    lease_token TEXT,
    last_error TEXT,
    created_at_ms BIGINT NOT NULL,
    delivered_at_ms BIGINT,
    UNIQUE (notification_id, channel_id)
  );
  CREATE INDEX notify_outbox_due ON notify_outbox (status, next_attempt_at_ms);
  CREATE TABLE notification_preferences (
    org_id TEXT NOT NULL,
    subject_type TEXT NOT NULL CHECK (subject_type IN ('user', 'role')),
    subject_id TEXT NOT NULL,
    channels_json TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (org_id, subject_type, subject_id)
  );
`

/** In order; ids are never renamed once shipped. */
const sessions = `
  CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'team_admin', 'viewer')),
    team_id TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
  );
  CREATE INDEX console_sessions_expiry ON console_sessions (expires_at_ms);
`

/**
 * Hourly and daily sums per dimension (src/store/rows/usage-rollups.ts). A statement trigger adds
 * each INSERT's new rows (only those inserted: ON CONFLICT DO NOTHING skips are not in the
 * transition table) in the same transaction, aggregated once per statement; the migration builds
 * them from the events already stored.
 */
const usageRollupsApply = `
  CREATE OR REPLACE FUNCTION usage_rollups_apply() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    ${rollupUpsertFromSql('inserted_events')};
    RETURN NULL;
  END
  $fn$;
`
const usageRollups = `
  ${rollupTableSql()}
  ${usageRollupsApply}
  CREATE TRIGGER usage_rollups_on_insert AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS inserted_events FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_apply();
  ${rollupUpsertFromSql('usage_events')};
`

/**
 * Every gateway process drains journal entries, so batches of one org are applied at once by
 * several processes. Two of them touch the same wallets and counters in different orders (a
 * deadlock), or one resolves a reservation whose row another has inserted but not committed (a
 * unique violation, which failed the whole batch). Applying takes a transaction-scoped advisory
 * lock per org first, in key order, so one org's batches are applied one after another; different
 * orgs still go in parallel. The body stays as it was, renamed: a later change to it redefines
 * `tg_journal_apply_unlocked`.
 */
const journalApplyPerOrg = `
  ALTER FUNCTION tg_journal_apply(jsonb) RENAME TO tg_journal_apply_unlocked;
  CREATE FUNCTION tg_journal_apply(events jsonb) RETURNS integer
  LANGUAGE plpgsql AS $fn$
  DECLARE k integer;
  BEGIN
    FOR k IN
      SELECT DISTINCT hashtext(COALESCE(value->'r'->>'orgId', value->>'orgId')) FROM jsonb_array_elements(events) ORDER BY 1
    LOOP
      PERFORM pg_advisory_xact_lock(${JOURNAL_APPLY_LOCK_SPACE}, k);
    END LOOP;
    RETURN tg_journal_apply_unlocked(events);
  END
  $fn$;
`

/**
 * A batch was applied event by event: five or so statements per call, each a fresh executor run
 * that parses the table's CHECK constraints again, and one update of the wallet row (and of each
 * budget counter) per event — a thousand calls of one team rewrote one row a thousand times in one
 * transaction. perf put most of PostgreSQL's CPU under the Redis + PostgreSQL bench there.
 *
 * Now a batch is applied as sets: which reservations are new, resolved or already done is worked
 * out from the stored rows and the batch's own order, then reservations are inserted and updated,
 * ledger entries inserted, and each wallet and counter written once with its net change, a few
 * statements per batch. The event-by-event form (ledger-0005's, unchanged) stays as
 * `tg_journal_apply_stepwise`, for batches holding a fail-open charge (it rewrites its
 * reservation's payer, so its place among that reservation's events matters) and as the reference
 * the set form is tested against (test/integration/journal-apply.test.ts). The counter floor at
 * zero (`tg_counter_add`) applies to the batch's net change: the same result whenever no step on
 * the way went below zero, which journaled moves never do (a resolution only releases what its
 * reservation added).
 *
 * ledger-0009 takes out two costs of the first set form (a 1,000-event batch of the peer bench,
 * timed alone: 32–33 ms before, 23 after, the same rows written). Each reservation's first
 * event and first resolution were taken by aggregating whole events into arrays (copied and
 * sorted) and keeping element 1; their places in the batch (min(ord)) and a join back find the
 * same events. And the moves went from statement to statement as a jsonb array built object by
 * object, every number turned to text and parsed back; an array of a composite type keeps them
 * typed. (The first form also looked for a reservation's first resolution after its
 * reservation: for a reservation whose first event is its reservation that is its first
 * resolution, and the others do not use it.)
 */
const journalMoveType = `
  -- One money move of a batch, as tg_journal_apply_unlocked passes its moves from one statement to
  -- the next: typed columns, where a jsonb array had every value turned to text and parsed back.
  DO $$ BEGIN
    CREATE TYPE tg_journal_move AS (ord bigint, sub integer, counts boolean, entry text, entry_kind text, wallet text,
      reservation text, org text, budgets jsonb, reserved bigint, spent bigint, wanted bigint, entry_amount bigint, at bigint);
  EXCEPTION WHEN duplicate_object THEN NULL;
  END $$;
`

const journalApplyNetFunction = `
  CREATE OR REPLACE FUNCTION tg_journal_apply_unlocked(events jsonb) RETURNS integer
  LANGUAGE plpgsql AS $fn$
  DECLARE
    moves tg_journal_move[]; new_spends text[]; b jsonb; org text; d_reserved bigint; d_spent bigint;
  BEGIN
    -- A fail-open charge rewrites its reservation's payer, so where it stands among that
    -- reservation's events matters: a batch holding one is applied event by event.
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(events) AS t(e) WHERE (t.e->>'kind') IS DISTINCT FROM 'reserve'
        AND (t.e->>'kind') IS DISTINCT FROM 'resolve' AND (t.e->>'kind') IS DISTINCT FROM 'spend') THEN
      RETURN tg_journal_apply_stepwise(events);
    END IF;

    -- What applying the events in order does to each reservation the batch names:
    --   new:     not stored, its first event is its reservation: stored pending, then resolved by
    --            the first resolution after that reservation, if any;
    --   lost:    not stored, its first event is a resolution (its reservation never arrived): that
    --            resolution is stored and stands for both;
    --   resolve: stored and pending: its first resolution applies.
    -- Every other event the batch holds for it changes nothing.
    WITH ev AS (
      SELECT t.ord, t.e, t.e->>'kind' AS kind, t.e->'r'->>'id' AS id
      FROM jsonb_array_elements(events) WITH ORDINALITY AS t(e, ord)
      WHERE t.e->>'kind' IN ('reserve', 'resolve')
    ),
    -- Where each reservation's first event and first resolution stand in the batch, not the events
    -- themselves: copying every event into arrays to take their first was half of this
    -- statement's time. A reservation whose first event is its reservation has every resolution
    -- after it, so its first resolution is the one that resolves it.
    picked AS (
      SELECT id, min(ord) AS first_ord, min(ord) FILTER (WHERE kind = 'resolve') AS first_s_ord
      FROM ev GROUP BY id
    ),
    stored AS (
      SELECT x.id, x.status FROM reservations AS x WHERE x.id IN (SELECT id FROM picked) ORDER BY x.id FOR UPDATE
    ),
    plan AS (
      SELECT c.how, c.r, c.r_ord, c.s, c.s_ord FROM (
        SELECT
          CASE WHEN x.id IS NULL AND fe.kind = 'reserve' THEN 'new'
               WHEN x.id IS NULL THEN 'lost'
               WHEN x.status = 'pending' AND p.first_s_ord IS NOT NULL THEN 'resolve' END AS how,
          CASE WHEN x.id IS NULL AND fe.kind = 'reserve' THEN fe.e END AS r,
          p.first_ord AS r_ord,
          fs.e AS s,
          p.first_s_ord AS s_ord
        FROM picked AS p
          JOIN ev AS fe ON fe.ord = p.first_ord
          LEFT JOIN ev AS fs ON fs.ord = p.first_s_ord
          LEFT JOIN stored AS x ON x.id = p.id
      ) AS c
      WHERE c.how IS NOT NULL
    ),
    stored_new AS (
      INSERT INTO reservations (id, org_id, wallet_id, scope, amount_micros, status, settled_micros, unbilled_micros,
        budgets_json, request_id, created_at_ms, expires_at_ms, resolved_at_ms, emergency, cascade_json, context_json)
      SELECT base->>'id', base->>'orgId', base->>'walletId', base->>'scope', (base->>'amount')::bigint,
        COALESCE(fin->>'status', 'pending'), (fin->>'settled')::bigint, COALESCE((fin->>'unbilled')::bigint, 0),
        base->'budgets', base->>'requestId', (base->>'createdAt')::bigint, (base->>'expiresAt')::bigint,
        (fin->>'resolvedAt')::bigint, COALESCE((base->>'emergency')::boolean, false), base->'cascade', base->>'context'
      FROM (SELECT COALESCE(plan.r, plan.s)->'r' AS base, plan.s->'r' AS fin FROM plan WHERE plan.how IN ('new', 'lost')) AS q
      RETURNING 1
    ),
    stored_resolved AS (
      UPDATE reservations AS x SET status = q.fin->>'status', settled_micros = (q.fin->>'settled')::bigint,
        unbilled_micros = (q.fin->>'unbilled')::bigint, resolved_at_ms = (q.fin->>'resolvedAt')::bigint
      FROM (SELECT plan.s->'r' AS fin FROM plan WHERE plan.how = 'resolve') AS q
      WHERE x.id = q.fin->>'id'
      RETURNING 1
    ),
    -- The money each applied event moves, in journal order: a reservation (wallet and counters
    -- reserve its amount); a resolution (the reservation's amount released, the wallet charged
    -- what was settled, the counters what was wanted); for a lost reservation, its resolution
    -- alone, after a ledger entry for the reservation that never arrived. Fail-open (emergency)
    -- reservations move no money.
    money AS (
      SELECT plan.r_ord AS ord, 0 AS sub, true AS counts, plan.r->>'entryId' AS entry, 'reservation' AS entry_kind,
        plan.r->'r' AS rr, (plan.r->'r'->>'amount')::bigint AS reserved, 0::bigint AS spent, 0::bigint AS wanted,
        -(plan.r->'r'->>'amount')::bigint AS entry_amount, (plan.r->'r'->>'createdAt')::bigint AS at
      FROM plan WHERE plan.how = 'new' AND NOT COALESCE((plan.r->'r'->>'emergency')::boolean, false)
      UNION ALL
      SELECT plan.s_ord, 1, true, plan.s->>'entryId', plan.s->>'entryKind', plan.s->'r',
        CASE WHEN plan.how = 'lost' THEN 0 ELSE -(plan.s->'r'->>'amount')::bigint END, (plan.s->'r'->>'settled')::bigint,
        (plan.s->>'wanted')::bigint, (plan.s->'r'->>'amount')::bigint - (plan.s->'r'->>'settled')::bigint,
        (plan.s->'r'->>'resolvedAt')::bigint
      FROM plan WHERE plan.s IS NOT NULL AND NOT COALESCE((plan.s->'r'->>'emergency')::boolean, false)
      UNION ALL
      SELECT plan.s_ord, 0, false, plan.s->>'entryId2', 'reservation', plan.s->'r', 0, 0, 0,
        -(plan.s->'r'->>'amount')::bigint, (plan.s->'r'->>'createdAt')::bigint
      FROM plan WHERE plan.how = 'lost' AND NOT COALESCE((plan.s->'r'->>'emergency')::boolean, false)
    )
    SELECT COALESCE(array_agg(ROW(ord, sub, counts, entry, entry_kind, rr->>'walletId', rr->>'id', rr->>'orgId',
        CASE WHEN counts THEN rr->'budgets' ELSE '[]'::jsonb END, reserved, spent, wanted, entry_amount, at)::tg_journal_move), '{}')
    INTO moves
    FROM money;

    INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
    SELECT mv.entry, mv.wallet, mv.entry_kind, mv.entry_amount, mv.reservation, mv.at
    FROM unnest(moves) AS mv
    WHERE mv.wallet IS NOT NULL
    ORDER BY mv.ord, mv.sub
    ON CONFLICT (id) DO NOTHING;

    -- One org's batches never run at once (tg_journal_apply's lock), so no two wait on each other here.
    UPDATE wallets AS w SET reserved_micros = w.reserved_micros + d.reserved, spent_micros = w.spent_micros + d.spent
    FROM (
      SELECT mv.wallet AS id, sum(mv.reserved)::bigint AS reserved, sum(mv.spent)::bigint AS spent
      FROM unnest(moves) AS mv WHERE mv.wallet IS NOT NULL GROUP BY mv.wallet
    ) AS d
    WHERE w.id = d.id;

    -- Spend without a reservation, once per event id ever.
    WITH firsts AS (
      SELECT DISTINCT ON (t.e->>'eventId') t.e->>'eventId' AS id, (t.e->>'atMs')::bigint AS at
      FROM jsonb_array_elements(events) WITH ORDINALITY AS t(e, ord) WHERE t.e->>'kind' = 'spend'
      ORDER BY t.e->>'eventId', t.ord
    ),
    fresh AS (INSERT INTO journal_events (id, at_ms) SELECT id, at FROM firsts ON CONFLICT (id) DO NOTHING RETURNING id)
    SELECT COALESCE(array_agg(id), '{}') INTO new_spends FROM fresh;

    FOR b, org, d_reserved, d_spent IN
      SELECT (array_agg(c.ref))[1], (array_agg(c.org))[1], sum(c.reserved)::bigint, sum(c.spent)::bigint
      FROM (
        SELECT bb.value AS ref, mv.org AS org, mv.reserved AS reserved, mv.wanted AS spent
        FROM unnest(moves) AS mv, jsonb_array_elements(mv.budgets) AS bb
        UNION ALL
        SELECT bb.value, s.e->>'orgId', 0, COALESCE((s.e->>'wanted')::bigint, (s.e->>'amount')::bigint)
        FROM (
          SELECT DISTINCT ON (t.e->>'eventId') t.e FROM jsonb_array_elements(events) WITH ORDINALITY AS t(e, ord)
          WHERE t.e->>'kind' = 'spend' AND t.e->>'eventId' = ANY (new_spends) ORDER BY t.e->>'eventId', t.ord
        ) AS s, jsonb_array_elements(s.e->'budgets') AS bb
      ) AS c
      GROUP BY c.ref->>'budgetId', c.ref->>'periodKey'
    LOOP
      PERFORM tg_counter_add(b, org, d_reserved, d_spent);
    END LOOP;

    RETURN (SELECT count(*) FROM unnest(moves) AS mv WHERE mv.counts)::integer
      + cardinality(new_spends);
  END
  $fn$;
`

const journalApplyNet = `
  ALTER FUNCTION tg_journal_apply_unlocked(jsonb) RENAME TO tg_journal_apply_stepwise;
  ${journalMoveType}
  ${journalApplyNetFunction}
`

export const postgresMigrations: readonly PostgresMigration[] = [
  { id: 'ledger-0001', sql: ledger },
  { id: 'ledger-0002-journal', sql: journalFunction },
  { id: 'usage-0001-events', sql: usage },
  { id: 'tickets-0001', sql: tickets },
  { id: 'idempotency-0001', sql: idempotency },
  { id: 'auth-0001', sql: auth },
  {
    id: 'ledger-0003-dead-letters',
    sql: `
      -- A journal event PostgreSQL rejects on its own (a data or constraint error, i.e. a bug) is
      -- parked here with the error instead of blocking every event behind it; reconciliation then
      -- reports the drift it leaves.
      CREATE TABLE journal_dead_letters (
        seq BIGSERIAL PRIMARY KEY,
        event JSONB NOT NULL,
        error TEXT NOT NULL,
        at_ms BIGINT NOT NULL
      );
    `,
  },
  { id: 'budgets-0001-budgets-fired-thresholds', sql: budgets },
  { id: 'notify-0001-notifications-outbox-preferences', sql: notify },
  {
    // Keys and tokens get an id to list and revoke them by; keys carry their org as a column.
    id: 'auth-0002-revocation',
    sql: `
      ALTER TABLE admin_tokens ADD COLUMN revoked_at_ms BIGINT;
      ALTER TABLE consumer_keys ADD COLUMN id TEXT;
      ALTER TABLE consumer_keys ADD COLUMN org_id TEXT;
      ALTER TABLE consumer_keys ADD COLUMN revoked_at_ms BIGINT;
      UPDATE consumer_keys SET id = 'ck_' || substr(key_hash, 1, 26), org_id = (consumer_json::jsonb ->> 'orgId');
      CREATE UNIQUE INDEX consumer_keys_id ON consumer_keys (id);
      CREATE INDEX consumer_keys_org ON consumer_keys (org_id, created_at_ms);
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
    id: 'ledger-0004-wallet-team-reservation-context',
    sql: `
      ALTER TABLE wallets ADD COLUMN team_id TEXT;
      ALTER TABLE reservations ADD COLUMN context_json TEXT;
    `,
  },
  {
    // Events now come from the Redis journal streams (numbers as decimal strings) and carry a
    // direct reservation's context.
    id: 'ledger-0005-journal-context',
    sql: `
  CREATE OR REPLACE FUNCTION tg_counter_add(b jsonb, org text, reserved_delta bigint, spent_delta bigint) RETURNS void
  LANGUAGE plpgsql AS $fn$
  BEGIN
    INSERT INTO budget_counters (budget_id, period_key, org_id, reserved_micros, spent_micros, period_end_ms)
    VALUES (b->>'budgetId', b->>'periodKey', org, GREATEST(reserved_delta, 0), GREATEST(spent_delta, 0), (b->>'periodEndMs')::bigint)
    ON CONFLICT (budget_id, period_key) DO UPDATE SET
      reserved_micros = GREATEST(budget_counters.reserved_micros + reserved_delta, 0),
      spent_micros = GREATEST(budget_counters.spent_micros + spent_delta, 0);
  END
  $fn$;

  CREATE OR REPLACE FUNCTION tg_journal_apply(events jsonb) RETURNS integer
  LANGUAGE plpgsql AS $fn$
  DECLARE
    e jsonb; r jsonb; b jsonb; st text; n integer; applied integer := 0;
    amt bigint; charged bigint; wanted bigint; wid text; emergency boolean;
  BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(events) LOOP
      r := e->'r';
      IF e->>'kind' = 'reserve' THEN
        amt := (r->>'amount')::bigint; wid := r->>'walletId'; emergency := COALESCE((r->>'emergency')::boolean, false);
        INSERT INTO reservations (id, org_id, wallet_id, scope, amount_micros, status, unbilled_micros, budgets_json,
          request_id, created_at_ms, expires_at_ms, emergency, cascade_json, context_json)
        VALUES (r->>'id', r->>'orgId', wid, r->>'scope', amt, 'pending', 0, r->'budgets', r->>'requestId',
          (r->>'createdAt')::bigint, (r->>'expiresAt')::bigint, emergency, r->'cascade', r->>'context')
        ON CONFLICT (id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 1 AND NOT emergency THEN
          applied := applied + 1;
          IF wid IS NOT NULL THEN
            UPDATE wallets SET reserved_micros = reserved_micros + amt WHERE id = wid;
            INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
            VALUES (e->>'entryId', wid, 'reservation', -amt, r->>'id', (r->>'createdAt')::bigint) ON CONFLICT (id) DO NOTHING;
          END IF;
          FOR b IN SELECT value FROM jsonb_array_elements(r->'budgets') LOOP
            PERFORM tg_counter_add(b, r->>'orgId', amt, 0);
          END LOOP;
        END IF;
      ELSIF e->>'kind' = 'resolve' THEN
        amt := (r->>'amount')::bigint; charged := (r->>'settled')::bigint; wanted := (e->>'wanted')::bigint;
        wid := r->>'walletId'; emergency := COALESCE((r->>'emergency')::boolean, false);
        SELECT status INTO st FROM reservations WHERE id = r->>'id' FOR UPDATE;
        IF NOT FOUND THEN
          -- The reservation's own record never arrived (its process died first): apply the net effect.
          INSERT INTO reservations (id, org_id, wallet_id, scope, amount_micros, status, settled_micros, unbilled_micros,
            budgets_json, request_id, created_at_ms, expires_at_ms, resolved_at_ms, emergency, cascade_json, context_json)
          VALUES (r->>'id', r->>'orgId', wid, r->>'scope', amt, r->>'status', charged, (r->>'unbilled')::bigint,
            r->'budgets', r->>'requestId', (r->>'createdAt')::bigint, (r->>'expiresAt')::bigint,
            (r->>'resolvedAt')::bigint, emergency, r->'cascade', r->>'context');
          IF NOT emergency THEN
            applied := applied + 1;
            IF wid IS NOT NULL THEN
              UPDATE wallets SET spent_micros = spent_micros + charged WHERE id = wid;
              INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
              VALUES (e->>'entryId2', wid, 'reservation', -amt, r->>'id', (r->>'createdAt')::bigint) ON CONFLICT (id) DO NOTHING;
              INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
              VALUES (e->>'entryId', wid, e->>'entryKind', amt - charged, r->>'id', (r->>'resolvedAt')::bigint) ON CONFLICT (id) DO NOTHING;
            END IF;
            FOR b IN SELECT value FROM jsonb_array_elements(r->'budgets') LOOP
              PERFORM tg_counter_add(b, r->>'orgId', 0, wanted);
            END LOOP;
          END IF;
        ELSIF st = 'pending' THEN
          UPDATE reservations SET status = r->>'status', settled_micros = charged, unbilled_micros = (r->>'unbilled')::bigint,
            resolved_at_ms = (r->>'resolvedAt')::bigint WHERE id = r->>'id';
          IF NOT emergency THEN
            applied := applied + 1;
            IF wid IS NOT NULL THEN
              UPDATE wallets SET reserved_micros = reserved_micros - amt, spent_micros = spent_micros + charged WHERE id = wid;
              INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
              VALUES (e->>'entryId', wid, e->>'entryKind', amt - charged, r->>'id', (r->>'resolvedAt')::bigint) ON CONFLICT (id) DO NOTHING;
            END IF;
            FOR b IN SELECT value FROM jsonb_array_elements(r->'budgets') LOOP
              PERFORM tg_counter_add(b, r->>'orgId', -amt, wanted);
            END LOOP;
          END IF;
        END IF;
      ELSIF e->>'kind' IN ('spend', 'charge') THEN
        INSERT INTO journal_events (id, at_ms) VALUES (e->>'eventId', (e->>'atMs')::bigint) ON CONFLICT (id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 1 THEN
          applied := applied + 1;
          wid := e->>'walletId';
          IF e->>'kind' = 'charge' AND wid IS NOT NULL THEN
            UPDATE wallets SET spent_micros = spent_micros + (e->>'charged')::bigint WHERE id = wid;
            INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, description, at_ms)
            VALUES (e->>'entryId', wid, 'spend', -(e->>'charged')::bigint, e->>'reservationId',
              'served while the counter store was unreachable (fail open)', (e->>'atMs')::bigint) ON CONFLICT (id) DO NOTHING;
            UPDATE reservations SET wallet_id = wid, scope = e->>'scope' WHERE id = e->>'reservationId';
          END IF;
          FOR b IN SELECT value FROM jsonb_array_elements(e->'budgets') LOOP
            PERFORM tg_counter_add(b, e->>'orgId', 0, COALESCE((e->>'wanted')::bigint, (e->>'amount')::bigint));
          END LOOP;
        END IF;
      END IF;
    END LOOP;
    RETURN applied;
  END
  $fn$;
`,
  },
  { id: 'notify-0002-team', sql: `ALTER TABLE notifications ADD COLUMN team_id TEXT` },
  { id: 'budgets-0002-scope-team', sql: `ALTER TABLE budgets ADD COLUMN scope_team_id TEXT` },
  { id: 'budgets-0003-counter-epoch', sql: `ALTER TABLE budgets ADD COLUMN counter_epoch_ms BIGINT NOT NULL DEFAULT 0` },
  {
    id: 'usage-0002-cost-detail',
    sql: `
      -- How each event's cost was made, and 1-hour cache writes apart from the 5-minute ones.
      ALTER TABLE usage_events ADD COLUMN cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0;
      ALTER TABLE usage_events ADD COLUMN usage_note TEXT;
      ALTER TABLE usage_events ADD COLUMN cost_breakdown_json TEXT;
  `,
  },
  { id: 'changes-0001-versions', sql: `CREATE TABLE change_versions (topic TEXT PRIMARY KEY, version BIGINT NOT NULL)` },
  { id: 'sessions-0001-console-sessions', sql: sessions },
  // What an ingested event's sender said it cost (POST /v1/events `costUsd`), beside the catalogue's price.
  { id: 'usage-0003-reported-cost', sql: `ALTER TABLE usage_events ADD COLUMN reported_cost_micros BIGINT CHECK (reported_cost_micros >= 0)` },
  {
    id: 'notify-0003-ack-escalation',
    sql: `
      ALTER TABLE notifications ADD COLUMN acked_at_ms BIGINT;
      ALTER TABLE notifications ADD COLUMN escalate_at_ms BIGINT;
      ALTER TABLE notifications ADD COLUMN escalated_at_ms BIGINT;
      ALTER TABLE notifications ADD COLUMN escalation_channels_json TEXT;
      CREATE INDEX notifications_escalation_due ON notifications (escalate_at_ms)
        WHERE escalate_at_ms IS NOT NULL AND escalated_at_ms IS NULL AND acked_at_ms IS NULL;
    `,
  },
  {
    id: 'budgets-0004-tier-escalation',
    sql: `
      ALTER TABLE budgets ADD COLUMN tier TEXT CHECK (tier IN ('critical', 'standard', 'experimental'));
      ALTER TABLE budgets ADD COLUMN escalate_after_ms BIGINT;
    `,
  },
  { id: 'exports-0001-jobs', sql: exportJobsSchema },
  { id: 'usage-0004-rollups', sql: usageRollups },
  { id: 'exports-0002-retention', sql: exportRetentionSchema },
  { id: 'ledger-0006-journal-apply-per-org', sql: journalApplyPerOrg },
  {
    // A team's refusals join only its own team's ticket, even when two teams' consumers share a
    // name and both are refused against the org wallet.
    id: 'tickets-0003-team',
    sql: `
      DROP INDEX cost_tickets_open;
      CREATE UNIQUE INDEX cost_tickets_open ON cost_tickets (org_id, scope, (coalesce(team_id, '')), consumer_name, reason)
        WHERE status = 'pending';
    `,
  },
  {
    // An ingested event's external id is unique per org AND team (a key of no team is a team of
    // its own, ''): one team's key can no longer send, ahead of another team, the ids that team
    // will use and have its events dropped as duplicates. The old index was stricter, so every
    // stored row satisfies the new one.
    id: 'usage-0005-external-per-team',
    sql: `
      DROP INDEX usage_events_external;
      CREATE UNIQUE INDEX usage_events_external ON usage_events (org_id, (coalesce(team_id, '')), external_request_id)
        WHERE external_request_id IS NOT NULL;
    `,
  },
  {
    // A wallet's spend at its last allocation (Redis records it in the allocation's own script;
    // this copy is what a rebuild loads). A wallet alert reached by spend since then and unmarked
    // was lost by a crash; one the allocation's new total jumped over was never crossed. NULL for
    // wallets allocated before this: nothing is recovered for them until their next allocation.
    id: 'ledger-0007-spent-at-allocation',
    sql: `
      ALTER TABLE wallets ADD COLUMN spent_at_allocation_micros BIGINT;
      ALTER TABLE wallets ADD COLUMN allocation_total_micros BIGINT;
    `,
  },
  {
    // Whether the event's user is its key's own (1) or one the call named (0): an org-wide user
    // budget counts only the former, and one created mid-period is seeded by that rule
    // (rows/budget.ts). NULL for events stored before this: not known.
    id: 'usage-0006-user-from-key',
    sql: 'ALTER TABLE usage_events ADD COLUMN user_from_key INTEGER CHECK (user_from_key IN (0, 1))',
  },
  {
    // The server-side searches a call was charged, as counts (replay prices them again at the
    // model it reprices a call at, as it does tokens), and which fee its web searches paid when
    // not the model's own (pricing/tool-fees.ts WebSearchKind). Events stored before hold the
    // counts only in their cost breakdown: they are read from it. Their kind is inferred where
    // it can be: every web search of a chat call is a chat search model's, at a size not stored
    // (`chat:unknown`: the model's dearest); a Responses call whose web search fee was flagged
    // was charged the `web_search_preview` fee (or a default at most that). Journal entries
    // written before this carry no such columns: the insert reads them as 0 (usage-store.ts).
    id: 'usage-0007-server-searches',
    sql: `
      ALTER TABLE usage_events ADD COLUMN web_searches BIGINT NOT NULL DEFAULT 0 CHECK (web_searches >= 0);
      ALTER TABLE usage_events ADD COLUMN file_searches BIGINT NOT NULL DEFAULT 0 CHECK (file_searches >= 0);
      ALTER TABLE usage_events ADD COLUMN web_search_kind TEXT;
      UPDATE usage_events AS e SET web_searches = s.web_searches, file_searches = s.file_searches
      FROM (
        SELECT u.id,
          coalesce(sum((p->>'tokens')::bigint) FILTER (WHERE p->>'part' = 'web_search'), 0) AS web_searches,
          coalesce(sum((p->>'tokens')::bigint) FILTER (WHERE p->>'part' = 'file_search'), 0) AS file_searches
        FROM usage_events AS u, json_array_elements(u.cost_breakdown_json::json -> 'parts') AS p
        WHERE u.cost_breakdown_json LIKE '%"part":"web_search"%' OR u.cost_breakdown_json LIKE '%"part":"file_search"%'
        GROUP BY u.id
      ) AS s
      WHERE e.id = s.id;
      UPDATE usage_events SET web_search_kind = 'chat:unknown' WHERE web_searches > 0 AND endpoint = 'chat_completions';
      UPDATE usage_events SET web_search_kind = 'web_search_preview'
        WHERE web_searches > 0 AND endpoint = 'responses' AND price_source LIKE '%;fallback:%web_search%';
    `,
  },
  { id: 'ledger-0008-journal-apply-net', sql: journalApplyNet },
  // The set form's moves typed, and each reservation's events found by their place in the batch
  // (journalApplyNet's comment): about 30% less PostgreSQL CPU per batch, the same rows. A fresh
  // database gets this definition from ledger-0008 already; this brings older ones to it.
  { id: 'ledger-0009-journal-apply-typed-moves', sql: `${journalMoveType}${journalApplyNetFunction}` },
  // The rollup trigger sums a statement's events per bucket and attribution before spreading them
  // over grains and dimensions (rollupUpsertFromSql): the same rows, 30-45% less work for a batch
  // that shares its attributions, about 8% more for one whose events share none. A fresh database
  // gets it from usage-0004 already.
  { id: 'usage-0008-rollups-two-step', sql: usageRollupsApply },
]
