-- Results store, version 13: exactly-once delivery of the outbox.
--
-- Before each chat.postMessage the sender marks the row "sending": it gets a client-side
-- idempotency key (sent to Slack in the message's Block Kit metadata) and the time of the first
-- attempt whose outcome is unknown. A row still "sending" when a later flush sees it (a 5xx or a
-- timeout after Slack may have accepted the post, or a worker/store that died between the post
-- and mark_sent) is looked up in the channel by that key before anything is posted again.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS delivery_key text;
-- First attempt not known to have failed; NULL when no attempt is in doubt.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS sending_since timestamptz;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS last_attempt_at timestamptz;
CREATE UNIQUE INDEX IF NOT EXISTS notifications_delivery_key_idx
    ON notifications (delivery_key) WHERE delivery_key IS NOT NULL;
