-- Results store, version 1: check results, the Slack outbox and incidents.
--
-- Applied by sanvi_ops.store.ResultStore.migrate() inside one transaction under an advisory
-- lock, and recorded in schema_migrations. Never edit this file once applied anywhere: add
-- 002_<what>.sql instead (migrate() refuses a migration whose checksum changed).
--
-- Retention: the guide keeps change and data-access audit records for 3 years, and this store is
-- part of that record (every result, every notification, every incident). Nothing here purges
-- rows; a purge, when one is added, must keep at least 3 years (include/config/maintenance.yaml,
-- audit_retention) and live in its own migration/task, never in a write path.

-- One row per (dag_id, run_id, check_name): a retried task UPSERTs, it never duplicates.
CREATE TABLE check_results (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id       text NOT NULL,
    run_id       text NOT NULL,
    check_name   text NOT NULL,
    status       text NOT NULL CHECK (status IN ('ok', 'skipped', 'warning', 'error', 'critical')),
    summary      text NOT NULL,
    metric       text NOT NULL DEFAULT '',
    observed     double precision,
    unit         text NOT NULL DEFAULT '',
    thresholds   jsonb NOT NULL DEFAULT '{}'::jsonb,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    severity     text CHECK (severity IN ('P1', 'P2', 'P3', 'P4')),
    component    text NOT NULL DEFAULT '',
    -- Order of the result within its run, so a run reads back exactly as it was produced.
    position     integer NOT NULL DEFAULT 0,
    logical_date timestamptz,
    -- Time of the last write of this row (a retried task refreshes it).
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT check_results_run_check_key UNIQUE (dag_id, run_id, check_name)
);

-- "Latest run of a DAG" (Maintenance page, latest_results()).
CREATE INDEX check_results_dag_recorded_idx ON check_results (dag_id, recorded_at DESC);
-- History of one check (trends, recovery times).
CREATE INDEX check_results_dag_check_recorded_idx ON check_results (dag_id, check_name, recorded_at DESC);
-- Time-range queries across DAGs (audits, SLO reports).
CREATE INDEX check_results_recorded_idx ON check_results (recorded_at);

-- The Slack outbox: a message is written here before it is sent and marked sent with Slack's ts.
-- Pending = sent_at IS NULL AND given_up_at IS NULL; delivered in id order.
CREATE TABLE notifications (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What the message is about (summary:<dag>:<run>, incident:<id>, ...): enqueueing twice is a no-op.
    dedupe_key        text NOT NULL,
    dag_id            text NOT NULL,
    run_id            text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('summary', 'incident', 'update', 'resolved', 'failure')),
    channel           text NOT NULL,
    text              text NOT NULL,
    blocks            jsonb,
    -- dedupe_key of the message this one replies to (posted in its thread once it has a ts).
    thread_parent_key text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    slack_ts          text,
    slack_channel     text,
    attempts          integer NOT NULL DEFAULT 0,
    last_error        text,
    -- Set when Slack rejected the message itself (channel_not_found, invalid_blocks, ...): it is
    -- kept for the record but no longer sent.
    given_up_at       timestamptz,
    CONSTRAINT notifications_dedupe_key_key UNIQUE (dedupe_key),
    CONSTRAINT notifications_sent_has_ts CHECK (sent_at IS NULL OR slack_ts IS NOT NULL)
);

CREATE INDEX notifications_pending_idx ON notifications (id) WHERE sent_at IS NULL AND given_up_at IS NULL;
CREATE INDEX notifications_dag_created_idx ON notifications (dag_id, created_at DESC);
CREATE INDEX notifications_created_idx ON notifications (created_at);

-- Incidents opened by critical results; the human id is '#' || id.
CREATE TABLE incidents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id          text NOT NULL,
    check_name      text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('P1', 'P2', 'P3', 'P4')),
    summary         text NOT NULL,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    opened_run_id   text NOT NULL,
    resolved_at     timestamptz,
    resolved_run_id text,
    last_update_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT incidents_resolved_with_run CHECK ((resolved_at IS NULL) = (resolved_run_id IS NULL))
);

-- At most one open incident per (dag_id, check): a check that stays critical updates its incident.
CREATE UNIQUE INDEX incidents_one_open_idx ON incidents (dag_id, check_name) WHERE resolved_at IS NULL;
CREATE INDEX incidents_opened_idx ON incidents (opened_at DESC);
