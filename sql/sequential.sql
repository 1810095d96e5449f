--
-- Sequential keys: single-row inserts in key order go to the rightmost
-- leaf directly, and when it is full the messages queued for it are
-- pushed down at once (fr_flush_toward), splitting it, instead of waiting
-- in buffers until a budget forces a flush.  The differential queries
-- then compare index scans with sequential scans.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS fractal;
RESET client_min_messages;
SELECT setseed(0.1717);

\i test/sql/diff_functions.sql

-- seqd_a: int8 keys in order; seqd_ba: (b, a), random b; seqd_w: wide
-- text keys in order (about 35 per leaf and per node: a deep tree soon)
CREATE TABLE seqd (id int, a int8, b int4, w text);
CREATE INDEX seqd_a ON seqd USING fractal (a);
CREATE INDEX seqd_ba ON seqd USING fractal (b, a);
CREATE INDEX seqd_w ON seqd USING fractal (w);
DO $$
BEGIN
	FOR i IN 1..60000 LOOP
		-- one row per statement: one aminsert per index each; every 50th
		-- key a little out of order
		INSERT INTO seqd VALUES (i,
			CASE WHEN i % 50 = 0 THEN (i - 30)::int8 * 16000000 + 7 ELSE i::int8 * 16000000 END,
			(random() * 1000)::int,
			lpad(i::text, 200, '0'));
	END LOOP;
END $$;
ANALYZE seqd;

-- deep trees, nearly everything in leaves: a full rightmost leaf is split
-- at once rather than left with a queue in the buffers above it
SELECT s.height >= 1 AS a_tree, s.buffered_messages < 600 AS a_little_queued,
	   s.leaf_entries + s.buffered_messages = 60000 AS a_all_there
FROM fractal_stats('seqd_a') s;
SELECT s.height >= 3 AS w_deeper, s.buffered_messages < 600 AS w_little_queued,
	   s.leaf_entries + s.buffered_messages = 60000 AS w_all_there
FROM fractal_stats('seqd_w') s;
SELECT fractal_check('seqd_a', true);
SELECT fractal_check('seqd_ba', true);
SELECT fractal_check('seqd_w', true);

-- generated queries through seqd_a and seqd_ba against a sequential scan
-- (keys in order make the planner take seqd_a for some queries meant for
-- seqd_ba: either fractal index is accepted, the results are compared)
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx || '|seqd_a', want_indexscan) AS problem
	  FROM fr_diff_queries('seqd', 200)) s;
-- and through the wide keys
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(
		 format('SELECT count(*) || '':'' || coalesce(sum(id), 0) FROM seqd WHERE w %s %L',
				op, lpad(k::text, 200, '0')), 'seqd_w', true) AS problem
	  FROM (SELECT (random() * 61000)::int AS k, (ARRAY['=', '<', '>=', '<='])[1 + g % 4] AS op
			FROM generate_series(1, 40) g) q) s;
SELECT count(*) AS ordered_tail_ok
FROM (SELECT w FROM seqd ORDER BY w DESC LIMIT 100) s
WHERE w > lpad('59800', 200, '0');

DROP TABLE seqd;

-- Batches in key order: 100-row transactions, each appended at commit as a
-- sorted batch whose run of entries for the rightmost leaf goes there in
-- one record (fr_insert_rightmost_run).  Every 7th transaction also
-- carries 5 keys far behind (routed elsewhere, before the run), and the
-- 200-byte keys of seqb_w fill the rightmost leaf in mid-run, so the
-- leaf-full path splits it between runs.
CREATE TABLE seqb (id int, a int8, w text);
CREATE INDEX seqb_a ON seqb USING fractal (a);
CREATE INDEX seqb_w ON seqb USING fractal (w);
CREATE TEMP TABLE seqb_ctr AS
SELECT value FROM fractal_counters() WHERE name = 'rightmost_inserts';
DO $$
BEGIN
	FOR t IN 0..399 LOOP
		INSERT INTO seqb
		SELECT t * 100 + g, (t * 100 + g)::int8 * 1000, lpad((t * 100 + g)::text, 200, '0')
		FROM generate_series(1, 100) g;
		IF t % 7 = 3 THEN
			INSERT INTO seqb
			SELECT -(t * 5 + g), (t * 37 + g)::int8 * 1000 + 1, lpad((t * 37 + g)::text, 200, '0') || 'x'
			FROM generate_series(1, 5) g;
		END IF;
		COMMIT;
	END LOOP;
END $$;
ANALYZE seqb;
-- most entries went to the rightmost leaves in runs
SELECT CASE WHEN value - (SELECT value FROM seqb_ctr) > 60000 THEN 'runs'
			ELSE 'few runs: ' || (value - (SELECT value FROM seqb_ctr))::text END AS rightmost
FROM fractal_counters() WHERE name = 'rightmost_inserts';
SELECT s.leaf_entries + s.buffered_messages = 40285 AS a_all_there,
	   s.buffered_messages < 2000 AS a_little_queued
FROM fractal_stats('seqb_a') s;
SELECT s.height >= 2 AS w_deep, s.leaf_entries + s.buffered_messages = 40285 AS w_all_there
FROM fractal_stats('seqb_w') s;
SELECT fractal_check('seqb_a', true);
SELECT fractal_check('seqb_w', true);
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(
		 format('SELECT count(*) || '':'' || coalesce(sum(id), 0) FROM seqb WHERE %s %s %s',
				col, op, CASE WHEN col = 'a' THEN (k * 1000 + k % 2)::text
							  ELSE quote_literal(lpad(k::text, 200, '0')) END),
		 'seqb_' || col, true) AS problem
	  FROM (SELECT (random() * 41000)::int AS k, (ARRAY['=', '<', '>=', '<='])[1 + g % 4] AS op,
				   (ARRAY['a', 'w'])[1 + g % 2] AS col
			FROM generate_series(1, 80) g) q) s;
-- every key once, in order, by index scans both ways
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) = 40285 AS all_once, bool_and(a > prev) AS ascending
FROM (SELECT a, lag(a, 1, -1::int8) OVER () AS prev FROM
	  (SELECT a FROM seqb ORDER BY a) s) s;
SELECT count(*) = 40285 AS all_once, bool_and(a < prev) AS descending
FROM (SELECT a, lag(a, 1, 1e18::int8) OVER () AS prev FROM
	  (SELECT a FROM seqb ORDER BY a DESC) s) s;
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP TABLE seqb;
DROP FUNCTION fr_diff_check(text, text, bool);
DROP FUNCTION fr_diff_queries(text, int);
DROP FUNCTION fr_diff_batch(text, int, int);
