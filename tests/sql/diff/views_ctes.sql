-- Views and common table expressions: views over joins and aggregates, views
-- of views, recursive CTEs (counting, a hierarchy), CTEs used twice,
-- materialized hints, DROP VIEW.
CREATE TABLE vc_node(id INTEGER PRIMARY KEY, parent INTEGER, label TEXT, weight INTEGER);
INSERT INTO vc_node VALUES (1, NULL, 'root', 1), (2, 1, 'a', 2), (3, 1, 'b', 3), (4, 2, 'a1', 4),
                           (5, 2, 'a2', 5), (6, 4, 'a1x', 6), (7, 3, 'b1', 7), (8, NULL, 'lone', 8);
CREATE VIEW vc_kids AS SELECT p.label AS parent, c.label AS child, c.weight FROM vc_node p JOIN vc_node c ON c.parent = p.id;
CREATE VIEW vc_fanout AS SELECT parent, count(*) AS n, sum(weight) AS w FROM vc_kids GROUP BY parent;
SELECT * FROM vc_kids ORDER BY parent, child;
SELECT * FROM vc_fanout ORDER BY parent;
SELECT * FROM vc_fanout WHERE n > 1 ORDER BY w DESC;
INSERT INTO vc_node VALUES (9, 3, 'b2', 9);
SELECT * FROM vc_fanout ORDER BY parent;
WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < 10)
  SELECT x, x * x FROM cnt ORDER BY x;
WITH RECURSIVE tree(id, label, depth, path) AS (
    SELECT id, label, 0, label FROM vc_node WHERE parent IS NULL
    UNION ALL
    SELECT n.id, n.label, t.depth + 1, t.path || '/' || n.label FROM vc_node n JOIN tree t ON n.parent = t.id)
  SELECT id, depth, path FROM tree ORDER BY path;
WITH RECURSIVE up(id, parent, hops) AS (
    SELECT id, parent, 0 FROM vc_node WHERE label = 'a1x'
    UNION ALL
    SELECT n.id, n.parent, up.hops + 1 FROM vc_node n JOIN up ON n.id = up.parent)
  SELECT id, hops FROM up ORDER BY hops;
WITH heavy AS (SELECT * FROM vc_node WHERE weight > 4)
  SELECT a.label, b.label FROM heavy a JOIN heavy b ON b.parent = a.id ORDER BY 1, 2;
WITH s(total) AS MATERIALIZED (SELECT sum(weight) FROM vc_node)
  SELECT label, weight, round(100.0 * weight / total, 2) FROM vc_node, s ORDER BY id;
WITH x AS NOT MATERIALIZED (SELECT id FROM vc_node WHERE id % 2 = 0) SELECT count(*), sum(id) FROM x;
CREATE VIEW vc_deep AS WITH RECURSIVE d(id, depth) AS (
    SELECT id, 0 FROM vc_node WHERE parent IS NULL
    UNION ALL SELECT n.id, d.depth + 1 FROM vc_node n JOIN d ON n.parent = d.id)
  SELECT depth, count(*) AS n FROM d GROUP BY depth;
SELECT * FROM vc_deep ORDER BY depth;
UPDATE vc_node SET parent = 8 WHERE id = 3;
SELECT * FROM vc_deep ORDER BY depth;
SELECT * FROM vc_kids WHERE parent = 'lone' ORDER BY child;
DROP VIEW vc_deep;
DROP VIEW vc_fanout;
DROP VIEW vc_kids;
DROP TABLE vc_node;
