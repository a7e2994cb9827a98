-- diff: continue-on-error
-- diff: errors 19 21 32 39
-- Conflict modes: INSERT OR REPLACE / OR IGNORE / OR ABORT / OR FAIL /
-- OR ROLLBACK, REPLACE, UPDATE OR IGNORE / OR REPLACE on one row; what each
-- keeps of a multi-row statement, inside and outside a transaction.
CREATE TABLE cm_kv(k TEXT PRIMARY KEY, v INTEGER, u TEXT UNIQUE);
INSERT INTO cm_kv VALUES ('a', 1, 'ua'), ('b', 2, 'ub'), ('c', 3, 'uc');
INSERT OR REPLACE INTO cm_kv VALUES ('a', 10, 'ua2');
REPLACE INTO cm_kv VALUES ('d', 4, 'ud');
SELECT * FROM cm_kv ORDER BY k;
INSERT OR REPLACE INTO cm_kv VALUES ('e', 5, 'ub');
SELECT * FROM cm_kv ORDER BY k;
INSERT OR IGNORE INTO cm_kv VALUES ('a', 99, 'zz'), ('f', 6, 'uf'), ('g', 7, 'uf'), ('h', 8, 'uh');
SELECT * FROM cm_kv ORDER BY k;
INSERT OR IGNORE INTO cm_kv SELECT k || '2', v * 10, u FROM cm_kv WHERE k < 'c';
SELECT * FROM cm_kv ORDER BY k;
INSERT OR IGNORE INTO cm_kv SELECT k || '3', v * 10, u || '3' FROM cm_kv WHERE k < 'c';
SELECT * FROM cm_kv ORDER BY k;
INSERT OR ABORT INTO cm_kv VALUES ('i', 9, 'ui'), ('a', 0, 'x'), ('j', 10, 'uj');
SELECT count(*) FROM cm_kv;
INSERT OR FAIL INTO cm_kv VALUES ('i', 9, 'ui'), ('a', 0, 'x'), ('j', 10, 'uj');
SELECT * FROM cm_kv WHERE k >= 'i' ORDER BY k;
UPDATE OR IGNORE cm_kv SET u = 'ua2' WHERE k = 'd';
SELECT * FROM cm_kv WHERE k = 'd';
UPDATE OR REPLACE cm_kv SET u = 'ua2' WHERE k = 'd';
SELECT * FROM cm_kv ORDER BY k;
UPDATE OR IGNORE cm_kv SET k = 'd' WHERE k = 'f';
UPDATE OR REPLACE cm_kv SET k = 'h' WHERE k = 'f';
SELECT * FROM cm_kv ORDER BY k;
BEGIN;
INSERT INTO cm_kv VALUES ('t1', 1, 'ut1');
INSERT OR ABORT INTO cm_kv VALUES ('t2', 2, 'ut2'), ('t1', 0, 'x');
SELECT k FROM cm_kv WHERE k LIKE 't%' ORDER BY k;
INSERT OR IGNORE INTO cm_kv VALUES ('t1', 0, 'y'), ('t3', 3, 'ut3');
COMMIT;
SELECT k, v FROM cm_kv WHERE k LIKE 't%' ORDER BY k;
BEGIN;
INSERT INTO cm_kv VALUES ('r1', 1, 'ur1');
INSERT OR ROLLBACK INTO cm_kv VALUES ('r2', 2, 'ur2'), ('r1', 0, 'x');
SELECT count(*) FROM cm_kv WHERE k LIKE 'r%';
SELECT k, v, u FROM cm_kv ORDER BY k;
DROP TABLE cm_kv;
