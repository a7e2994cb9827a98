-- DELETE and UPDATE with expressions: arithmetic on several columns at once
-- (all right-hand sides see the old row), CASE, functions, key changes that
-- move rows, UPDATE ... FROM, INSERT ... SELECT, DEFAULT VALUES, and
-- changes() / total_changes() style counts through count(*) afterwards.
CREATE TABLE dm_item(sku TEXT PRIMARY KEY, qty INTEGER, price REAL, cat TEXT, note TEXT DEFAULT 'none');
CREATE TABLE dm_price(cat TEXT PRIMARY KEY, factor REAL);
CREATE TABLE dm_log(n INTEGER PRIMARY KEY, msg TEXT DEFAULT 'empty', at INTEGER DEFAULT 7);
INSERT INTO dm_item(sku, qty, price, cat) VALUES ('a1', 10, 1.5, 'fruit'), ('a2', 0, 2.25, 'fruit'),
    ('b1', 5, 10.0, 'tool'), ('b2', 3, 7.75, 'tool'), ('c1', 100, 0.25, 'misc'), ('c2', NULL, NULL, NULL);
INSERT INTO dm_price VALUES ('fruit', 2.0), ('tool', 0.5);
UPDATE dm_item SET qty = qty + 1, price = price * 2 WHERE cat = 'fruit';
SELECT sku, qty, price FROM dm_item ORDER BY sku;
UPDATE dm_item SET qty = price, price = qty WHERE sku = 'b1';
SELECT sku, qty, price FROM dm_item WHERE sku = 'b1';
UPDATE dm_item SET note = CASE WHEN qty > 10 THEN 'many' WHEN qty > 0 THEN 'some' ELSE 'out' END;
SELECT sku, note FROM dm_item ORDER BY sku;
UPDATE dm_item SET sku = upper(sku) WHERE sku LIKE 'a%';
SELECT sku FROM dm_item ORDER BY sku;
UPDATE dm_item SET sku = 'z' || sku WHERE qty < 5;
SELECT sku, qty FROM dm_item ORDER BY sku;
UPDATE dm_item SET price = price * dm_price.factor FROM dm_price WHERE dm_item.cat = dm_price.cat;
SELECT sku, price FROM dm_item ORDER BY sku;
UPDATE dm_item SET qty = (SELECT count(*) FROM dm_price WHERE dm_price.cat = dm_item.cat) WHERE cat IS NOT NULL;
SELECT sku, qty FROM dm_item ORDER BY sku;
DELETE FROM dm_item WHERE price > 10 OR price IS NULL;
SELECT sku FROM dm_item ORDER BY sku;
DELETE FROM dm_item WHERE sku IN (SELECT sku FROM dm_item ORDER BY sku LIMIT 1);
SELECT sku FROM dm_item ORDER BY sku;
INSERT INTO dm_log DEFAULT VALUES;
INSERT INTO dm_log(msg) VALUES ('hello');
INSERT INTO dm_log(n, at) VALUES (10, NULL);
INSERT INTO dm_log(msg) SELECT sku || ':' || qty FROM dm_item ORDER BY sku;
SELECT n, msg, at FROM dm_log ORDER BY n;
INSERT INTO dm_item(sku, qty, price) SELECT 'n' || n, n, n / 4.0 FROM dm_log WHERE n > 1;
SELECT sku, qty, price, cat, note FROM dm_item ORDER BY sku;
UPDATE dm_log SET n = n + 100;
SELECT n FROM dm_log ORDER BY n;
UPDATE dm_log SET n = -n WHERE n % 2 = 1;
SELECT n FROM dm_log ORDER BY n;
DELETE FROM dm_log WHERE n < 0;
SELECT count(*), min(n), max(n) FROM dm_log;
DELETE FROM dm_item;
SELECT count(*) FROM dm_item;
DROP TABLE dm_item;
DROP TABLE dm_price;
DROP TABLE dm_log;
