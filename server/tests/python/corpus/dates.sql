-- Issue 9: DATE / DATETIME / TIMESTAMP / TIME against MariaDB.
-- Generated from the same cases as core/tests/slt/dates.slt (format: see basic.sql).

-- DATE, DATETIME (TIMESTAMP), TIME: column types, literals, MySQL's implicit
-- conversion of strings, comparisons, ORDER BY / GROUP BY / DISTINCT /
-- MIN / MAX, casts and the date functions. Values checked against MariaDB
-- 10.11 (server/tests/python/corpus/dates.sql runs the same cases there).
-- NOW() / CURDATE() read the host's wall clock: see core/tests/dates.rs.
CREATE TABLE ev (id INT, d DATE, ts DATETIME, t TIME);
INSERT INTO ev VALUES (1, '2024-01-31', '2024-01-31 10:20:30', '10:20:30'), (2, '2023-12-25', '2023-12-25 23:59:59', '-01:00:00'), (3, NULL, NULL, NULL), (4, '2024-02-29', '2024-02-29 00:00:00', '838:59:59');
SELECT id, d, ts, t FROM ev ORDER BY d;
SELECT id FROM ev WHERE d = '2024-01-31';
SELECT id FROM ev WHERE d > '2024-01-01' ORDER BY id;
SELECT id FROM ev WHERE ts >= '2024-01-31' ORDER BY id;
SELECT id FROM ev WHERE d BETWEEN '2023-12-01' AND '2024-01-31' ORDER BY id;
SELECT id FROM ev WHERE t < '00:00:00';
SELECT min(d), max(d), min(ts), max(ts), min(t), max(t), count(DISTINCT d) FROM ev;
SELECT year(d), count(*) FROM ev GROUP BY year(d) ORDER BY 1;
SELECT DISTINCT year(d) FROM ev ORDER BY 1;
SELECT d, count(*) FROM ev GROUP BY d ORDER BY d DESC;
-- Intervals: months first with the day clamped; a DATE stays a DATE for
-- day-or-longer units, becomes a DATETIME for time units; a string in, a
-- string out.
SELECT d + INTERVAL 1 MONTH, d - INTERVAL 1 DAY, d + INTERVAL 2 HOUR, ts + INTERVAL 30 SECOND FROM ev WHERE id = 1;
SELECT DATE_ADD(d, INTERVAL 1 YEAR), DATE_SUB(ts, INTERVAL 1 WEEK), DATE_ADD('2024-01-01', INTERVAL 1 DAY), DATE_ADD(d, INTERVAL -1 QUARTER) FROM ev WHERE id = 4;
SELECT DATE_ADD('9999-12-31', INTERVAL 1 DAY), DATE '2024-01-31' + INTERVAL 1 MONTH, DATE '2024-03-31' - INTERVAL 1 MONTH, DATE '2023-01-31' + INTERVAL 1 MONTH;
SELECT INTERVAL 1 DAY + DATE '2024-12-31', DATE_ADD(DATE '2024-01-01', INTERVAL 1.5 DAY);
SELECT DATEDIFF('2024-03-01', '2024-02-01'), DATEDIFF(ts, '2024-01-01') FROM ev WHERE id = 1;
SELECT EXTRACT(YEAR FROM d), EXTRACT(MONTH FROM ts), EXTRACT(DAY FROM d), EXTRACT(HOUR FROM ts), EXTRACT(MINUTE FROM ts), EXTRACT(SECOND FROM ts), EXTRACT(QUARTER FROM d), EXTRACT(WEEK FROM d) FROM ev WHERE id = 1;
SELECT YEAR(ts), MONTH(ts), DAY(ts), HOUR(ts), MINUTE(ts), SECOND(ts), HOUR(t), MINUTE(t), DAYOFWEEK(d), WEEKDAY(d), DAYOFYEAR(d), DAYNAME(d), MONTHNAME(d), LAST_DAY(d), QUARTER(d), WEEK(d) FROM ev WHERE id = 1;
SELECT DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s') FROM ev WHERE id = 1;
SELECT DATE_FORMAT(ts, '%W %D %M %Y') FROM ev WHERE id = 1;
SELECT DATE_FORMAT(ts, '%a %b %e %c %y %j %p %r %T %h %l %k %%') FROM ev WHERE id = 1;
SELECT DATE_FORMAT(d, '%U %w %f') FROM ev WHERE id = 1;
SELECT UNIX_TIMESTAMP('2024-01-01 00:00:00'), FROM_UNIXTIME(1704067200), FROM_UNIXTIME(1704067200, '%Y-%m-%d'), UNIX_TIMESTAMP(DATE '2024-01-01');
SELECT DATE('2024-01-05 10:20:30'), DATE(ts), TIME(ts), CAST(ts AS DATE), CAST(d AS DATETIME), CAST('10:20' AS TIME), CAST(d AS CHAR), CAST('2024-01-05' AS DATE) FROM ev WHERE id = 1;
SELECT DATE '2024-01-01', TIMESTAMP '2024-01-01 10:00:00', TIME '10:00:00', DATE '2024-01-01' < DATE '2024-01-02', DATE '2024-01-01' = TIMESTAMP '2024-01-01 00:00:00';
-- Invalid dates in functions: NULL with a warning.
SELECT DATE('2024-02-30'), YEAR('nope'), DATE_ADD('2024-02-30', INTERVAL 1 DAY), CAST('x' AS DATE), DATEDIFF('2024-01-01', 'x');
SELECT d + 0, ts + 0, d = 20240131 FROM ev WHERE id = 1;
SELECT TIMEDIFF('2024-01-02 00:00:00', '2024-01-01 22:30:00'), TIMEDIFF('10:00:00', '11:30:00');
-- Invalid values refused on insert (strict mode), 1292; the literal, 1525.
-- expect-error
INSERT INTO ev VALUES (5, '2024-02-30', NULL, NULL);
-- expect-error
INSERT INTO ev VALUES (6, 'hello', NULL, NULL);
-- expect-error
INSERT INTO ev VALUES (7, NULL, '2024-01-01 25:00:00', NULL);
-- expect-error
INSERT INTO ev VALUES (8, NULL, NULL, '10:99:00');
-- expect-error
SELECT DATE '2024-13-01';
-- MySQL's other string forms are read on insert.
INSERT INTO ev VALUES (9, '20240315', '2024-03-15 08:00', '083000');
SELECT id, d, ts, t FROM ev WHERE id = 9;
SELECT CONCAT(d, '!'), LENGTH(ts), d LIKE '2024%' FROM ev WHERE id = 1;
SELECT GREATEST(DATE '2024-01-01', DATE '2024-02-01'), COALESCE(NULL, DATE '2024-01-01'), IF(1, DATE '2024-01-01', DATE '2024-01-02'), CASE WHEN 1 THEN ts END FROM ev WHERE id = 1;
SELECT EXTRACT(MICROSECOND FROM TIMESTAMP '2024-01-01 10:00:00.25'), TIMESTAMP '2024-01-01 10:00:00.25';
-- TIMESTAMP columns are DATETIMEs (cascade's time zone is UTC).
CREATE TABLE logins (who VARCHAR(10), at TIMESTAMP);
INSERT INTO logins VALUES ('ann', '2024-05-01 08:00:00'), ('bob', '2024-05-01 09:30:00'), ('ann', '2024-05-02 08:15:00');
SELECT who, min(at), max(at) FROM logins GROUP BY who ORDER BY who;
SELECT DATE(at) AS day, count(*) FROM logins GROUP BY DATE(at) ORDER BY day;
UPDATE logins SET at = at + INTERVAL 1 DAY WHERE who = 'bob';
SELECT at FROM logins WHERE who = 'bob';
DELETE FROM logins WHERE at < '2024-05-02';
SELECT who FROM logins ORDER BY at;
-- A DEFAULT must be a date of its column's type (1067).
-- expect-error
CREATE TABLE bad (d DATE DEFAULT 'soon');
CREATE TABLE good (id INT, d DATE DEFAULT '2024-06-01', t TIME DEFAULT '12:00');
INSERT INTO good (id) VALUES (1);
SELECT id, d, t FROM good;
