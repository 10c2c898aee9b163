-- 0004_projection_parts.sql: a fitted projection is tens of MB; it is now
-- stored in 1 MiB parts, each in its own short writer transaction ahead of
-- the install, so ingest never waits for the whole table to be written.
-- projections.data stays empty for such rows; parts whose version has no
-- projections row (a crash before the install) are removed at start.
CREATE TABLE projection_parts (
  id      INTEGER PRIMARY KEY,
  version INTEGER NOT NULL,
  seq     INTEGER NOT NULL,
  data    BLOB NOT NULL,
  UNIQUE (version, seq)
);
