-- Results store, version 2: what the weekly Performance Analysis and Disk Space Check keep
-- between runs (sanvi_ops.performance, sanvi_ops.disk).
--
-- Retention as for 001: nothing here purges rows (a week's snapshot is a few hundred rows).

-- One pg_stat_statements snapshot per (database, run): the counters are cumulative, so this
-- week's change is the difference to last week's snapshot. A retried task UPSERTs.
CREATE TABLE pg_statement_snapshots (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    database   text NOT NULL,
    run_id     text NOT NULL,
    taken_at   timestamptz NOT NULL,
    statements jsonb NOT NULL,
    CONSTRAINT pg_statement_snapshots_db_run_key UNIQUE (database, run_id)
);
CREATE INDEX pg_statement_snapshots_db_taken_idx ON pg_statement_snapshots (database, taken_at DESC);

-- Space used per target (a filesystem, an RDS instance, a database) per run, for the
-- days-until-full estimate (a linear fit over the samples).
CREATE TABLE disk_samples (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      text NOT NULL,
    run_id      text NOT NULL,
    sampled_at  timestamptz NOT NULL,
    used_bytes  double precision NOT NULL,
    size_bytes  double precision,
    CONSTRAINT disk_samples_target_run_key UNIQUE (target, run_id)
);
CREATE INDEX disk_samples_target_sampled_idx ON disk_samples (target, sampled_at DESC);

-- The Performance Analysis chart (PNG) of each run.
CREATE TABLE performance_charts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id     text NOT NULL,
    run_id     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    png        bytea NOT NULL,
    -- Set once the chart is shared in the run's Slack thread, so a retry does not post it twice.
    slack_file_id text,
    CONSTRAINT performance_charts_run_key UNIQUE (dag_id, run_id)
);
