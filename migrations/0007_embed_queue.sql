-- 0007_embed_queue.sql: texts waiting for their embedding. A text stored
-- without one (a remote embedder, or a re-embed after switching embedders)
-- gets a row here in the same transaction; the row is deleted in the
-- transaction that stores the embedding, which is what makes each text
-- embedded exactly once. seq orders the queue and never reuses a value.
CREATE TABLE embed_queue (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  text_rowid  INTEGER NOT NULL UNIQUE,  -- texts.id
  received_at INTEGER NOT NULL,         -- epoch ms it was queued
  attempts    INTEGER NOT NULL DEFAULT 0,
  failed_at   INTEGER,                  -- epoch ms the embedder rejected it for good
  error       TEXT                      -- the embedder's last complaint
);
