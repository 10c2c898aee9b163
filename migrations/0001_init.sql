-- 0001_init.sql: the first schema of segmentd.
-- Raw input (events, texts) is the source of truth; everything else
-- (embeddings, user views, models, assignments) is derived and rebuildable.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per embedder configuration that produced stored vectors.
CREATE TABLE embedders (
  id      INTEGER PRIMARY KEY,
  kind    TEXT NOT NULL,          -- builtin | openai | client
  model   TEXT NOT NULL,
  dim     INTEGER NOT NULL,
  version TEXT NOT NULL,
  created_at INTEGER NOT NULL,    -- epoch ms
  UNIQUE (kind, model, dim, version)
);

CREATE TABLE events (
  id       INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  user_id  TEXT NOT NULL,
  type     TEXT NOT NULL,
  ts       INTEGER NOT NULL,      -- epoch ms
  properties TEXT                 -- JSON object or NULL
);
CREATE INDEX events_user ON events (user_id);

-- Names of event types, to label behaviour features (one per type).
CREATE TABLE event_types (
  type       TEXT PRIMARY KEY,
  first_seen INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE texts (
  id        INTEGER PRIMARY KEY,
  text_id   TEXT NOT NULL UNIQUE,
  user_id   TEXT,
  text      TEXT NOT NULL,
  ts        INTEGER NOT NULL,     -- epoch ms
  embedding BLOB,                 -- float32 little-endian, dim of its embedder
  embedder_id INTEGER REFERENCES embedders (id),
  cluster   INTEGER,              -- stable cluster id in the intents space
  similarity REAL,                -- cosine to the cluster's centroid
  confidence REAL
);
CREATE INDEX texts_user ON texts (user_id);

-- Per-user state: counters and the decayed view accumulators.
CREATE TABLE users (
  id         INTEGER PRIMARY KEY,
  user_id    TEXT NOT NULL UNIQUE,
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  n_events   INTEGER NOT NULL DEFAULT 0,
  n_texts    INTEGER NOT NULL DEFAULT 0,
  text_sum   BLOB,                -- decayed sum of text embeddings
  text_t     INTEGER,             -- time the text sum is decayed to
  beh_sum    BLOB,                -- decayed hashed event-type counts
  beh_t      INTEGER,
  cluster    INTEGER,             -- stable cluster id in the segments space
  similarity REAL,
  confidence REAL,
  updated_at INTEGER NOT NULL
);

-- The live model of each space: centroids row i has cluster id ids[i].
CREATE TABLE models (
  space      TEXT NOT NULL,
  version    INTEGER NOT NULL,
  algorithm  TEXT NOT NULL,
  k          INTEGER NOT NULL,
  dim        INTEGER NOT NULL,
  ids        BLOB NOT NULL,       -- int32 cluster ids, k entries
  centroids  BLOB NOT NULL,       -- float32, k x dim
  weights    BLOB NOT NULL,       -- float32 decayed weights, k entries
  inertia    REAL,
  trained_at INTEGER NOT NULL,
  saved_at   INTEGER NOT NULL,
  PRIMARY KEY (space, version)
) WITHOUT ROWID;

CREATE TABLE clusters (
  space       TEXT NOT NULL,
  id          INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  retired_at  INTEGER,
  label       TEXT,               -- manual label, NULL = auto
  description TEXT,
  PRIMARY KEY (space, id)
) WITHOUT ROWID;
