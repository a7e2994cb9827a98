-- Composite and DESC primary keys: point reads, prefix and range scans,
-- mixed-type key columns, and ORDER BY in and against the key order.
CREATE TABLE ck_a(region TEXT, id INTEGER, name TEXT, PRIMARY KEY(region, id));
CREATE TABLE ck_b(k1 INTEGER, k2 TEXT, k3 REAL, v, PRIMARY KEY(k1 DESC, k2, k3 DESC));
CREATE TABLE ck_c(k, v, PRIMARY KEY(k));
INSERT INTO ck_a VALUES ('eu', 1, 'ana'), ('eu', 2, 'bo'), ('eu', 10, 'cy'), ('us', 1, 'di'),
                        ('us', 3, 'ed'), ('asia', 7, 'fu'), ('', 0, 'empty'), ('eu ', 1, 'space');
INSERT INTO ck_b VALUES (1, 'a', 1.5, 'x1'), (1, 'a', 2.5, 'x2'), (1, 'b', 0.5, 'x3'),
                        (2, 'a', 1.5, 'x4'), (-1, 'z', -1.5, 'x5'), (2, '', 9.5, 'x6'),
                        (1, 'a', -0.5, 'x7'), (0, 'm', 0.0, 'x8');
INSERT INTO ck_c VALUES (1, 'int'), (1.5, 'real'), ('1', 'text'), (x'01', 'blob'), (-5, 'neg'),
                        ('', 'empty text'), (x'', 'empty blob'), (9223372036854775807, 'max'),
                        (-9223372036854775808, 'min'), (9007199254740993, 'big'),
                        (9007199254740992.0, 'big real'), ('a' || char(0) || 'b', 'nul');
SELECT * FROM ck_a ORDER BY region, id;
SELECT * FROM ck_a WHERE region = 'eu' ORDER BY region, id;
SELECT * FROM ck_a WHERE region = 'eu' AND id = 2;
SELECT * FROM ck_a WHERE region = 'eu' AND id > 1 ORDER BY id;
SELECT * FROM ck_a WHERE region = 'eu' AND id BETWEEN 2 AND 10 ORDER BY id DESC;
SELECT * FROM ck_a WHERE region >= 'eu' AND region < 'ev' ORDER BY region, id;
SELECT * FROM ck_a WHERE region IN ('us', 'asia', 'nowhere') ORDER BY region, id;
SELECT * FROM ck_a WHERE region = 'eu' AND id IN (10, 1, 5) ORDER BY id;
SELECT * FROM ck_a WHERE id = 1 ORDER BY region;
SELECT * FROM ck_a WHERE region = 'eu' AND id = '2';
SELECT * FROM ck_a WHERE region = 'eu' AND id > 1.5 ORDER BY id;
SELECT * FROM ck_a WHERE region = 'eu' AND id = 1.5;
SELECT * FROM ck_a WHERE region = 'eu' AND id < 'abc' ORDER BY id;
SELECT * FROM ck_a WHERE region > 'a' ORDER BY region DESC, id DESC LIMIT 3;
SELECT * FROM ck_b ORDER BY k1 DESC, k2, k3 DESC;
SELECT * FROM ck_b ORDER BY k1, k2 DESC, k3;
SELECT * FROM ck_b WHERE k1 = 1 ORDER BY k1 DESC, k2, k3 DESC;
SELECT * FROM ck_b WHERE k1 = 1 AND k2 = 'a' AND k3 >= 1.5 ORDER BY k3;
SELECT * FROM ck_b WHERE k1 = 1 AND k2 = 'a' AND k3 = 2.5;
SELECT * FROM ck_b WHERE k1 >= 1 ORDER BY v;
SELECT * FROM ck_b WHERE k1 < 1 ORDER BY v;
SELECT k, typeof(k), v FROM ck_c ORDER BY k;
SELECT v FROM ck_c WHERE k = 1;
SELECT v FROM ck_c WHERE k = '1';
SELECT v FROM ck_c WHERE k = 1.0;
SELECT v FROM ck_c WHERE k = x'01';
SELECT v FROM ck_c WHERE k > 1 AND k < 'z' ORDER BY k;
SELECT v FROM ck_c WHERE k >= 9007199254740992 ORDER BY k;
SELECT v FROM ck_c WHERE k > 9007199254740992.0 ORDER BY k;
SELECT v FROM ck_c WHERE k < -9223372036854775807 ORDER BY k;
SELECT v FROM ck_c WHERE k = 'a' || char(0) || 'b';
SELECT v, length(k) FROM ck_c WHERE typeof(k) = 'text' ORDER BY k;
UPDATE ck_a SET id = id + 100 WHERE region = 'us';
SELECT * FROM ck_a WHERE region = 'us' ORDER BY id;
UPDATE ck_a SET region = 'eu' WHERE region = 'asia';
SELECT * FROM ck_a ORDER BY region, id;
DELETE FROM ck_b WHERE k1 = 1 AND k2 = 'a';
SELECT * FROM ck_b ORDER BY k1 DESC, k2, k3 DESC;
DROP TABLE ck_a;
DROP TABLE ck_b;
DROP TABLE ck_c;
