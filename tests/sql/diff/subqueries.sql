-- Subqueries: IN / NOT IN (with NULLs), EXISTS, scalar and correlated
-- subqueries, subqueries in FROM, in SELECT lists and in UPDATE/DELETE.
CREATE TABLE sq_emp(id INTEGER PRIMARY KEY, name TEXT, dept TEXT, salary INTEGER, boss INTEGER);
CREATE TABLE sq_dept(code TEXT PRIMARY KEY, title TEXT, budget INTEGER);
INSERT INTO sq_emp VALUES (1, 'ann', 'eng', 120, NULL), (2, 'bob', 'eng', 100, 1), (3, 'cat', 'ops', 90, 1),
                          (4, 'dan', 'ops', 95, 3), (5, 'eve', NULL, 50, 3), (6, 'fay', 'eng', 100, 2),
                          (7, 'gus', 'hr', 70, NULL);
INSERT INTO sq_dept VALUES ('eng', 'Engineering', 400), ('ops', 'Operations', 150), ('law', 'Legal', 10);
SELECT name FROM sq_emp WHERE dept IN (SELECT code FROM sq_dept) ORDER BY name;
SELECT name FROM sq_emp WHERE dept NOT IN (SELECT code FROM sq_dept) ORDER BY name;
SELECT code FROM sq_dept WHERE code NOT IN (SELECT dept FROM sq_emp) ORDER BY code;
SELECT code FROM sq_dept WHERE code NOT IN (SELECT dept FROM sq_emp WHERE dept IS NOT NULL) ORDER BY code;
SELECT code FROM sq_dept d WHERE EXISTS (SELECT 1 FROM sq_emp e WHERE e.dept = d.code) ORDER BY code;
SELECT code FROM sq_dept d WHERE NOT EXISTS (SELECT 1 FROM sq_emp e WHERE e.dept = d.code) ORDER BY code;
SELECT name, salary FROM sq_emp WHERE salary > (SELECT avg(salary) FROM sq_emp) ORDER BY id;
SELECT name, salary FROM sq_emp e WHERE salary = (SELECT max(salary) FROM sq_emp x WHERE x.dept IS e.dept)
  ORDER BY id;
SELECT name, (SELECT name FROM sq_emp b WHERE b.id = e.boss) AS boss FROM sq_emp e ORDER BY id;
SELECT name, (SELECT count(*) FROM sq_emp r WHERE r.boss = e.id) AS reports FROM sq_emp e ORDER BY id;
SELECT d.title, t.total FROM sq_dept d
  JOIN (SELECT dept, sum(salary) AS total FROM sq_emp GROUP BY dept) t ON t.dept = d.code ORDER BY d.code;
SELECT dept, n FROM (SELECT dept, count(*) AS n FROM sq_emp GROUP BY dept) WHERE n > 1 ORDER BY dept;
SELECT (SELECT max(id) FROM sq_emp), (SELECT min(code) FROM sq_dept), (SELECT title FROM sq_dept WHERE 0);
SELECT name FROM sq_emp WHERE (dept, salary) IN (SELECT dept, max(salary) FROM sq_emp GROUP BY dept) ORDER BY id;
SELECT name FROM sq_emp WHERE id IN (SELECT boss FROM sq_emp) ORDER BY id;
SELECT name FROM sq_emp WHERE id NOT IN (SELECT boss FROM sq_emp WHERE boss IS NOT NULL) ORDER BY id;
SELECT name, CASE WHEN EXISTS (SELECT 1 FROM sq_emp r WHERE r.boss = e.id) THEN 'boss' ELSE 'ic' END
  FROM sq_emp e ORDER BY id;
UPDATE sq_emp SET salary = salary + 10 WHERE dept IN (SELECT code FROM sq_dept WHERE budget < 200);
SELECT id, salary FROM sq_emp ORDER BY id;
UPDATE sq_dept SET budget = (SELECT sum(salary) FROM sq_emp WHERE dept = sq_dept.code);
SELECT * FROM sq_dept ORDER BY code;
DELETE FROM sq_emp WHERE boss IN (SELECT id FROM sq_emp WHERE dept = 'ops');
SELECT id, name FROM sq_emp ORDER BY id;
DROP TABLE sq_emp;
DROP TABLE sq_dept;
