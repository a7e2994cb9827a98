-- UPSERT (INSERT ... ON CONFLICT DO UPDATE / DO NOTHING) and RETURNING on
-- INSERT, UPDATE and DELETE (one row each where several could come back in
-- plan order: RETURNING takes no ORDER BY).
CREATE TABLE ur_counter(name TEXT PRIMARY KEY, hits INTEGER NOT NULL DEFAULT 0, last TEXT);
INSERT INTO ur_counter(name, hits) VALUES ('a', 1), ('b', 1);
INSERT INTO ur_counter(name, hits, last) VALUES ('a', 1, 'x')
  ON CONFLICT(name) DO UPDATE SET hits = hits + excluded.hits, last = excluded.last;
INSERT INTO ur_counter(name, hits) VALUES ('c', 5) ON CONFLICT(name) DO UPDATE SET hits = hits + 1;
INSERT INTO ur_counter(name, hits) VALUES ('b', 100) ON CONFLICT DO NOTHING;
INSERT INTO ur_counter(name, hits) VALUES ('b', 7) ON CONFLICT(name) DO UPDATE SET hits = excluded.hits
  WHERE excluded.hits > ur_counter.hits;
SELECT * FROM ur_counter ORDER BY name;
INSERT INTO ur_counter(name, hits) VALUES ('d', 4), ('e', 5) RETURNING name, hits * 2;
UPDATE ur_counter SET hits = hits + 10 WHERE name = 'd' RETURNING name, hits;
DELETE FROM ur_counter WHERE name = 'e' RETURNING name, hits;
UPDATE ur_counter SET hits = 0 WHERE name = 'zz' RETURNING name;
INSERT INTO ur_counter(name) VALUES ('f') RETURNING *;
SELECT * FROM ur_counter ORDER BY name;
DROP TABLE ur_counter;
