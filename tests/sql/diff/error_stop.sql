-- diff: errors 12
-- The first error stops a script (sqlite3 -bail, meridian sql's default):
-- the rows printed before it are the same, the failing line is the same, and
-- nothing after it runs (so es_t stays behind on the cluster: no other script
-- uses the name). An error in a statement spanning lines is reported at its
-- first line.
CREATE TABLE es_t(k INTEGER PRIMARY KEY, v TEXT NOT NULL);
INSERT INTO es_t VALUES (1, 'one'), (2, 'two');
SELECT * FROM es_t ORDER BY k;
UPDATE es_t SET v = v || '!' WHERE k = 1;
SELECT * FROM es_t ORDER BY k;
INSERT INTO es_t VALUES (3, 'three'),
                        (4, NULL);
SELECT 'not reached';
DROP TABLE es_t;
