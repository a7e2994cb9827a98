-- diff: continue-on-error
-- diff: errors 25 34 37 46 47
-- Transactions: BEGIN/COMMIT/ROLLBACK, reads of a transaction's own writes,
-- a failed statement inside BEGIN keeps the transaction (and its earlier
-- statements) open, ROLLBACK discards everything, savepoints, errors for
-- COMMIT without BEGIN and nested BEGIN.
CREATE TABLE tx_acct(id INTEGER PRIMARY KEY, owner TEXT, balance INTEGER NOT NULL CHECK (balance >= 0));
INSERT INTO tx_acct VALUES (1, 'ann', 100), (2, 'bob', 50), (3, 'cy', 0);
BEGIN;
UPDATE tx_acct SET balance = balance - 30 WHERE id = 1;
UPDATE tx_acct SET balance = balance + 30 WHERE id = 2;
SELECT id, balance FROM tx_acct ORDER BY id;
SELECT sum(balance) FROM tx_acct;
COMMIT;
SELECT id, balance FROM tx_acct ORDER BY id;
BEGIN;
DELETE FROM tx_acct WHERE id = 3;
INSERT INTO tx_acct VALUES (4, 'di', 10);
UPDATE tx_acct SET owner = upper(owner);
SELECT * FROM tx_acct ORDER BY id;
ROLLBACK;
SELECT * FROM tx_acct ORDER BY id;
BEGIN TRANSACTION;
INSERT INTO tx_acct VALUES (5, 'ed', 5);
UPDATE tx_acct SET balance = balance - 1000 WHERE id = 1;
SELECT id, balance FROM tx_acct ORDER BY id;
UPDATE tx_acct SET balance = balance - 5 WHERE id IN (5, 2);
END TRANSACTION;
SELECT id, balance FROM tx_acct ORDER BY id;
BEGIN;
INSERT INTO tx_acct VALUES (6, 'fi', 6);
SAVEPOINT sp1;
INSERT INTO tx_acct VALUES (7, 'gus', 7);
BEGIN;
SELECT id FROM tx_acct WHERE id >= 6 ORDER BY id;
ROLLBACK TO sp1;
INSERT INTO tx_acct VALUES (6, 'dup', 1);
SELECT id FROM tx_acct WHERE id >= 6 ORDER BY id;
RELEASE sp1;
COMMIT;
SELECT * FROM tx_acct ORDER BY id;
BEGIN;
UPDATE tx_acct SET balance = 0;
SELECT sum(balance) FROM tx_acct;
COMMIT;
COMMIT;
ROLLBACK;
SELECT sum(balance), count(*) FROM tx_acct;
BEGIN;
DELETE FROM tx_acct;
SELECT count(*) FROM tx_acct;
ROLLBACK;
SELECT count(*) FROM tx_acct;
DROP TABLE tx_acct;
