-- 0008_drift.sql: drift references, alerts, and why a model was trained.

-- The sample a model's drift checks compare new data with: points of its
-- training sample (float32 rows), their cluster row and cosine, and the
-- cluster counts over the whole training sample.
CREATE TABLE drift_reference (
  space   TEXT NOT NULL,
  version INTEGER NOT NULL,
  n       INTEGER NOT NULL,
  x       BLOB NOT NULL,          -- n x dim float32
  label   BLOB NOT NULL,          -- n int32: row of the model's centroids
  sim     BLOB NOT NULL,          -- n float32
  counts  BLOB NOT NULL,          -- k float32
  PRIMARY KEY (space, version)
) WITHOUT ROWID;

-- Drift alerts: one open row per condition (space, kind, method, cluster)
-- until it clears; history is kept.
CREATE TABLE alerts (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  space      TEXT NOT NULL,
  kind       TEXT NOT NULL,       -- emerging_cluster | vanishing_cluster | ...
  method     TEXT NOT NULL,       -- mmd | psi | cosine | share_z | ...
  cluster    INTEGER,             -- cluster id, or NULL
  severity   TEXT NOT NULL,       -- info | warning | critical
  value      REAL NOT NULL,
  threshold  REAL NOT NULL,
  message    TEXT NOT NULL,
  detail     TEXT,                -- JSON
  window     TEXT,                -- JSON: model version, points checked
  centroid   BLOB,                -- emerging_cluster: the candidate's centroid
  model_version INTEGER NOT NULL,
  created_at INTEGER NOT NULL,    -- epoch ms
  updated_at INTEGER NOT NULL,
  cleared_at INTEGER
);
CREATE INDEX alerts_open ON alerts (space, kind) WHERE cleared_at IS NULL;

-- A re-cluster caused by an alert names it.
ALTER TABLE lineage ADD COLUMN cause_alert INTEGER;
