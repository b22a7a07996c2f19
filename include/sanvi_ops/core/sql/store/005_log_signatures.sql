-- Results store, version 5: error signatures the daily Log Review has seen (sanvi_ops.logs).
--
-- A signature is an error message with its numbers, ids, UUIDs, hex, timestamps and IP
-- addresses normalised away, per source (a CloudWatch Logs group or "postgres:<db>").
-- first_seen is the earliest event seen with it, so "new since last week" survives reruns;
-- a retried task UPSERTs (last_count is the count in the latest review, not a running sum, so a
-- rerun counts nothing twice). baseline marks what a source's first review found: that is the
-- starting point, not news. Signatures are cut to 500 characters. Nothing purges rows (a few
-- hundred signatures per source).
CREATE TABLE log_signatures (
    source      text NOT NULL,
    signature   text NOT NULL,
    level       text NOT NULL DEFAULT '',
    sample      text NOT NULL DEFAULT '',
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    last_count  bigint NOT NULL DEFAULT 0,
    last_run_id text NOT NULL DEFAULT '',
    baseline    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (source, signature)
);
CREATE INDEX log_signatures_source_first_seen_idx ON log_signatures (source, first_seen DESC);

-- Each source's first review (its baseline): what that run finds is the starting point. A
-- rerun of the first run is still the baseline; any later run is not.
CREATE TABLE log_sources (
    source         text PRIMARY KEY,
    first_run_id   text NOT NULL,
    first_reviewed timestamptz NOT NULL DEFAULT now()
);
