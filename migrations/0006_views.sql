-- 0006_views.sql: the time and context views of users, and names of
-- context features (one per hashed bucket) for labels and explanations.
ALTER TABLE users ADD COLUMN time_sum BLOB;
ALTER TABLE users ADD COLUMN time_t INTEGER;
ALTER TABLE users ADD COLUMN ctx_sum BLOB;
ALTER TABLE users ADD COLUMN ctx_t INTEGER;
ALTER TABLE users ADD COLUMN last_act INTEGER;
CREATE TABLE feature_names (
  view   TEXT NOT NULL,           -- context
  bucket INTEGER NOT NULL,
  name   TEXT NOT NULL,           -- e.g. device=ios (the first seen)
  PRIMARY KEY (view, bucket)
) WITHOUT ROWID;
