-- Results store, version 20: change records (issue 16, the guide's "Change Management").
--
-- One row per DAG run that changed production (a VACUUM that ran, an RDS restore to a new
-- instance, a DR-site activation), typed from the run (sanvi_ops.core.change_records):
-- 'standard' (scheduled or started inside its window), 'normal' (approved outside the window
-- through the approval tasks), 'emergency' (outside every window through the emergency path).
-- Each column group is one step of the guide's process: request, assess, approve, schedule,
-- implement, verify, document. An emergency change carries its post-implementation review (PIR):
-- due date, outcome, who answered. Written once per run (a retried task updates its own row);
-- nothing purges rows: the guide keeps "Changes" for 3 years.
CREATE TABLE change_records (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id        text NOT NULL,
    run_id        text NOT NULL,
    environment   text NOT NULL,
    change_type   text NOT NULL CHECK (change_type IN ('standard', 'normal', 'emergency')),
    -- Request: who or what started the run ('scheduler', or the Airflow user) and why.
    requested_by  text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    -- Assess: the run policy's decision and the plan (or dry run) as the work reported it.
    assessment    jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Approve: per approver {approver, outcome, by, at, comment}; empty for standard changes.
    approvals     jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- Schedule: the window it was held to, and whether the change ran inside a window.
    change_window text NOT NULL DEFAULT '',
    in_window     boolean NOT NULL,
    -- Implement: the run.
    started_at    timestamptz,
    ended_at      timestamptz NOT NULL,
    -- Verify: the worst status of the run's results and the count per status.
    status        text NOT NULL,
    counts        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Document: the run in the Airflow UI.
    url           text NOT NULL DEFAULT '',
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    -- Post-implementation review (emergency changes only).
    pir_due_at    timestamptz,
    pir_outcome   text CHECK (pir_outcome IN ('pending', 'done', 'timed_out')),
    pir_at        timestamptz,
    pir_by        text,
    pir_form      jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT change_records_run_key UNIQUE (dag_id, run_id),
    CONSTRAINT change_records_pir_only_emergency CHECK (
        (change_type = 'emergency') = (pir_due_at IS NOT NULL)
        AND (pir_due_at IS NULL) = (pir_outcome IS NULL)
    )
);
CREATE INDEX change_records_ended_idx ON change_records (ended_at DESC);
CREATE INDEX change_records_pir_pending_idx ON change_records (pir_due_at) WHERE pir_outcome = 'pending';
