-- Only pending deliveries are ever looked up by due time or by topic, so index only
-- those: a delivery that is done at once (a queue endpoint filled in the publish's own
-- transaction, as for every event rule's queue) then costs no entry in either index.
-- (Queries spell `state = 'pending'` out so that the planner can use these indexes.)

DROP INDEX IF EXISTS deliveries_due;
DROP INDEX IF EXISTS deliveries_by_topic;
CREATE INDEX deliveries_due ON deliveries (next_attempt_ms) WHERE state = 'pending';
CREATE INDEX deliveries_by_topic ON deliveries (topic_id) WHERE state = 'pending';
