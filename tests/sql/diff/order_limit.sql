-- ORDER BY / LIMIT / OFFSET: ascending and descending on key and non-key
-- columns, expressions, NULLS FIRST/LAST, LIMIT with and without a filter,
-- LIMIT -1, OFFSET past the end, compound SELECTs.
CREATE TABLE ol_t(a INTEGER, b TEXT, c REAL, PRIMARY KEY(a, b));
INSERT INTO ol_t VALUES (1, 'x', 0.5), (1, 'y', NULL), (2, 'a', 2.25), (3, 'b', -1.5), (3, 'c', 2.25),
                        (4, 'd', 10.0), (5, 'e', NULL), (6, 'f', 0.75), (7, 'g', 3.5), (8, 'h', -0.25);
SELECT * FROM ol_t ORDER BY a, b;
SELECT * FROM ol_t ORDER BY a DESC, b DESC;
SELECT * FROM ol_t ORDER BY a, b LIMIT 3;
SELECT * FROM ol_t ORDER BY a, b LIMIT 3 OFFSET 2;
SELECT * FROM ol_t ORDER BY a DESC, b LIMIT 4 OFFSET 1;
SELECT * FROM ol_t ORDER BY a, b LIMIT 2, 3;
SELECT * FROM ol_t ORDER BY a, b LIMIT -1 OFFSET 8;
SELECT * FROM ol_t ORDER BY a, b LIMIT 5 OFFSET 100;
SELECT * FROM ol_t ORDER BY a, b LIMIT 0;
SELECT * FROM ol_t WHERE a >= 3 ORDER BY a, b LIMIT 2;
SELECT * FROM ol_t WHERE a = 1 ORDER BY b DESC LIMIT 1;
SELECT * FROM ol_t WHERE c > 0 ORDER BY c DESC, a, b LIMIT 3;
SELECT * FROM ol_t ORDER BY c, a, b;
SELECT * FROM ol_t ORDER BY c DESC, a, b;
SELECT * FROM ol_t ORDER BY c NULLS LAST, a, b;
SELECT * FROM ol_t ORDER BY c DESC NULLS FIRST, a DESC, b;
SELECT a, b, a * 10 % 7 AS m FROM ol_t ORDER BY m, a, b;
SELECT a, b FROM ol_t ORDER BY length(b) + a DESC, b LIMIT 4;
SELECT b FROM ol_t ORDER BY b COLLATE NOCASE DESC LIMIT 3;
SELECT a FROM ol_t UNION SELECT a + 5 FROM ol_t ORDER BY 1 DESC LIMIT 5;
SELECT a FROM ol_t UNION ALL SELECT a FROM ol_t WHERE a > 6 ORDER BY 1 LIMIT 20;
SELECT a FROM ol_t INTERSECT SELECT a + 1 FROM ol_t ORDER BY 1;
SELECT a FROM ol_t EXCEPT SELECT a * 2 FROM ol_t ORDER BY 1;
SELECT DISTINCT a FROM ol_t ORDER BY a DESC LIMIT 3 OFFSET 1;
SELECT count(*) FROM (SELECT * FROM ol_t ORDER BY a LIMIT 4);
SELECT * FROM (SELECT * FROM ol_t ORDER BY a DESC, b DESC LIMIT 3) ORDER BY a, b;
SELECT * FROM ol_t ORDER BY a, b LIMIT (SELECT count(*) FROM ol_t WHERE a < 3);
DROP TABLE ol_t;
