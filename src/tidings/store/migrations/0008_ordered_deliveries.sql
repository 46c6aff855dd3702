-- Deliveries of one object key's events to one subscription go in commit order: a
-- delivery with an ordering key waits while an earlier one of the same subscription
-- and key is still pending. The index makes that check a seek.

ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
CREATE INDEX deliveries_ordered ON deliveries (subscription_id, ordering_key, id)
    WHERE ordering_key IS NOT NULL;
