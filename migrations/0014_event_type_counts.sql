-- 0014_event_type_counts.sql: events per type, kept by triggers in the
-- transaction of every insert and delete (ingest, retention, erasure), so a
-- start reads one row per type for the behaviour view's IDF weights instead
-- of counting every stored event (a full scan: seconds at 20M events).
-- Types stored before every type was recorded are added first.
INSERT OR IGNORE INTO event_types(type, first_seen)
  SELECT type, min(ts) FROM events GROUP BY type;
ALTER TABLE event_types ADD COLUMN n INTEGER NOT NULL DEFAULT 0;
CREATE TEMP TABLE event_type_n AS
  SELECT type, count(*) AS n FROM events GROUP BY type;
UPDATE event_types
  SET n = (SELECT n FROM event_type_n WHERE event_type_n.type = event_types.type)
  WHERE type IN (SELECT type FROM event_type_n);
DROP TABLE event_type_n;
CREATE TRIGGER events_type_count_ins AFTER INSERT ON events BEGIN
  INSERT INTO event_types(type, first_seen, n) VALUES (NEW.type, NEW.ts, 1)
    ON CONFLICT(type) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER events_type_count_del AFTER DELETE ON events BEGIN
  UPDATE event_types SET n = n - 1 WHERE type = OLD.type;
END;
