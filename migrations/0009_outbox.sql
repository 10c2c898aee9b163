-- 0009_outbox.sql: webhook deliveries waiting to be sent (notify.h).
-- The core writer inserts a row in the same transaction as the state change
-- that caused the event, so an event exists exactly when its cause is
-- committed. The notifier thread POSTs pending rows of each stream in id
-- order and records each outcome through the writer. A pending row (neither
-- delivered nor given up) that waits for its retry holds back the later
-- rows of its stream; a given-up row does not. Delivery is at-least-once:
-- receivers dedupe by id (the X-Segmentd-Delivery header).
CREATE TABLE outbox (
  id           INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
  stream       TEXT NOT NULL,    -- 'alerts' | 'segments'
  event        TEXT NOT NULL,    -- e.g. 'alert.opened', 'segments.diff'
  payload      TEXT NOT NULL,    -- JSON, sent as the envelope's "data"
  created_at   INTEGER NOT NULL, -- epoch ms
  attempts     INTEGER NOT NULL DEFAULT 0, -- requests made so far
  next_at      INTEGER NOT NULL, -- epoch ms the next attempt may go
  delivered_at INTEGER,          -- epoch ms a 2xx answer was recorded
  gave_up_at   INTEGER,          -- epoch ms the last allowed attempt failed
  last_error   TEXT              -- why the last failed attempt failed
);
-- The head of each stream: its pending rows in id order.
CREATE INDEX outbox_pending ON outbox(stream, id)
  WHERE delivered_at IS NULL AND gave_up_at IS NULL;
