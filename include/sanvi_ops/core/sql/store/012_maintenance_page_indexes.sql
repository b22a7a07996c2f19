-- Results store, version 12: indexes the Maintenance page (sanvi_ops.page) needs to stay under
-- 300 ms with years of history (`make bench BENCH=maintenance_page`).
--
-- The page counts and lists the messages Slack never got: pending ones have a partial index since
-- 001 (notifications_pending_idx); the given-up ones had none, so counting them read the whole
-- outbox (one row per run and incident: ~50 000 a year). Resolved incidents are read by their
-- resolution time for the recovery-time SLO (the last 90 days), recovery tests by start time for
-- the chart of the last year (every kind at once, where 006 indexes per kind).
CREATE INDEX IF NOT EXISTS notifications_given_up_idx ON notifications (id)
    WHERE sent_at IS NULL AND given_up_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS incidents_resolved_idx ON incidents (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS recovery_tests_started_idx ON recovery_tests (started_at);
