-- 0013_drift_pin.sql: a baseline pinned by hand (POST
-- /v1/spaces/{space}/drift/baseline) on the drift reference of the model
-- version it belongs to. source: NULL (or 'model') for the first points
-- assigned after the model went live; 'current' when the window's latest
-- points were pinned; 'next' when the baseline is collected again from the
-- assignments after the pin. pinned_by names the API key's entry
-- ("SEGMENTD_API_KEYS entry 2", "--api-keys-file line 5"), NULL without
-- API keys. A new model's row starts without a pin.
ALTER TABLE drift_reference ADD COLUMN source TEXT;
ALTER TABLE drift_reference ADD COLUMN pinned_at INTEGER; -- epoch ms
ALTER TABLE drift_reference ADD COLUMN pinned_by TEXT;
