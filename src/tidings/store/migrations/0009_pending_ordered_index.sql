-- The "earlier pending delivery of the same subscription and key" check (at publish and
-- in every claim) must not grow with a key's history: index only the pending ordered
-- deliveries, so that the check is one seek and a delivery leaves the index when done.
-- (Queries spell `state = 'pending'` out so that the planner can use this partial index.)

DROP INDEX IF EXISTS deliveries_ordered;
CREATE INDEX deliveries_pending_ordered ON deliveries (subscription_id, ordering_key, id)
    WHERE ordering_key IS NOT NULL AND state = 'pending';
