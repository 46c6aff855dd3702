-- The object store's metadata. Bodies live in the blob store under random ids; a row
-- names its blob only after the blob is durably written, so a crash between the two
-- leaves at worst an unreferenced blob, which the start-up sweep removes.

CREATE TABLE buckets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    acl TEXT NOT NULL,
    storage_class TEXT NOT NULL,
    redundancy TEXT NOT NULL,
    -- '' (never enabled), 'Enabled' or 'Suspended'
    versioning TEXT NOT NULL DEFAULT '',
    lifecycle TEXT,
    tags TEXT
);

-- Every version of every object, delete markers included. Keys compare as BINARY
-- text, which for UTF-8 is the byte order listings must follow.
CREATE TABLE object_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket_id INTEGER NOT NULL REFERENCES buckets (id),
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    is_current INTEGER NOT NULL,
    is_delete_marker INTEGER NOT NULL DEFAULT 0,
    blob_id TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    etag TEXT NOT NULL DEFAULT '',
    -- unsigned 64-bit, which SQLite's signed INTEGER cannot hold
    crc64 TEXT NOT NULL DEFAULT '0',
    object_type TEXT NOT NULL DEFAULT 'Normal',
    storage_class TEXT NOT NULL DEFAULT 'Standard',
    acl TEXT NOT NULL DEFAULT 'default',
    last_modified_ms INTEGER NOT NULL,
    noncurrent_since_ms INTEGER,
    headers TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}',
    transition_ms INTEGER,
    -- restore of archive classes: '' (frozen), 'ongoing' or 'done'
    restore_state TEXT NOT NULL DEFAULT '',
    restore_ready_ms INTEGER,
    restore_expiry_ms INTEGER,
    restore_days INTEGER,
    restore_tier TEXT
);
CREATE UNIQUE INDEX object_versions_current ON object_versions (bucket_id, key)
    WHERE is_current = 1;
CREATE UNIQUE INDEX object_versions_by_id ON object_versions (bucket_id, key, version_id);
CREATE INDEX object_versions_by_key ON object_versions (bucket_id, key, id);
CREATE INDEX object_versions_restoring ON object_versions (restore_ready_ms)
    WHERE restore_state = 'ongoing';

CREATE TABLE multipart_uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket_id INTEGER NOT NULL REFERENCES buckets (id),
    key TEXT NOT NULL,
    upload_id TEXT NOT NULL UNIQUE,
    initiated_ms INTEGER NOT NULL,
    storage_class TEXT NOT NULL,
    acl TEXT NOT NULL,
    headers TEXT NOT NULL,
    meta TEXT NOT NULL,
    tags TEXT NOT NULL
);
CREATE INDEX multipart_uploads_by_key ON multipart_uploads (bucket_id, key, initiated_ms, id);

CREATE TABLE multipart_parts (
    upload_pk INTEGER NOT NULL REFERENCES multipart_uploads (id),
    part_number INTEGER NOT NULL,
    blob_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    crc64 TEXT NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    PRIMARY KEY (upload_pk, part_number)
);

-- Blobs no row references any more, deleted from the blob store after the commit that
-- released them (a crash in between leaves the row, and the next sweep finishes).
CREATE TABLE blob_garbage (
    blob_id TEXT PRIMARY KEY
);
