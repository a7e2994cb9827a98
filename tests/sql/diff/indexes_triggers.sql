-- diff: continue-on-error
-- diff: errors 17 38
-- Secondary indexes (plain, composite, UNIQUE, with NULLs), used for lookups
-- and kept up to date by every write; triggers (BEFORE/AFTER, FOR EACH ROW,
-- WHEN, on INSERT/UPDATE/DELETE, INSTEAD OF on a view); DROP INDEX/TRIGGER.
-- The order triggers fire in within one statement follows the plan: the audit
-- rows are compared as a set.
CREATE TABLE it_user(id INTEGER PRIMARY KEY, email TEXT, city TEXT, age INTEGER);
CREATE TABLE it_audit(n INTEGER PRIMARY KEY, what TEXT);
CREATE INDEX it_user_city ON it_user(city, age DESC);
CREATE UNIQUE INDEX it_user_email ON it_user(email);
INSERT INTO it_user VALUES (1, 'a@x', 'oslo', 30), (2, 'b@x', 'rome', 25), (3, NULL, 'oslo', 41),
                           (4, NULL, NULL, 19), (5, 'e@x', 'oslo', 30);
SELECT id FROM it_user WHERE city = 'oslo' ORDER BY age DESC, id;
SELECT id FROM it_user WHERE city = 'oslo' AND age = 30 ORDER BY id;
SELECT id FROM it_user WHERE email = 'b@x';
INSERT INTO it_user VALUES (6, 'a@x', 'paris', 50);
UPDATE it_user SET city = 'paris' WHERE id = 1;
SELECT id, city FROM it_user WHERE city = 'paris' ORDER BY id;
SELECT id FROM it_user WHERE city = 'oslo' ORDER BY id;
DELETE FROM it_user WHERE id = 5;
SELECT id FROM it_user WHERE city = 'oslo' ORDER BY id;
INSERT INTO it_user VALUES (5, 'e@x', 'oslo', 31);
SELECT id, age FROM it_user WHERE city = 'oslo' ORDER BY age;
CREATE TRIGGER it_ins AFTER INSERT ON it_user BEGIN
  INSERT INTO it_audit(what) VALUES ('ins ' || NEW.id || ' ' || coalesce(NEW.email, '-'));
END;
CREATE TRIGGER it_upd AFTER UPDATE OF age ON it_user FOR EACH ROW WHEN NEW.age > OLD.age BEGIN
  INSERT INTO it_audit(what) VALUES ('older ' || NEW.id || ' ' || OLD.age || '->' || NEW.age);
END;
CREATE TRIGGER it_del BEFORE DELETE ON it_user BEGIN
  INSERT INTO it_audit(what) VALUES ('del ' || OLD.id);
END;
CREATE TRIGGER it_guard BEFORE INSERT ON it_user WHEN NEW.age < 0 BEGIN
  SELECT RAISE(ABORT, 'negative age');
END;
INSERT INTO it_user VALUES (7, 'g@x', 'rome', 60), (8, NULL, 'rome', 1);
INSERT INTO it_user VALUES (9, 'i@x', 'rome', -1);
UPDATE it_user SET age = age + 1 WHERE city = 'rome';
UPDATE it_user SET age = age - 1 WHERE id = 2;
DELETE FROM it_user WHERE city IS NULL;
SELECT what FROM it_audit ORDER BY what;
SELECT id, age FROM it_user ORDER BY id;
CREATE VIEW it_names AS SELECT id, email FROM it_user;
CREATE TRIGGER it_names_ins INSTEAD OF INSERT ON it_names BEGIN
  INSERT INTO it_user(id, email, city, age) VALUES (NEW.id, NEW.email, 'via view', 0);
END;
INSERT INTO it_names VALUES (20, 't@x');
SELECT id, email, city FROM it_user WHERE id = 20;
SELECT what FROM it_audit ORDER BY n DESC LIMIT 1;
DROP TRIGGER it_ins;
INSERT INTO it_user VALUES (21, 'u@x', 'oslo', 2);
SELECT count(*) FROM it_audit;
DROP INDEX it_user_email;
INSERT INTO it_user VALUES (22, 'u@x', 'oslo', 3);
SELECT id FROM it_user WHERE email = 'u@x' ORDER BY id;
DROP VIEW it_names;
DROP TABLE it_user;
DROP TABLE it_audit;
