-- Types and affinity: what each declared type does to the values stored,
-- typeof() and quote() of the results, and comparisons across types.
CREATE TABLE ty_aff(id INTEGER PRIMARY KEY, i INTEGER, t TEXT, r REAL, n NUMERIC, b BLOB, u);
INSERT INTO ty_aff VALUES (1, 1, 1, 1, 1, 1, 1);
INSERT INTO ty_aff VALUES (2, '2', '2', '2', '2', '2', '2');
INSERT INTO ty_aff VALUES (3, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0);
INSERT INTO ty_aff VALUES (4, 4.5, 4.5, 4.5, 4.5, 4.5, 4.5);
INSERT INTO ty_aff VALUES (5, '5.0', '5.0', '5.0', '5.0', '5.0', '5.0');
INSERT INTO ty_aff VALUES (6, 'abc', 'abc', 'abc', 'abc', 'abc', 'abc');
INSERT INTO ty_aff VALUES (7, x'0102', x'0102', x'0102', x'0102', x'0102', x'0102');
INSERT INTO ty_aff VALUES (8, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO ty_aff VALUES (9, ' 12 ', ' 12 ', ' 12 ', ' 12 ', ' 12 ', ' 12 ');
INSERT INTO ty_aff VALUES (10, '1e3', '1e3', '1e3', '1e3', '1e3', '1e3');
INSERT INTO ty_aff VALUES (11, 9223372036854775807, 9223372036854775807, 9223372036854775807,
                           9223372036854775807, 9223372036854775807, 9223372036854775807);
INSERT INTO ty_aff VALUES (12, '9223372036854775808', '9223372036854775808', '9223372036854775808',
                           '9223372036854775808', '9223372036854775808', '9223372036854775808');
INSERT INTO ty_aff VALUES (13, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0);
INSERT INTO ty_aff VALUES (14, '0x10', '0x10', '0x10', '0x10', '0x10', '0x10');
SELECT id, typeof(i), typeof(t), typeof(r), typeof(n), typeof(b), typeof(u) FROM ty_aff ORDER BY id;
SELECT id, quote(i), quote(t), quote(r), quote(n), quote(b), quote(u) FROM ty_aff ORDER BY id;
SELECT id, i, t, r, n, u FROM ty_aff WHERE id <> 7 ORDER BY id;
-- comparisons apply the column's affinity to the literal
SELECT id FROM ty_aff WHERE i = '2' ORDER BY id;
SELECT id FROM ty_aff WHERE t = 2 ORDER BY id;
SELECT id FROM ty_aff WHERE r = 3 ORDER BY id;
SELECT id FROM ty_aff WHERE u = 2 ORDER BY id;
SELECT id FROM ty_aff WHERE u = '2' ORDER BY id;
SELECT id FROM ty_aff WHERE n > 2.5 ORDER BY id;
SELECT id FROM ty_aff WHERE i < 'a' ORDER BY id;
SELECT id FROM ty_aff WHERE t > 'a' ORDER BY id;
SELECT id FROM ty_aff WHERE b > x'00' ORDER BY id;
-- ordering across types: NULL < numbers < text < blob
SELECT id, quote(u) FROM ty_aff ORDER BY u, id;
SELECT id, quote(u) FROM ty_aff ORDER BY u DESC, id;
SELECT quote(u), count(*) FROM ty_aff GROUP BY u ORDER BY u;
-- CAST and expression types
SELECT CAST('12abc' AS INTEGER), CAST(3.9 AS INTEGER), CAST(-3.9 AS INTEGER), CAST('x' AS REAL),
       CAST(12 AS TEXT) || '!', typeof(CAST(x'41' AS TEXT)), CAST('4.0' AS NUMERIC), typeof(CAST('4.0' AS NUMERIC));
SELECT 7 / 2, 7 / 2.0, 7 % 3, -7 % 3, 2 * 3.5, 1 / 0, 1.0 / 0, 9223372036854775807 + 1;
SELECT 'a' || 1 || 2.5, length('héllo'), length(x'0001'), upper('abc'), lower('ÀBC'), hex('é');
SELECT typeof(1), typeof(1.0), typeof('1'), typeof(x'01'), typeof(NULL), typeof(1 + 1.0);
SELECT round(2.5), round(-2.5), round(1.2345, 2), abs(-9223372036854775807), max(1, 2.5, '3'), min(1, 'a', x'00');
SELECT substr('hello', 2, 3), substr('hello', -3), replace('a.b.c', '.', '/'), trim('  x  '), instr('hello', 'l');
SELECT printf('%05d|%.3f|%s|%x', 42, 3.14159, 'z', 255), coalesce(NULL, NULL, 3), ifnull(NULL, 'd'), nullif(2, 2);
SELECT 'abc' LIKE 'A%', 'abc' GLOB 'A*', 'abc' GLOB 'a*', 'a_c' LIKE 'a\_c' ESCAPE '\', 5 BETWEEN 1 AND 10;
SELECT CASE WHEN 1 > 2 THEN 'x' WHEN 2 > 1 THEN 'y' ELSE 'z' END, CASE 3 WHEN 1 THEN 'one' WHEN 3 THEN 'three' END;
SELECT 0.1 + 0.2, 1e15 + 0.5, 123456789012345678, 1.5e300 * 1e10, -1.5e300 * 1e10, 2.0e-7, 100.0, 1e100;
DROP TABLE ty_aff;
