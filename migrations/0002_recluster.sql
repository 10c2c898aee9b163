-- 0002_recluster.sql: batch re-clustering, stable ids and lineage.

-- What each model knows of its own quality: K scores, silhouette,
-- Davies-Bouldin, per-cluster stability (JSON written by segmentd).
ALTER TABLE models ADD COLUMN quality TEXT;
ALTER TABLE models ADD COLUMN sample_size INTEGER;

-- Cluster lineage across model versions: born, split, merged, retired.
CREATE TABLE lineage (
  id         INTEGER PRIMARY KEY,
  space      TEXT NOT NULL,
  version    INTEGER NOT NULL,     -- model version that caused the event
  kind       TEXT NOT NULL,        -- born | split | merged | retired
  clusters   TEXT NOT NULL,        -- JSON: {"from": [ids], "to": [ids]}
  created_at INTEGER NOT NULL
);
CREATE INDEX lineage_space ON lineage (space, id);

-- Fitted projections of the built-in encoder (LSA), newest wins.
CREATE TABLE projections (
  version    INTEGER PRIMARY KEY,
  dim        INTEGER NOT NULL,
  fitted_on  INTEGER NOT NULL,     -- texts in the fit
  created_at INTEGER NOT NULL,
  data       BLOB NOT NULL         -- sd_lsa_save() format
);
