-- 0012_experiments.sql: segment-aware experiments. A definition per
-- experiment, one sticky assignment per (experiment, user) with the
-- segment pinned at first assignment, and per stratum the slots handed
-- out so far (the state of the permuted blocks that balance variants
-- within each segment).
CREATE TABLE experiments (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  variants    TEXT NOT NULL,      -- JSON array of variant names, control first
  weights     TEXT NOT NULL,      -- JSON array of weights (sum 1)
  stratify    TEXT NOT NULL,      -- segments | none
  event_type  TEXT NOT NULL,      -- the outcome: an event of this type ...
  window_days INTEGER NOT NULL,   -- ... within this many days of assignment
  created_at  INTEGER NOT NULL,   -- epoch ms
  stopped_at  INTEGER             -- epoch ms; NULL while running
);

CREATE TABLE experiment_assignments (
  experiment_id INTEGER NOT NULL REFERENCES experiments (id),
  user_id       TEXT NOT NULL,
  variant       INTEGER NOT NULL,  -- index into experiments.variants
  segment       INTEGER,           -- segment id at first assignment, NULL: none
  assigned_at   INTEGER NOT NULL,  -- epoch ms
  PRIMARY KEY (experiment_id, user_id)
) WITHOUT ROWID;
-- erasure of a user
CREATE INDEX experiment_assignments_user ON experiment_assignments (user_id);

-- Slots handed out per stratum and variant (stratum = segment id, -1 for
-- users without a segment, or for an unstratified experiment). Counts of
-- assignments made, not of users kept: an erasure does not lower them.
CREATE TABLE experiment_strata (
  experiment_id INTEGER NOT NULL,
  stratum       INTEGER NOT NULL,
  variant       INTEGER NOT NULL,
  n             INTEGER NOT NULL,
  PRIMARY KEY (experiment_id, stratum, variant)
) WITHOUT ROWID;
