-- 0003_lookup_indexes.sql: a user's intents (GET /v1/users/{id}/segment)
-- are counted from an index alone, without reading text rows and their
-- embedding BLOBs. The new index also serves lookups by user_id.
CREATE INDEX texts_user_cluster ON texts (user_id, cluster);
DROP INDEX texts_user;
