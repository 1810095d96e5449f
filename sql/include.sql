--
-- include: INCLUDE columns and index-only scans.  Values of key and INCLUDE
-- columns (NULLs, varlena, numeric, jsonb, point) come back from leaves and
-- from node buffers through index-only scans, forward, backward and with IN
-- lists, equal to a seqscan's; after DELETE + VACUUM no deleted row is
-- returned and no heap page is fetched.  (The interlock with a concurrent
-- VACUUM is tested by specs/ios_vacuum.spec.)
--
SET client_min_messages = warning;
CREATE SCHEMA fr_include;
SET search_path = fr_include, public;
SET max_parallel_workers_per_gather = 0;

\i test/sql/check_functions.sql

-- q through a seqscan and through an index-only scan: is the plan an
-- index-only scan on a fractal index (no Sort when ordered), and are the
-- rows the same (in the same order when ordered)?
CREATE FUNCTION ios_check(q text, ordered boolean DEFAULT false,
						  OUT ios boolean, OUT same boolean, OUT nrows bigint)
LANGUAGE plpgsql AS $f$
DECLARE
	agg text := CASE WHEN ordered THEN 'SELECT array_agg(s::text), count(*) FROM (%s) s'
					 ELSE 'SELECT array_agg(s::text ORDER BY s::text), count(*) FROM (%s) s' END;
	r_seq text;
	r_ios text;
BEGIN
	PERFORM fr_set_mode('s');
	EXECUTE format(agg, q) INTO r_seq, nrows;
	PERFORM fr_set_mode('i'), set_config('enable_indexonlyscan', 'on', true);
	ios := fr_plan_ok(q, 'Index Only Scan', ordered);
	EXECUTE format(agg, q) INTO r_ios;
	same := r_ios IS NOT DISTINCT FROM r_seq;
	PERFORM set_config('enable_seqscan', 'on', true), set_config('enable_bitmapscan', 'on', true);
END
$f$;

-- an index filled by inserts (entries in leaves and in node buffers)
CREATE TABLE inc (id int, k int8, t text, n numeric, j jsonb, p point);
CREATE INDEX inc_k ON inc USING fractal (k) INCLUDE (t, n, j, p) WITH (buffer_pages = 4);
INSERT INTO inc
SELECT g, CASE WHEN g % 97 = 0 THEN NULL ELSE (g * 7919) % 5003 END,
	   CASE WHEN g % 11 = 0 THEN NULL ELSE 't' || g END, g / 7.0,
	   jsonb_build_object('g', g), point(g, -g)
  FROM generate_series(1, 12000) g;
SELECT buffered_messages > 0 AS buffered, leaf_entries + buffered_messages = 12000 AS all_rows
  FROM fractal_stats('inc_k');
-- one built by CREATE INDEX, DESC key column and a second key column
CREATE TABLE incb AS SELECT * FROM inc;
CREATE INDEX incb_kid ON incb USING fractal (k DESC, id) INCLUDE (t, j);
VACUUM ANALYZE inc, incb;
SELECT fractal_check('inc_k', true) AS inc_k_ok, fractal_check('incb_kid', true) AS incb_ok;

SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT k, t, n FROM inc WHERE k BETWEEN 100 AND 120;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT k, id, t FROM incb WHERE k IN (7, 77, 777) ORDER BY k DESC, id;
RESET enable_seqscan;
RESET enable_bitmapscan;

SELECT q, (ios_check(q, o)).*
  FROM (VALUES
	('SELECT k, t, n, j::text, p::text FROM inc WHERE k BETWEEN 100 AND 300', false),
	('SELECT k, t FROM inc WHERE k = 4001', false),
	('SELECT k, t, j FROM inc WHERE k IS NULL', false),
	('SELECT k, n FROM inc WHERE k IN (5, 500, 5000, 42, NULL)', false),
	('SELECT count(*), sum(n) FROM inc WHERE k > 2500', false),
	('SELECT k FROM inc WHERE k >= 4000 ORDER BY k LIMIT 50', true),
	('SELECT k FROM inc WHERE k < 500 ORDER BY k DESC LIMIT 40', true),
	('SELECT k FROM inc WHERE k IN (5, 500, 42) ORDER BY k DESC', true),
	('SELECT k, id, t, j FROM incb WHERE k = 77 ORDER BY k DESC, id', true),
	('SELECT k, id, t FROM incb WHERE k IN (7, 77, 777) ORDER BY k DESC, id', true),
	('SELECT k, id, t FROM incb WHERE k < 20 ORDER BY k, id DESC', true),
	('SELECT k, id, j FROM incb WHERE k BETWEEN 10 AND 30 AND id > 6000', false)) v(q, o);

-- deleted rows are never returned; after VACUUM no heap fetches at all
DELETE FROM inc WHERE id % 5 = 0;
DELETE FROM incb WHERE id % 5 = 0;
INSERT INTO inc SELECT g, (g * 7919) % 5003, 'new' || g, g, NULL, NULL FROM generate_series(12001, 14000) g;
INSERT INTO incb SELECT g, (g * 7919) % 5003, 'new' || g, g, NULL, NULL FROM generate_series(12001, 14000) g;
SELECT q, (ios_check(q, o)).*
  FROM (VALUES
	('SELECT k, t, n FROM inc WHERE k BETWEEN 100 AND 300', false),
	('SELECT k, id, t FROM incb WHERE k < 20 ORDER BY k DESC, id', true)) v(q, o);
VACUUM inc, incb;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT k, t, n FROM inc WHERE k BETWEEN 100 AND 120;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT q, (ios_check(q, o)).*
  FROM (VALUES
	('SELECT k, t, n FROM inc WHERE k BETWEEN 100 AND 300', false),
	('SELECT count(*) FROM inc WHERE k >= 0', false),
	('SELECT k, id, t FROM incb WHERE k < 20 ORDER BY k DESC, id', true)) v(q, o);
SELECT fractal_check('inc_k', true) AS inc_k_ok, fractal_check('incb_kid', true) AS incb_ok;

-- an INCLUDE column may be of a type with no fractal operator class (point
-- and jsonb above); a row too wide with its INCLUDE values is refused like
-- a wide key
CREATE TABLE incw (k int, big text);
CREATE INDEX incw_k ON incw USING fractal (k) INCLUDE (big);
INSERT INTO incw VALUES (1, repeat('x', 100));
INSERT INTO incw VALUES (2, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 200) g));
SELECT k, length(big) FROM incw;

RESET search_path;
DROP SCHEMA fr_include CASCADE;
