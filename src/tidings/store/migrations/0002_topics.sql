CREATE TABLE topics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_s INTEGER NOT NULL,
    modified_s INTEGER NOT NULL,
    maximum_message_size INTEGER NOT NULL,
    logging_enabled INTEGER NOT NULL
);

CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    filter_tag TEXT,
    notify_strategy TEXT NOT NULL,
    notify_content_format TEXT NOT NULL,
    created_s INTEGER NOT NULL,
    modified_s INTEGER NOT NULL,
    UNIQUE (topic_id, name)
);

-- A published message, kept while deliveries need it (at most the topic retention).
CREATE TABLE topic_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    body_md5 TEXT NOT NULL,
    tag TEXT,
    attributes TEXT,
    properties TEXT,
    group_id TEXT,
    publish_ms INTEGER NOT NULL,
    expire_ms INTEGER NOT NULL
);
CREATE INDEX topic_messages_by_expiry ON topic_messages (expire_ms);

-- One message to one subscription: the outbox row and the ledger's summary.
-- state: pending (due at next_attempt_ms), delivered, failed (retries exhausted or expired).
-- leased: an attempt is in flight; a restart makes such deliveries due at once.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_message_seq INTEGER NOT NULL,
    topic_id INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    topic_name TEXT NOT NULL,
    subscription_name TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_by_message ON deliveries (message_id);
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id);
CREATE INDEX deliveries_by_topic ON deliveries (topic_id, state);
CREATE INDEX deliveries_by_time ON deliveries (created_ms);

-- Every attempt, for the ledger.
CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    latency_ms INTEGER NOT NULL
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id);
