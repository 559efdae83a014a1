import type { SqliteMigration } from './db.js'
import { rollupRowUpsertSql, rollupTableSql, rollupUpsertFromSql } from '../rows/usage-rollups.js'

/**
 * usage_events: one row per priced call. Columns are flat (not JSON) so reports group and filter
 * with indexes. `cost_micros` is an integer; `at_ms` is Unix epoch milliseconds.
 */
export const usageMigrations: readonly SqliteMigration[] = [
  {
    id: 'usage-0001-events',
    sql: `
      CREATE TABLE usage_events (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
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
        input_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        audio_input_tokens INTEGER NOT NULL,
        audio_output_tokens INTEGER NOT NULL,
        usage_source TEXT NOT NULL,
        cost_micros INTEGER NOT NULL CHECK (cost_micros >= 0),
        price_source TEXT NOT NULL,
        latency_ms INTEGER NOT NULL,
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
    `,
  },
  {
    id: 'usage-0002-cost-detail',
    sql: `
      -- How each event's cost was made, and 1-hour cache writes apart from the 5-minute ones.
      ALTER TABLE usage_events ADD COLUMN cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0;
      ALTER TABLE usage_events ADD COLUMN usage_note TEXT;
      ALTER TABLE usage_events ADD COLUMN cost_breakdown_json TEXT;
    `,
  },
  {
    // What an ingested event's sender said it cost (POST /v1/events `costUsd`), beside the catalogue's price.
    id: 'usage-0003-reported-cost',
    sql: `ALTER TABLE usage_events ADD COLUMN reported_cost_micros INTEGER CHECK (reported_cost_micros >= 0)`,
  },
  {
    // Hourly and daily sums per dimension (src/store/rows/usage-rollups.ts), kept by a trigger in
    // the transaction of every event insert (until usage-0005); built here from the events
    // already stored.
    id: 'usage-0004-rollups',
    sql: `
      ${rollupTableSql(' WITHOUT ROWID')}
      CREATE TRIGGER usage_rollups_on_insert AFTER INSERT ON usage_events BEGIN
        ${rollupRowUpsertSql()}
      END;
      ${rollupUpsertFromSql('usage_events')};
    `,
  },
  {
    // The rollups are now summed per transaction in JS and added before it commits
    // (rows/rollup-accumulator.ts): a few upserts per batch instead of 14 per event. Every SQLite
    // insert goes through SqliteUsageStore.transaction, so nothing relies on the trigger.
    id: 'usage-0005-rollups-in-js',
    sql: 'DROP TRIGGER IF EXISTS usage_rollups_on_insert;',
  },
  {
    // An ingested event's external id is unique per org AND team (a key of no team is a team of
    // its own, ''): one team's key can no longer send, ahead of another team, the ids that team
    // will use and have its events dropped as duplicates. The old index was stricter, so every
    // stored row satisfies the new one.
    id: 'usage-0006-external-per-team',
    sql: `
      DROP INDEX usage_events_external;
      CREATE UNIQUE INDEX usage_events_external ON usage_events (org_id, ifnull(team_id, ''), external_request_id)
        WHERE external_request_id IS NOT NULL;
    `,
  },
  {
    // Rollups are no longer added in the transaction that inserts the events: a background fold
    // adds the events after `through_rowid` and moves it on, in one transaction
    // (SqliteUsageStore.foldRollups), and reports add the events not folded yet. Every event
    // stored so far is in the rollups already (usage-0005 added them before each commit).
    id: 'usage-0007-rollups-folded',
    sql: `
      CREATE TABLE usage_rollups_folded (id INTEGER PRIMARY KEY CHECK (id = 1), through_rowid INTEGER NOT NULL);
      INSERT INTO usage_rollups_folded (id, through_rowid) SELECT 1, ifnull(max(rowid), 0) FROM usage_events;
    `,
  },
  {
    // Whether the event's user is its key's own (1) or one the call named (0): an org-wide user
    // budget counts only the former, and one created mid-period is seeded by that rule
    // (rows/budget.ts). NULL for events stored before this: not known.
    id: 'usage-0008-user-from-key',
    sql: 'ALTER TABLE usage_events ADD COLUMN user_from_key INTEGER CHECK (user_from_key IN (0, 1))',
  },
  {
    // The server-side searches a call was charged, as counts (replay prices them again at the
    // model it reprices a call at, as it does tokens), and which fee its web searches paid when
    // not the model's own (pricing/tool-fees.ts WebSearchKind). Events stored before hold the
    // counts only in their cost breakdown: they are read from it. Their kind is inferred where
    // it can be: every web search of a chat call is a chat search model's, at a size not stored
    // (`chat:unknown`: the model's dearest); a Responses call whose web search fee was flagged
    // was charged the `web_search_preview` fee (or a default at most that).
    id: 'usage-0009-server-searches',
    sql: `
      ALTER TABLE usage_events ADD COLUMN web_searches INTEGER NOT NULL DEFAULT 0 CHECK (web_searches >= 0);
      ALTER TABLE usage_events ADD COLUMN file_searches INTEGER NOT NULL DEFAULT 0 CHECK (file_searches >= 0);
      ALTER TABLE usage_events ADD COLUMN web_search_kind TEXT;
      UPDATE usage_events SET
        web_searches = ifnull((SELECT sum(json_extract(p.value, '$.tokens')) FROM json_each(cost_breakdown_json, '$.parts') AS p
          WHERE json_extract(p.value, '$.part') = 'web_search'), 0),
        file_searches = ifnull((SELECT sum(json_extract(p.value, '$.tokens')) FROM json_each(cost_breakdown_json, '$.parts') AS p
          WHERE json_extract(p.value, '$.part') = 'file_search'), 0)
      WHERE cost_breakdown_json LIKE '%"part":"web_search"%' OR cost_breakdown_json LIKE '%"part":"file_search"%';
      UPDATE usage_events SET web_search_kind = 'chat:unknown' WHERE web_searches > 0 AND endpoint = 'chat_completions';
      UPDATE usage_events SET web_search_kind = 'web_search_preview'
        WHERE web_searches > 0 AND endpoint = 'responses' AND price_source LIKE '%;fallback:%web_search%';
    `,
  },
]
