-- Joins: inner, LEFT, CROSS, self joins, USING/NATURAL, joins on key prefixes
-- and on non-key columns, joins across affinities, three-way joins.
CREATE TABLE jn_cust(id INTEGER PRIMARY KEY, name TEXT, city TEXT);
CREATE TABLE jn_ord(cust INTEGER, ono INTEGER, amount INTEGER, note TEXT, PRIMARY KEY(cust, ono));
CREATE TABLE jn_item(cust INTEGER, ono INTEGER, line INTEGER, sku TEXT, qty INTEGER,
                     PRIMARY KEY(cust, ono, line));
CREATE TABLE jn_city(city TEXT PRIMARY KEY, country TEXT);
CREATE TABLE jn_txt(k TEXT PRIMARY KEY, v);
INSERT INTO jn_cust VALUES (1, 'ana', 'lisbon'), (2, 'bo', 'oslo'), (3, 'cy', NULL), (4, 'di', 'lisbon'),
                           (5, 'ed', 'rome');
INSERT INTO jn_ord VALUES (1, 1, 100, 'first'), (1, 2, 250, NULL), (2, 1, 75, 'rush'), (4, 1, 10, NULL),
                          (4, 2, 20, NULL), (4, 3, 30, 'x'), (9, 1, 999, 'orphan');
INSERT INTO jn_item VALUES (1, 1, 1, 'apple', 3), (1, 1, 2, 'pear', 1), (1, 2, 1, 'fig', 10),
                           (2, 1, 1, 'apple', 2), (4, 3, 1, 'kiwi', 5), (4, 3, 2, 'apple', 1);
INSERT INTO jn_city VALUES ('lisbon', 'pt'), ('oslo', 'no'), ('paris', 'fr');
INSERT INTO jn_txt VALUES ('1', 'one'), ('2', 'two'), ('02', 'zero-two'), ('x', 'ex');
SELECT c.name, o.ono, o.amount FROM jn_cust c JOIN jn_ord o ON o.cust = c.id ORDER BY c.name, o.ono;
SELECT c.name, o.ono, o.amount FROM jn_cust c LEFT JOIN jn_ord o ON o.cust = c.id ORDER BY c.name, o.ono;
SELECT c.name, o.ono FROM jn_cust c LEFT JOIN jn_ord o ON o.cust = c.id AND o.amount > 50
  ORDER BY c.name, o.ono;
SELECT c.name FROM jn_cust c LEFT JOIN jn_ord o ON o.cust = c.id WHERE o.cust IS NULL ORDER BY 1;
SELECT o.cust, o.ono, c.name FROM jn_ord o LEFT JOIN jn_cust c ON c.id = o.cust ORDER BY 1, 2;
SELECT c.name, o.ono, i.line, i.sku, i.qty
  FROM jn_cust c JOIN jn_ord o ON o.cust = c.id JOIN jn_item i ON i.cust = o.cust AND i.ono = o.ono
  ORDER BY c.name, o.ono, i.line;
SELECT c.name, sum(i.qty), count(DISTINCT o.ono)
  FROM jn_cust c JOIN jn_ord o ON o.cust = c.id JOIN jn_item i USING (cust, ono)
  GROUP BY c.name ORDER BY c.name;
SELECT c.name, ci.country FROM jn_cust c LEFT JOIN jn_city ci ON ci.city = c.city ORDER BY c.id;
SELECT c.name, ci.country FROM jn_cust c JOIN jn_city ci USING (city) ORDER BY c.id;
SELECT * FROM jn_cust NATURAL JOIN jn_city ORDER BY id;
SELECT a.name, b.name FROM jn_cust a JOIN jn_cust b ON a.city = b.city AND a.id < b.id ORDER BY 1, 2;
SELECT count(*) FROM jn_cust CROSS JOIN jn_city;
SELECT c.name, ci.city FROM jn_cust c, jn_city ci WHERE c.id <= 2 ORDER BY 1, 2;
-- across affinities: INTEGER key against TEXT key
SELECT c.id, t.k, t.v FROM jn_cust c JOIN jn_txt t ON t.k = c.id ORDER BY 1, 2;
SELECT c.id, t.k, t.v FROM jn_cust c JOIN jn_txt t ON t.k = CAST(c.id AS TEXT) ORDER BY 1, 2;
SELECT c.id, t.k FROM jn_txt t LEFT JOIN jn_cust c ON c.id = t.k ORDER BY 2;
-- a point join per outer row
SELECT i.sku, o.note FROM jn_item i JOIN jn_ord o ON o.cust = i.cust AND o.ono = i.ono
  WHERE i.sku = 'apple' ORDER BY i.cust, i.ono;
SELECT o.cust, o.ono, (SELECT count(*) FROM jn_item i WHERE i.cust = o.cust AND i.ono = o.ono) AS n
  FROM jn_ord o ORDER BY 1, 2;
SELECT c.name, o.amount FROM jn_cust c JOIN jn_ord o ON o.cust = c.id
  WHERE c.id IN (1, 4) AND o.ono >= 2 ORDER BY 1, 2;
SELECT c.name, max(o.amount) FROM jn_cust c LEFT JOIN jn_ord o ON o.cust = c.id
  GROUP BY c.id ORDER BY 2 DESC NULLS LAST, 1;
DROP TABLE jn_cust;
DROP TABLE jn_ord;
DROP TABLE jn_item;
DROP TABLE jn_city;
DROP TABLE jn_txt;
