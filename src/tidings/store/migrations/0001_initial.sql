CREATE TABLE queues (
    -- AUTOINCREMENT: ids are never reused, so stale receipt handles never match a new row.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_s INTEGER NOT NULL,
    modified_s INTEGER NOT NULL,
    delay_seconds INTEGER NOT NULL,
    maximum_message_size INTEGER NOT NULL,
    message_retention_period INTEGER NOT NULL,
    visibility_timeout INTEGER NOT NULL,
    polling_wait_seconds INTEGER NOT NULL,
    logging_enabled INTEGER NOT NULL,
    dlq_target TEXT,
    dlq_max_receive_count INTEGER
);

CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    body_md5 TEXT NOT NULL,
    priority INTEGER NOT NULL,
    enqueue_ms INTEGER NOT NULL,
    visible_ms INTEGER NOT NULL,
    expire_ms INTEGER NOT NULL,
    first_dequeue_ms INTEGER NOT NULL DEFAULT 0,
    dequeue_count INTEGER NOT NULL DEFAULT 0,
    receipt_gen INTEGER NOT NULL DEFAULT 0,
    group_id TEXT,
    properties TEXT
);

-- Receive order: priority first, then enqueue order.
CREATE INDEX messages_by_order ON messages (queue_id, priority, seq);
-- When the next message becomes visible, and the state counters.
CREATE INDEX messages_by_visibility ON messages (queue_id, visible_ms);
-- Retention sweeps.
CREATE INDEX messages_by_expiry ON messages (expire_ms);

-- Account-level settings (LoggingBucket, ...).
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
