-- Results store, version 9: human sign-offs and approvals (issue 5 sign-offs, issue 6 approvals).
--
-- One row per request made to a person through Airflow's human-in-the-loop operators (a
-- quarterly review's sign-off, the Security team's penetration-test form, a production-change
-- approval outside the deployment window), written when the request is made ('pending') and
-- updated once with its outcome. The Maintenance page lists the pending ones. Nothing purges rows:
-- these are change-approval audit records (the guide keeps "Changes" for 3 years).
CREATE TABLE signoffs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id       text NOT NULL,
    run_id       text NOT NULL,
    task_id      text NOT NULL,
    -- 'signoff' (a review's sign-off), 'form' (findings entered through a form), 'approval'
    -- (a change outside its window).
    kind         text NOT NULL CHECK (kind IN ('signoff', 'form', 'approval')),
    -- Who is asked: a key of `teams` (sign-offs) or of `contacts` (approvals), and its name.
    team         text NOT NULL,
    team_name    text NOT NULL DEFAULT '',
    subject      text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    deadline     timestamptz NOT NULL,
    outcome      text NOT NULL DEFAULT 'pending'
                 CHECK (outcome IN ('pending', 'approved', 'rejected', 'timed_out')),
    responded_at timestamptz,
    -- The Airflow user who answered ({"id": ..., "name": ...}); NULL for pending and timed out.
    responder    jsonb,
    -- The form fields as entered (comment, findings, ...).
    form         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Link to the request in the Airflow UI ("Required actions").
    url          text NOT NULL DEFAULT '',
    CONSTRAINT signoffs_request_key UNIQUE (dag_id, run_id, task_id),
    CONSTRAINT signoffs_answered CHECK ((outcome = 'pending') = (responded_at IS NULL))
);
CREATE INDEX signoffs_pending_idx ON signoffs (deadline) WHERE outcome = 'pending';
CREATE INDEX signoffs_dag_requested_idx ON signoffs (dag_id, requested_at DESC);
