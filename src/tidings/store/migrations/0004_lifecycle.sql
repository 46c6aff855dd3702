-- Indexes for the lifecycle scheduler's scans (services/lifecycle.py), so each pass
-- reads index ranges instead of whole tables.

-- Restored copies by expiry: the ones to freeze again (ongoing restores already have
-- object_versions_restoring).
CREATE INDEX object_versions_restored ON object_versions (restore_expiry_ms)
    WHERE restore_state = 'done';

-- Uploads by age within a bucket: stale ones for AbortMultipartUpload, oldest first.
CREATE INDEX multipart_uploads_by_age ON multipart_uploads (bucket_id, initiated_ms, id);
