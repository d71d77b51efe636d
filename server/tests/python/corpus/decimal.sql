-- Issue 9: exact DECIMAL against MariaDB.
-- Generated from the same cases as core/tests/slt/decimal.slt (format: see basic.sql).

-- Exact DECIMAL: columns, literals (`1.5` is a DECIMAL, as in MySQL), the
-- result scale of + - * / (div_precision_increment 4), rounding half away
-- from zero, aggregates. Values checked against MariaDB 10.11
-- (server/tests/python/corpus/decimal.sql runs the same cases there).
CREATE TABLE m (id INT, price DECIMAL(10,2), qty INT, rate DECIMAL(5,4));
INSERT INTO m VALUES (1, 19.99, 3, 0.0825), (2, 5.5, 10, 0.1), (3, NULL, 1, NULL), (4, 0.01, 7, 1.5);
SELECT id, price, rate FROM m ORDER BY id;
SELECT price * qty, price + 1, price - rate, price * rate, price / qty, qty / 4, price / 3 FROM m WHERE id = 1;
SELECT sum(price), min(price), max(price), avg(price), sum(price * qty), avg(qty), sum(rate) FROM m;
SELECT round(price, 1), round(price), round(price, -1), round(2.5), round(-2.5), round(1.25, 1), round(1.35, 1), floor(price), ceil(price), abs(-price), truncate(price, 1) FROM m WHERE id = 1;
SELECT 0.1 + 0.2, 0.1 + 0.2 = 0.3, 1.0 / 3, 10 / 4, 1 / 3 * 3, 2.50 * 4, 1.5 * 1.5, -1.5, 3 % 1.5, 7.5 MOD 2;
SELECT price FROM m WHERE price > 5 ORDER BY price DESC;
SELECT price, count(*) FROM m GROUP BY price ORDER BY price;
SELECT CAST(1.005 AS DECIMAL(10,2)), CAST('2.345' AS DECIMAL(10,2)), CAST(1 AS DECIMAL(5,3)), CAST(1.5 AS DECIMAL), CAST(2.5 AS DECIMAL), CAST(price AS SIGNED) FROM m WHERE id = 1;
-- Too many integer digits: 1264. Extra decimals are rounded.
-- expect-error
INSERT INTO m VALUES (5, 123456789.999, 1, 0);
INSERT INTO m VALUES (6, 12345678.999, 1, 0);
INSERT INTO m VALUES (7, 1.005, 1, 0.00005);
SELECT id, price, rate FROM m WHERE id IN (6, 7) ORDER BY id;
-- DECIMAL with DOUBLE or text is DOUBLE.
SELECT 1.5 + 1e0, 1.5 + '1', 1.50 = 1.5, 1.5 = 1.5e0, price = 19.99 FROM m WHERE id = 1;
SELECT DISTINCT price * 2 FROM m ORDER BY 1;
SELECT 12345678901234567890.5 + 1;
SELECT 0.5 * 0.5 * 0.5 * 0.5 * 0.5 * 0.5 * 0.5 * 0.5 * 0.5 * 0.5;
SELECT 100 * 1.1, 1 / 7, 22 / 7 * 7, price / 0 FROM m WHERE id = 1;
-- A division keeps more digits than it shows (as MySQL); comparisons see
-- the shown value.
SELECT CAST(1/3 AS DECIMAL(10,6)), 1/3 + 1/3 + 1/3, (1/3) * 3 = 1, 1/3 = 0.3333, FLOOR(1/3*3);
-- expect-error
INSERT INTO m VALUES (8, 1 / 0, 1, 0);
