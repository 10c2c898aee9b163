-- 0005_audit.sql: who changed what by hand, and erasures (kept without the
-- erased data: only the user id's hash and the counts removed).
CREATE TABLE audit (
  id         INTEGER PRIMARY KEY,
  at         INTEGER NOT NULL,     -- epoch ms
  action     TEXT NOT NULL,        -- cluster_label | user_erased | ...
  target     TEXT NOT NULL,        -- e.g. "intents/7", "user:<sha-like hash>"
  detail     TEXT                  -- JSON
);
CREATE INDEX texts_cluster ON texts (cluster);
CREATE INDEX users_cluster ON users (cluster);
