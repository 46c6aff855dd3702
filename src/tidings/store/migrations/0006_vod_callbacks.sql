-- VOD message callbacks (SetMessageCallback), one per application: where `tidings emit
-- vod` sends events besides the VOD event rules. `callback_type` is HTTP or MNS.

CREATE TABLE vod_callbacks (
    app_id TEXT PRIMARY KEY,
    callback_type TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    event_type_list TEXT NOT NULL,
    auth_switch TEXT NOT NULL,
    auth_key TEXT NOT NULL,
    mns_endpoint TEXT NOT NULL,
    mns_queue_name TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
