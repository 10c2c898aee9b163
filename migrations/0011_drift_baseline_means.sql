-- 0011_drift_baseline_means.sql: with the baseline shares (baseline = 2),
-- each cluster's sum of member vectors and of similarities over the same
-- assignments, which the centroid-shift and cohesion checks compare with.
ALTER TABLE drift_reference ADD COLUMN base_sum BLOB; -- k x dim float32
ALTER TABLE drift_reference ADD COLUMN base_sim BLOB; -- k float32
