-- Results store, version 16: incidents are acknowledged (Maintenance page or Slack button) and
-- resolved by hand; the response time (detected -> acknowledged) is stored with the target it was
-- graded against (the guide's "Response Time": P1 15 min, P2 30 min, P3 4 h, P4 24 h), so a later
-- change of the config does not re-grade history. See sanvi_ops.core.incidents.
ALTER TABLE incidents
    ADD COLUMN acknowledged_at         timestamptz,
    ADD COLUMN acknowledged_by         text,          -- Airflow user name, or the Slack user id
    ADD COLUMN ack_source              text CHECK (ack_source IN ('page', 'slack')),
    ADD COLUMN ack_note                text NOT NULL DEFAULT '',
    ADD COLUMN response_seconds        double precision CHECK (response_seconds >= 0),
    ADD COLUMN response_target_seconds double precision CHECK (response_target_seconds > 0),
    ADD COLUMN resolved_by             text,          -- set when resolved by hand (page)
    ADD COLUMN resolution_note         text NOT NULL DEFAULT '',
    ADD CONSTRAINT incidents_ack_complete CHECK (
        (acknowledged_at IS NULL) = (acknowledged_by IS NULL)
        AND (acknowledged_at IS NULL) = (ack_source IS NULL)
        AND (acknowledged_at IS NULL) = (response_seconds IS NULL)
    );

CREATE INDEX incidents_acknowledged_idx ON incidents (severity, acknowledged_at)
    WHERE acknowledged_at IS NOT NULL;

-- Slack interactivity requests already acted on, by signature: a replayed request (the same
-- signed body sent again) is refused. Slack signs the timestamp with the body and we refuse
-- anything older than 5 minutes, so rows older than that can never match again and are purged
-- on insert. In the store rather than in memory so that every API server worker shares it.
CREATE TABLE slack_requests_seen (
    signature text PRIMARY KEY,
    seen_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slack_requests_seen_at_idx ON slack_requests_seen (seen_at);
