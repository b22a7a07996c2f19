-- Results store, version 7: more kinds of outbox message.
--
-- The operator-experience and governance work posts more than run summaries and incidents:
-- escalations of open incidents, sign-off requests and their outcomes, deadline (overdue run)
-- alerts and drill reports. The kind stays a closed list so a typo is refused by the database.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (
    kind IN ('summary', 'incident', 'update', 'resolved', 'failure',
             'escalation', 'signoff', 'deadline', 'heartbeat')
);
