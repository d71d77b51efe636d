-- Correctness corpus: every statement runs on cascade-server and on a
-- MariaDB server; result rows (or affected-row counts, or error codes) must
-- agree. Statements end with ';' at the end of a line. A query without
-- ORDER BY is compared as a multiset of rows.
-- A line "-- expect-error" before a statement says both must fail with the
-- same error code; "-- known-difference: why" records an engine difference
-- (reported as a warning, not a failure).

CREATE TABLE emp (id BIGINT, name VARCHAR(40), dept VARCHAR(20), salary DOUBLE, manager BIGINT, bonus BIGINT);
CREATE TABLE dept (name VARCHAR(20), floor BIGINT, budget DOUBLE);

INSERT INTO emp VALUES
  (1, 'Ada', 'eng', 120000.5, NULL, 10),
  (2, 'Brian', 'eng', 95000, 1, NULL),
  (3, 'Chen', 'eng', 99000, 1, 5),
  (4, 'Dora', 'sales', 70000, NULL, 20),
  (5, 'Eve', 'sales', 72000.25, 4, 0),
  (6, 'Farid', 'ops', 65000, NULL, NULL),
  (7, 'Gus', 'ops', 64000, 6, 3),
  (8, 'Hana', 'research', 130000, NULL, 7);
INSERT INTO dept VALUES ('eng', 3, 1000000), ('sales', 1, 250000.5), ('ops', 0, 90000), ('legal', 2, 50000);

SELECT 1;
SELECT 1 + 2 * 3, 7 - 10, -5, 2 * -3;
SELECT 7 / 2, 7 DIV 2, 7 % 3, -7 % 3, 1.5 * 4;
SELECT 1 / 0, 5 % 0;
SELECT 1 = 1, 1 <> 1, 2 > 1, 2 >= 3, 1 < 2, 2 <= 2, NULL = NULL, NULL <=> NULL, 1 <=> NULL;
SELECT TRUE AND FALSE, TRUE OR FALSE, NOT TRUE, TRUE XOR TRUE, NULL AND FALSE, NULL OR TRUE;
SELECT 'abc', UPPER('abc'), LOWER('ABC'), LENGTH('héllo'), CHAR_LENGTH('héllo'), CONCAT('a', 'b', 'c');
SELECT SUBSTRING('database', 1, 4), SUBSTRING('database', 5), CONCAT('x', NULL);
SELECT COALESCE(NULL, NULL, 3), IFNULL(NULL, 'd'), NULLIF(1, 1), NULLIF(1, 2), IF(1 > 2, 'y', 'n');
SELECT GREATEST(3, 9, 1), LEAST(3, 9, 1), ABS(-4), FLOOR(2.7), CEIL(2.1), ROUND(2.567, 2), ROUND(-2.5);
SELECT CAST('42' AS SIGNED), CAST(3.9 AS SIGNED), CAST(12 AS CHAR);
SELECT CASE WHEN 1 > 2 THEN 'a' WHEN 2 > 1 THEN 'b' ELSE 'c' END, CASE 3 WHEN 1 THEN 'one' WHEN 3 THEN 'three' END;
SELECT 5 BETWEEN 1 AND 10, 5 NOT BETWEEN 1 AND 4, 3 IN (1, 2, 3), 4 NOT IN (1, 2), 'abc' LIKE 'a%', 'abc' LIKE '_b_', 'abc' NOT LIKE 'b%';
SELECT NULL IS NULL, 1 IS NULL, 1 IS NOT NULL;

SELECT * FROM emp ORDER BY id;
SELECT name, salary FROM emp WHERE dept = 'eng' ORDER BY salary DESC;
SELECT name FROM emp WHERE manager IS NULL ORDER BY name;
SELECT name, bonus FROM emp WHERE bonus > 4 OR bonus IS NULL ORDER BY id;
SELECT id, name FROM emp WHERE name LIKE '%a%' ORDER BY id;
SELECT id FROM emp WHERE id IN (2, 4, 8) ORDER BY id;
SELECT id FROM emp WHERE salary BETWEEN 65000 AND 99000 ORDER BY id;
SELECT id, salary * 2 AS doubled, salary / 1000 AS k FROM emp ORDER BY id;
SELECT name FROM emp ORDER BY salary DESC LIMIT 3;
SELECT name FROM emp ORDER BY id LIMIT 2 OFFSET 3;
SELECT DISTINCT dept FROM emp;
SELECT dept, name FROM emp ORDER BY dept, name DESC;

SELECT COUNT(*), COUNT(bonus), SUM(bonus), MIN(salary), MAX(salary) FROM emp;
SELECT AVG(salary) FROM emp;
SELECT dept, COUNT(*), SUM(salary), MIN(name), MAX(name) FROM emp GROUP BY dept;
SELECT dept, COUNT(*) AS n FROM emp GROUP BY dept HAVING COUNT(*) > 1 ORDER BY dept;
SELECT dept, AVG(bonus) FROM emp GROUP BY dept ORDER BY dept;
SELECT COUNT(DISTINCT dept) FROM emp;
SELECT SUM(bonus) FROM emp WHERE bonus IS NULL;
SELECT COUNT(*) FROM emp WHERE 1 = 0;
SELECT manager, COUNT(*) FROM emp GROUP BY manager;

SELECT e.name, d.floor FROM emp e JOIN dept d ON e.dept = d.name ORDER BY e.id;
SELECT e.name, d.name FROM emp e LEFT JOIN dept d ON e.dept = d.name ORDER BY e.id;
SELECT d.name, COUNT(e.id) FROM dept d LEFT JOIN emp e ON e.dept = d.name GROUP BY d.name;
SELECT a.name, b.name FROM emp a JOIN emp b ON a.manager = b.id ORDER BY a.id;
SELECT COUNT(*) FROM emp a CROSS JOIN dept b;
SELECT d.name, SUM(e.salary) FROM emp e JOIN dept d ON e.dept = d.name WHERE d.floor > 0 GROUP BY d.name;

SELECT COUNT(*), SUM(x), MIN(x), MAX(x) FROM (SELECT id * 10 AS x FROM emp) AS t;

UPDATE emp SET bonus = 1 WHERE bonus IS NULL;
SELECT id, bonus FROM emp ORDER BY id;
UPDATE emp SET salary = salary * 1.1 WHERE dept = 'ops';
SELECT id, salary FROM emp WHERE dept = 'ops' ORDER BY id;
DELETE FROM emp WHERE dept = 'research';
SELECT COUNT(*) FROM emp;

BEGIN;
INSERT INTO dept VALUES ('tmp', 9, 1);
ROLLBACK;
SELECT COUNT(*) FROM dept WHERE name = 'tmp';
BEGIN;
INSERT INTO dept VALUES ('kept', 9, 1);
COMMIT;
SELECT name, floor FROM dept WHERE name = 'kept';

-- expect-error
SELECT * FROM no_such_table;
-- expect-error
SELECT no_such_column FROM emp;
-- expect-error
SELEC 1;
