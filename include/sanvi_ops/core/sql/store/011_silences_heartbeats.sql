-- Results store, version 11: silences (alerts muted with a reason and an expiry) and the
-- watchdog's heartbeats (sanvi_ops.silences, dags/meta/sanvi_ops_watchdog.py).
--
-- Retention as for 001: nothing here purges rows. A silence is never deleted: lifting it sets
-- lifted_at, so the record of who muted what, why and until when is kept for the audit.

-- A silence mutes the Slack announcement ([INCIDENT], its updates and escalations) of critical
-- results whose DAG and check match; the results are still stored and the incident recorded.
-- Written from the config file's `silences:` list (source 'config', synced on every run) or by
-- the Maintenance page (source 'ui').
-- Active = lifted_at IS NULL AND expires_at > now().
CREATE TABLE silences (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id        text,                 -- NULL = any DAG
    check_pattern text,                 -- fnmatch pattern on check name; NULL = any check
    reason        text NOT NULL,
    created_by    text NOT NULL,
    source        text NOT NULL CHECK (source IN ('config', 'ui')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    lifted_at     timestamptz
);
CREATE INDEX silences_active_idx ON silences (expires_at) WHERE lifted_at IS NULL;

-- One row per watchdog run: the scheduler ran it at `at`; `pinged` says whether the outside
-- monitor (dead man's switch) got its ping, `detail` what happened (no connection, HTTP error).
CREATE TABLE heartbeats (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source  text NOT NULL,              -- the DAG id (sanvi_ops_watchdog)
    run_id  text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    pinged  boolean NOT NULL,
    detail  text NOT NULL DEFAULT '',
    CONSTRAINT heartbeats_source_run_key UNIQUE (source, run_id)
);
CREATE INDEX heartbeats_source_at_idx ON heartbeats (source, at DESC);
