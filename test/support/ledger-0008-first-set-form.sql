-- ledger-0008-journal-apply-net as it first shipped: the set form that passed its moves on as
-- jsonb. Databases that ran it before ledger-0009 existed hold this definition; ledger-0009 must
-- bring them to the current one (test/integration/journal-apply.test.ts). Not used by the gateway.

  ALTER FUNCTION tg_journal_apply_unlocked(jsonb) RENAME TO tg_journal_apply_stepwise;

  CREATE OR REPLACE FUNCTION tg_journal_apply_unlocked(events jsonb) RETURNS integer
  LANGUAGE plpgsql AS $fn$
  DECLARE
    moves jsonb; new_spends text[]; b jsonb; org text; d_reserved bigint; d_spent bigint;
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
    ranked AS (
      SELECT ev.*, min(ev.ord) FILTER (WHERE ev.kind = 'reserve') OVER (PARTITION BY ev.id) AS r_ord FROM ev
    ),
    picked AS (
      SELECT id,
        (array_agg(e ORDER BY ord))[1] AS first_e,
        min(r_ord) AS r_ord,
        (array_agg(e ORDER BY ord) FILTER (WHERE kind = 'resolve'))[1] AS first_s,
        min(ord) FILTER (WHERE kind = 'resolve') AS first_s_ord,
        (array_agg(e ORDER BY ord) FILTER (WHERE kind = 'resolve' AND ord > r_ord))[1] AS after_r,
        min(ord) FILTER (WHERE kind = 'resolve' AND ord > r_ord) AS after_r_ord
      FROM ranked GROUP BY id
    ),
    stored AS (
      SELECT x.id, x.status FROM reservations AS x WHERE x.id IN (SELECT id FROM picked) ORDER BY x.id FOR UPDATE
    ),
    plan AS (
      SELECT c.how, c.r, c.r_ord, c.s, c.s_ord FROM (
        SELECT
          CASE WHEN x.id IS NULL AND p.first_e->>'kind' = 'reserve' THEN 'new'
               WHEN x.id IS NULL THEN 'lost'
               WHEN x.status = 'pending' AND p.first_s IS NOT NULL THEN 'resolve' END AS how,
          CASE WHEN x.id IS NULL AND p.first_e->>'kind' = 'reserve' THEN p.first_e END AS r,
          p.r_ord,
          CASE WHEN x.id IS NULL AND p.first_e->>'kind' = 'reserve' THEN p.after_r ELSE p.first_s END AS s,
          CASE WHEN x.id IS NULL AND p.first_e->>'kind' = 'reserve' THEN p.after_r_ord ELSE p.first_s_ord END AS s_ord
        FROM picked AS p LEFT JOIN stored AS x ON x.id = p.id
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
    SELECT COALESCE(jsonb_agg(jsonb_build_object('ord', ord, 'sub', sub, 'counts', counts, 'entry', entry,
        'entryKind', entry_kind, 'wallet', rr->>'walletId', 'reservation', rr->>'id', 'org', rr->>'orgId',
        'budgets', CASE WHEN counts THEN rr->'budgets' ELSE '[]'::jsonb END, 'reserved', reserved, 'spent', spent,
        'wanted', wanted, 'entryAmount', entry_amount, 'at', at)), '[]'::jsonb)
    INTO moves
    FROM money;

    INSERT INTO ledger_entries (id, wallet_id, kind, amount_micros, reservation_id, at_ms)
    SELECT mv->>'entry', mv->>'wallet', mv->>'entryKind', (mv->>'entryAmount')::bigint, mv->>'reservation', (mv->>'at')::bigint
    FROM jsonb_array_elements(moves) AS t(mv)
    WHERE mv->>'wallet' IS NOT NULL
    ORDER BY (mv->>'ord')::bigint, (mv->>'sub')::integer
    ON CONFLICT (id) DO NOTHING;

    -- One org's batches never run at once (tg_journal_apply's lock), so no two wait on each other here.
    UPDATE wallets AS w SET reserved_micros = w.reserved_micros + d.reserved, spent_micros = w.spent_micros + d.spent
    FROM (
      SELECT mv->>'wallet' AS id, sum((mv->>'reserved')::bigint)::bigint AS reserved, sum((mv->>'spent')::bigint)::bigint AS spent
      FROM jsonb_array_elements(moves) AS t(mv) WHERE mv->>'wallet' IS NOT NULL GROUP BY mv->>'wallet'
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
        SELECT bb.value AS ref, mv->>'org' AS org, (mv->>'reserved')::bigint AS reserved, (mv->>'wanted')::bigint AS spent
        FROM jsonb_array_elements(moves) AS t(mv), jsonb_array_elements(mv->'budgets') AS bb
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

    RETURN (SELECT count(*) FROM jsonb_array_elements(moves) AS t(mv) WHERE (mv->>'counts')::boolean)::integer
      + cardinality(new_spends);
  END
  $fn$;
