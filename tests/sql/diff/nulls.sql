-- NULLs: three-valued logic, IS / IS NOT, NULLs in keys of UNIQUE columns,
-- aggregates and ordering (first ascending, last descending).
CREATE TABLE nu_t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT UNIQUE, c REAL);
INSERT INTO nu_t VALUES (1, NULL, NULL, NULL), (2, 1, 'x', 1.5), (3, NULL, NULL, 2.5),
                        (4, 2, 'y', NULL), (5, 1, NULL, NULL);
SELECT id, a, b, c FROM nu_t ORDER BY id;
SELECT id FROM nu_t WHERE a = NULL ORDER BY id;
SELECT id FROM nu_t WHERE a IS NULL ORDER BY id;
SELECT id FROM nu_t WHERE a IS NOT NULL ORDER BY id;
SELECT id FROM nu_t WHERE a IS 1 ORDER BY id;
SELECT id FROM nu_t WHERE a IS NOT 1 ORDER BY id;
SELECT id FROM nu_t WHERE a <> 1 ORDER BY id;
SELECT id FROM nu_t WHERE NOT (a = 1) ORDER BY id;
SELECT id FROM nu_t WHERE a IN (1, NULL) ORDER BY id;
SELECT id FROM nu_t WHERE a NOT IN (2, NULL) ORDER BY id;
SELECT id, a = 1, a IS 1, a IS NULL, a + 1, a || 'z', coalesce(a, -1), NULL AND 0, NULL OR 1, NULL AND 1
  FROM nu_t ORDER BY id;
SELECT count(*), count(a), count(b), count(c), sum(a), total(a), avg(c), min(a), max(b) FROM nu_t;
SELECT sum(a), total(a), avg(a), min(a), max(a), count(a) FROM nu_t WHERE a IS NULL;
SELECT a, count(*) FROM nu_t GROUP BY a ORDER BY a;
SELECT a, count(*) FROM nu_t GROUP BY a ORDER BY a DESC;
SELECT id, a FROM nu_t ORDER BY a NULLS LAST, id;
SELECT id, a FROM nu_t ORDER BY a DESC NULLS FIRST, id;
SELECT DISTINCT a FROM nu_t ORDER BY 1;
SELECT count(DISTINCT a), count(DISTINCT b) FROM nu_t;
-- UNIQUE allows many NULLs
INSERT INTO nu_t VALUES (6, 3, NULL, NULL);
SELECT count(*) FROM nu_t WHERE b IS NULL;
UPDATE nu_t SET c = 0.5 WHERE c IS NULL AND a IS NOT NULL;
SELECT id, c FROM nu_t ORDER BY id;
DELETE FROM nu_t WHERE b IS NULL AND a IS NULL;
SELECT id FROM nu_t ORDER BY id;
SELECT nullif(a, 1), ifnull(b, '-'), iif(a IS NULL, 'none', 'some') FROM nu_t ORDER BY id;
DROP TABLE nu_t;
