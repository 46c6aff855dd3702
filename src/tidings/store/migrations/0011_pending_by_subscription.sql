-- Deliveries are looked up by subscription only while pending (an unsubscribe fails
-- them; an ordered delivery waits for an earlier one of its key), so one partial index
-- serves both and replaces the full `deliveries_by_subscription` and the ordered-only
-- `deliveries_pending_ordered`: a delivery done inside its publish (a queue endpoint,
-- as for every event rule's queue) no longer costs an entry in any subscription index.
-- (Queries spell `state = 'pending'` out so that the planner can use this partial index.)

DROP INDEX IF EXISTS deliveries_by_subscription;
DROP INDEX IF EXISTS deliveries_pending_ordered;
CREATE INDEX deliveries_pending_by_subscription ON deliveries (subscription_id, ordering_key, id)
    WHERE state = 'pending';
