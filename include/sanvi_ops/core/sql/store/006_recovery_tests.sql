-- Results store, version 6: one row per recovery test (backup_testing's restore test; dr_testing
-- may add its own kind), so each report can show the trend of earlier tests and the guide's
-- "Document recovery time for each test" is kept. Nothing purges rows.
CREATE TABLE recovery_tests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id          text NOT NULL,
    run_id          text NOT NULL,
    kind            text NOT NULL,              -- 'restore_test', ...
    backup_id       text,
    started_at      timestamptz NOT NULL,
    status          text NOT NULL,              -- worst status of the test's results
    bytes           bigint,                     -- bytes downloaded (the whole chain)
    restore_seconds double precision,           -- download + extract + combine
    mb_per_s        double precision,
    rto_seconds     double precision,           -- start of the test -> restored server healthy
    rpo_seconds     double precision,           -- backup point -> newest row (rpo_column), if set
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT recovery_tests_run_key UNIQUE (dag_id, run_id, kind)
);
CREATE INDEX recovery_tests_kind_started_idx ON recovery_tests (kind, started_at DESC);
