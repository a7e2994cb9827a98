-- Aggregates with GROUP BY / HAVING: count, sum (integer and real, overflow
-- to real in total), avg, min/max across types, DISTINCT, filters, grouping on
-- expressions and on key prefixes.
CREATE TABLE ag_sale(region TEXT, store INTEGER, day INTEGER, units INTEGER, price REAL, tag,
                     PRIMARY KEY(region, store, day));
INSERT INTO ag_sale VALUES
  ('north', 1, 1, 10, 2.5, 'a'), ('north', 1, 2, 0, 2.5, NULL), ('north', 1, 3, 7, 3.25, 'b'),
  ('north', 2, 1, 4, 1.75, 'a'), ('north', 2, 2, NULL, 1.75, 1), ('south', 1, 1, 20, 0.5, 2.5),
  ('south', 1, 2, 15, 0.75, 'a'), ('south', 3, 1, 1, 10.0, x'00'), ('east', 1, 1, 3, 4.0, 'c'),
  ('east', 1, 5, 3, 4.0, 'c'), ('west', 9, 9, -5, -1.25, NULL);
SELECT count(*), count(units), sum(units), total(units), avg(units), min(units), max(units) FROM ag_sale;
SELECT sum(price), avg(price), min(price), max(price), sum(units * price) FROM ag_sale;
SELECT region, count(*), sum(units), avg(price), min(day), max(day) FROM ag_sale GROUP BY region ORDER BY region;
SELECT region, store, sum(units) AS u FROM ag_sale GROUP BY region, store ORDER BY region, store;
SELECT region, store, sum(units) AS u FROM ag_sale GROUP BY 1, 2 HAVING u > 5 ORDER BY u DESC, region;
SELECT region, count(*) FROM ag_sale WHERE units > 0 GROUP BY region HAVING count(*) >= 2 ORDER BY region;
SELECT region FROM ag_sale GROUP BY region HAVING max(price) > 3 ORDER BY region;
SELECT region, count(DISTINCT store), count(DISTINCT tag), sum(DISTINCT units) FROM ag_sale
  GROUP BY region ORDER BY region;
SELECT units % 2 AS parity, count(*), sum(units) FROM ag_sale WHERE units IS NOT NULL GROUP BY parity ORDER BY parity;
SELECT typeof(tag), count(*) FROM ag_sale GROUP BY typeof(tag) ORDER BY 1;
SELECT min(tag), max(tag) FROM ag_sale;
SELECT tag, count(*) FROM ag_sale GROUP BY tag ORDER BY tag;
SELECT region, sum(units) FILTER (WHERE day = 1), count(*) FILTER (WHERE price >= 2.5) FROM ag_sale
  GROUP BY region ORDER BY region;
SELECT region, max(units), min(units) FROM ag_sale WHERE region = 'north' GROUP BY region;
SELECT store, count(*) FROM ag_sale WHERE region = 'north' GROUP BY store ORDER BY store;
SELECT count(*), sum(units), max(price) FROM ag_sale WHERE region = 'nowhere';
SELECT region, count(*) FROM ag_sale WHERE region = 'nowhere' GROUP BY region;
SELECT total(x), typeof(total(x)) FROM (SELECT 9223372036854775807 AS x UNION ALL SELECT 1);
SELECT avg(units), sum(units) / count(units), CAST(sum(units) AS REAL) / count(units) FROM ag_sale;
SELECT count(*) FROM (SELECT DISTINCT region, store FROM ag_sale);
SELECT DISTINCT region, store FROM ag_sale ORDER BY 1, 2;
DROP TABLE ag_sale;
