-- Event-notification rules. `definition` is the rule as the control plane echoes it
-- (JSON); `auto_topic` marks a topic the rule created, which leaves with the rule.

CREATE TABLE event_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    topic_name TEXT NOT NULL,
    auto_topic INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (product, name)
);
