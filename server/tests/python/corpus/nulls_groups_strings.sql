-- NULL semantics, multi-key grouping, ordering with NULLs and ties broken,
-- string functions, nested expressions, derived tables and DML edge cases.

CREATE TABLE s (k1 VARCHAR(10), k2 BIGINT, v DOUBLE, t VARCHAR(30));
INSERT INTO s VALUES
  ('a', 1, 1.5, 'Hello'), ('a', 1, 2.5, NULL), ('a', 2, NULL, 'world'),
  ('b', 1, 10, 'Foo Bar'), ('b', NULL, 3, 'foo'), (NULL, 1, 7, ''),
  (NULL, NULL, NULL, NULL), ('c', 3, -4.25, 'ÄÖÜ'), ('c', 3, 0, 'x y z');

SELECT COUNT(*), COUNT(k1), COUNT(k2), COUNT(v), COUNT(t) FROM s;
SELECT SUM(v), MIN(v), MAX(v), AVG(v) FROM s;
SELECT k1, k2, COUNT(*), SUM(v) FROM s GROUP BY k1, k2;
SELECT k1, COUNT(DISTINCT k2) FROM s GROUP BY k1;
SELECT k1, MAX(t), MIN(t) FROM s GROUP BY k1;
SELECT k1, SUM(v) AS total FROM s GROUP BY k1 HAVING SUM(v) > 3 ORDER BY total DESC;
SELECT k2, COUNT(*) FROM s WHERE k1 IS NOT NULL GROUP BY k2;
SELECT k1, k2, v FROM s ORDER BY k1, k2, v;
SELECT k1, k2, v FROM s ORDER BY k1 DESC, k2 DESC, v DESC;
SELECT v FROM s WHERE v IS NOT NULL ORDER BY v LIMIT 3;
SELECT v FROM s WHERE v > 2 OR v IS NULL;
SELECT v FROM s WHERE NOT (v > 2);
SELECT k1 FROM s WHERE k1 IN ('a', 'c', NULL);
SELECT k1 FROM s WHERE k1 NOT IN ('a', 'b');
SELECT COALESCE(k1, 'none'), COALESCE(k2, -1), IFNULL(v, 0) FROM s;
SELECT t, UPPER(t), LOWER(t), LENGTH(t), CHAR_LENGTH(t) FROM s;
SELECT t, SUBSTRING(t, 2, 3), CONCAT(t, '!'), CONCAT(k1, '-', k2) FROM s;
SELECT t FROM s WHERE t LIKE '%o%' ORDER BY t;
SELECT t FROM s WHERE t LIKE 'F%';
SELECT k1, CASE WHEN v IS NULL THEN 'null' WHEN v < 0 THEN 'neg' WHEN v = 0 THEN 'zero' ELSE 'pos' END FROM s;
SELECT k2 * 2 + 1, k2 / 2, k2 DIV 2, k2 % 2, -k2 FROM s;
SELECT v * 2, v + k2, v - k2, FLOOR(v), CEIL(v), ABS(v) FROM s;
-- ROUND of a DOUBLE rounds half to even, as MySQL / MariaDB (ROUND(2.5e0) = 2).
SELECT ROUND(v), ROUND(v, 1) FROM s;
SELECT GREATEST(k2, 2), LEAST(k2, 2) FROM s WHERE k2 IS NOT NULL;
SELECT IF(v > 2, 'big', 'small'), NULLIF(k2, 1) FROM s;
SELECT k1, total FROM (SELECT k1, SUM(v) AS total FROM s GROUP BY k1) AS g WHERE total IS NOT NULL;
SELECT MAX(total) FROM (SELECT k1, SUM(v) AS total FROM s GROUP BY k1) AS g;
SELECT a.k1, b.k1 FROM s a JOIN s b ON a.k2 = b.k2 AND a.k1 < b.k1;
SELECT a.t, b.t FROM s a LEFT JOIN s b ON a.k1 = b.k1 AND b.v > 5 WHERE a.k1 IS NOT NULL;
SELECT COUNT(*) FROM s a JOIN s b ON a.k1 = b.k1;
SELECT DISTINCT k1, k2 FROM s;
SELECT 1 FROM s WHERE k1 = 'zzz';
SELECT COUNT(*), SUM(v), MAX(t) FROM s WHERE k1 = 'zzz';
SELECT k1 FROM s GROUP BY k1 ORDER BY COUNT(*) DESC, k1;

UPDATE s SET v = v * 10 WHERE k1 = 'a';
SELECT k1, k2, v FROM s WHERE k1 = 'a';
UPDATE s SET t = CONCAT(t, '?') WHERE t IS NOT NULL AND k2 = 3;
SELECT t FROM s WHERE k2 = 3;
UPDATE s SET k2 = 99 WHERE 1 = 0;
DELETE FROM s WHERE v IS NULL;
SELECT COUNT(*) FROM s;
DELETE FROM s;
SELECT COUNT(*), SUM(v) FROM s;

-- expect-error
INSERT INTO s VALUES (1, 2);
-- expect-error
SELECT k1, COUNT(*) FROM nope GROUP BY k1;
