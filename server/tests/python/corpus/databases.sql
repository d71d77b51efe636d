-- Issue 10: databases against MariaDB: CREATE / DROP DATABASE, USE,
-- qualified names db.table in every statement, SHOW DATABASES, SHOW TABLES
-- FROM, DATABASE(), and their errors (1007, 1008, 1046, 1049, 1146).
-- (format: see basic.sql). The names start with corpdb_ so that SHOW
-- DATABASES LIKE sees only this file's databases on either server; the
-- file starts by dropping them in case an earlier run left them behind.
DROP DATABASE IF EXISTS corpdb_a;
DROP DATABASE IF EXISTS corpdb_b;
CREATE DATABASE corpdb_a;
CREATE DATABASE IF NOT EXISTS corpdb_b;
CREATE DATABASE IF NOT EXISTS corpdb_b;
-- expect-error
CREATE DATABASE corpdb_a;
SHOW DATABASES LIKE 'corpdb%';
USE corpdb_a;
SELECT DATABASE();
SELECT SCHEMA();
CREATE TABLE t (id INT, name VARCHAR(20));
CREATE TABLE corpdb_b.t (id INT, amount DOUBLE);
INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');
INSERT INTO corpdb_b.t VALUES (1, 10.5), (3, 30), (4, 40);
SELECT id, name FROM t ORDER BY id;
SELECT id, amount FROM corpdb_b.t ORDER BY id;
SELECT a.id, a.name, b.amount FROM corpdb_a.t AS a JOIN corpdb_b.t AS b ON a.id = b.id ORDER BY a.id;
SELECT corpdb_b.t.id FROM corpdb_b.t WHERE corpdb_b.t.amount > 20 ORDER BY 1;
SELECT count(*) FROM t WHERE id IN (SELECT id FROM corpdb_b.t);
INSERT INTO corpdb_b.t SELECT id, id * 100 FROM corpdb_a.t WHERE id = 2;
UPDATE corpdb_b.t SET amount = amount + 1 WHERE id = 4;
DELETE FROM corpdb_b.t WHERE id = 1;
SELECT id, amount FROM corpdb_b.t ORDER BY id;
SHOW TABLES;
SHOW TABLES FROM corpdb_b;
CREATE VIEW corpdb_b.v AS SELECT id FROM corpdb_a.t WHERE id > 1;
SELECT id FROM corpdb_b.v ORDER BY id;
SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema LIKE 'corpdb%' ORDER BY table_schema, table_name;
USE corpdb_b;
SELECT DATABASE();
SELECT id FROM v ORDER BY id;
SELECT count(*) FROM t;
DROP VIEW v;
DROP TABLE corpdb_a.t;
-- expect-error
SELECT * FROM corpdb_a.t;
-- expect-error
SELECT * FROM corpdb_nowhere.t;
-- expect-error
USE corpdb_nowhere;
-- expect-error
CREATE TABLE corpdb_nowhere.t (x INT);
-- expect-error
SHOW TABLES FROM corpdb_nowhere;
-- expect-error
DROP DATABASE corpdb_nowhere;
DROP DATABASE IF EXISTS corpdb_nowhere;
DROP DATABASE corpdb_a;
SHOW DATABASES LIKE 'corpdb%';
DROP DATABASE corpdb_b;
SELECT DATABASE();
-- expect-error
SELECT * FROM t;
-- expect-error
CREATE TABLE t (x INT);
-- expect-error
SHOW TABLES;
SHOW DATABASES LIKE 'corpdb%';
