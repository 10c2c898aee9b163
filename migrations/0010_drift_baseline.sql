-- 0010_drift_baseline.sql: a drift reference is first the model's training
-- sample, then (baseline = 1) the first points assigned after the model
-- went live, which are encoded and assigned exactly as later points are
-- (training points sit closer to centroids, and to an encoder projection,
-- fitted on them).
ALTER TABLE drift_reference ADD COLUMN baseline INTEGER NOT NULL DEFAULT 0;
