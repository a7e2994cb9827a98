-- diff: continue-on-error
-- diff: errors 18 19 20 21 22 23 25 26 28 30 33 34 35 36
-- Constraints: NOT NULL, CHECK, DEFAULT, PRIMARY KEY and UNIQUE violations
-- (single and composite), each refused before any change; the statements that
-- follow see the table unchanged. Runs on after errors (sqlite3 without -bail,
-- meridian sql --continue-on-error); the failing lines are listed above.
CREATE TABLE cn_acct(
  id INTEGER PRIMARY KEY,
  owner TEXT NOT NULL,
  email TEXT UNIQUE,
  balance INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
  kind TEXT DEFAULT 'basic' CHECK (kind IN ('basic', 'gold')),
  created TEXT DEFAULT 'never',
  UNIQUE (owner, kind));
CREATE TABLE cn_pair(a INTEGER, b TEXT, note TEXT NOT NULL DEFAULT '', PRIMARY KEY(a, b));
INSERT INTO cn_acct(id, owner, email) VALUES (1, 'ann', 'ann@x');
INSERT INTO cn_acct(id, owner, email, balance, kind) VALUES (2, 'bob', 'bob@x', 50, 'gold');
INSERT INTO cn_acct(id, owner, email) VALUES (1, 'dup', 'dup@x');
INSERT INTO cn_acct(id, owner, email) VALUES (3, NULL, 'n@x');
INSERT INTO cn_acct(id, owner, email) VALUES (3, 'cy', 'ann@x');
INSERT INTO cn_acct(id, owner, balance) VALUES (3, 'cy', -1);
INSERT INTO cn_acct(id, owner, kind) VALUES (3, 'cy', 'platinum');
INSERT INTO cn_acct(id, owner, email, kind) VALUES (3, 'ann', 'other@x', 'basic');
INSERT INTO cn_acct(id, owner, email, balance) VALUES (3, 'cy', NULL, 5), (4, 'di', NULL, 6);
INSERT INTO cn_acct(id, owner, email, balance) VALUES (5, 'ed', 'ed@x', 1), (6, 'fi', 'ed@x', 1);
UPDATE cn_acct SET balance = balance - 10 WHERE id = 1;
SELECT * FROM cn_acct ORDER BY id;
UPDATE cn_acct SET email = 'bob@x' WHERE id = 1;
UPDATE cn_acct SET balance = balance + 1;
UPDATE cn_acct SET owner = NULL WHERE id = 3;
SELECT id, owner, email, balance, kind, created FROM cn_acct ORDER BY id;
INSERT INTO cn_pair(a, b) VALUES (1, 'x'), (1, 'y'), (2, 'x');
INSERT INTO cn_pair VALUES (1, 'x', 'again');
UPDATE cn_pair SET b = 'y' WHERE a = 1 AND b = 'x';
UPDATE cn_pair SET a = 2 WHERE a = 1 AND b = 'x';
UPDATE cn_pair SET note = NULL;
SELECT a, b, quote(note) FROM cn_pair ORDER BY a, b;
UPDATE cn_pair SET a = 10 WHERE a = 1 AND b = 'y';
SELECT a, b, quote(note) FROM cn_pair ORDER BY a, b;
INSERT INTO cn_acct(id, owner, email) VALUES (7, 'gus', 'GUS@x');
INSERT INTO cn_acct(id, owner, email) VALUES (8, 'hal', 'gus@x');
SELECT id, owner, email FROM cn_acct ORDER BY email;
DROP TABLE cn_acct;
DROP TABLE cn_pair;
