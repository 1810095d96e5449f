--
-- Differential test: the same generated queries through a fractal index
-- (plain index scan, then bitmap scan) and through a sequential scan must
-- return the same rows.  Run on an index grown by 200,000 random inserts
-- (deep enough that messages are buffered at several levels) and on one
-- built by CREATE INDEX over the same data.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS fractal;
CREATE EXTENSION IF NOT EXISTS pageinspect;
RESET client_min_messages;
SELECT setseed(0.4242);

\i test/sql/diff_functions.sql
\i test/sql/node_buffers.sql

-- 200,000 random rows in five batches: random keys with duplicates and NULLs
CREATE TABLE dif (id int, a int8, b int4, pad text);
CREATE INDEX dif_a ON dif USING fractal (a);
CREATE INDEX dif_ba ON dif USING fractal (b, a);
SELECT fr_diff_batch('dif', 1, 40000);
SELECT fr_diff_batch('dif', 40001, 80000);
SELECT fr_diff_batch('dif', 80001, 120000);
SELECT fr_diff_batch('dif', 120001, 160000);
SELECT fr_diff_batch('dif', 160001, 200000);
ANALYZE dif;

-- the tree is at least three levels high and holds buffered messages at
-- more than one level; every row is either a leaf entry or a message
SELECT height >= 2 AS three_levels,
	   buffered_messages > 0 AS has_messages,
	   leaf_entries + buffered_messages = 200000 AS all_entries
FROM fractal_stats('dif_a');
SELECT count(*) >= 2 AS levels_with_messages
FROM fractal_level_stats('dif_a') WHERE buffered_messages > 0;
SELECT height >= 2 AS three_levels,
	   leaf_entries + buffered_messages = 200000 AS all_entries
FROM fractal_stats('dif_ba');

-- an in-memory root above level 1 is flushed under a share lock
-- (fr_rootflush.c: seal, copy, cut), so the queries below read chains that
-- went through it (this cluster preloads the library)
SELECT value > 0 AS root_shared_flushes
FROM fractal_counters() WHERE name = 'root_shared_flushes';

-- and spread over several partitions (fr_root_spread), so that concurrent
-- inserts append to different tail pages
SELECT r.level > 1 AS above_level_1, r.partitions > 1 AS spread
FROM (VALUES ('dif_a'::regclass), ('dif_ba')) i(idx),
	 LATERAL fr_node_buffers(i.idx, true) r;

-- below the root, flushes append to a chain's newest page in arrival order
-- and sort it when a newer page is linked in front (src/README.md section
-- 4): the queries below meet both unsorted and sealed (sorted) pages, and
-- fractal_check finds every sealed page in order and no unsorted page
-- behind a chain's newest
SELECT bool_or(NOT k.sorted) AS unsorted_tails, bool_or(k.sorted) AS sealed_pages
FROM fr_chain_page_kinds('dif_a') k, fractal_stats('dif_a') s
WHERE k.level < s.height;
SELECT fractal_check('dif_a', true);

-- 400 generated queries on the incrementally grown indexes
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
	  FROM fr_diff_queries('dif', 400)) s;
SELECT problem FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
					 FROM fr_diff_queries('dif', 48)) s
WHERE problem IS NOT NULL;

-- the same data, indexes built by CREATE INDEX on the populated table
CREATE TABLE difb AS SELECT * FROM dif;
CREATE INDEX difb_a ON difb USING fractal (a);
CREATE INDEX difb_ba ON difb USING fractal (b, a);
ANALYZE difb;
SELECT height >= 1 AS built_tree, leaf_entries = 200000 AS all_in_leaves,
	   buffered_messages = 0 AS no_messages
FROM fractal_stats('difb_a');
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
	  FROM fr_diff_queries('difb', 300)) s;

-- more random inserts into the built index: messages land in its buffers
SELECT fr_diff_batch('dif', 200001, 230000);
INSERT INTO difb SELECT * FROM dif WHERE id > 200000;
SELECT buffered_messages > 0 AS has_messages,
	   leaf_entries + buffered_messages = 230000 AS all_entries
FROM fractal_stats('difb_a');
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
	  FROM fr_diff_queries('difb', 200)) s;

-- Buffer page filters forced small (128 and 64 bytes a page, against the
-- default 1024), so that false positives are frequent: the same generated
-- queries, then equality probes of keys held as messages and of absent
-- keys, of the column's own type and of a narrower integer type, through
-- index scans and through a hash join
CREATE TABLE dift (id int, a int8, b int4, pad text);
CREATE INDEX dift_a ON dift USING fractal (a) WITH (filter_bytes = 128);
CREATE INDEX dift_ba ON dift USING fractal (b, a) WITH (filter_bytes = 64);
INSERT INTO dift SELECT * FROM dif WHERE id <= 100000 ORDER BY id;
ANALYZE dift;
SELECT buffered_messages > 0 AS has_messages FROM fractal_stats('dift_a');
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
	  FROM fr_diff_queries('dift', 200)) s;
CREATE TEMP TABLE probe AS
	SELECT a AS k FROM (SELECT a FROM dift WHERE a IS NOT NULL ORDER BY id DESC LIMIT 1500) s
	UNION ALL SELECT (random() * 1e12)::int8 FROM generate_series(1, 1000)
	UNION ALL SELECT (random() * 100000)::int8 FROM generate_series(1, 500);
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE TEMP TABLE want AS
	SELECT p.k, count(d.id) AS n, coalesce(sum(d.id), 0) AS ids
	FROM (SELECT DISTINCT k FROM probe) p LEFT JOIN dift d ON d.a = p.k GROUP BY p.k;
RESET enable_indexscan;
RESET enable_bitmapscan;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SELECT count(*) AS probes, count(*) FILTER (WHERE w.n > 0) AS present,
	   count(*) FILTER (WHERE (g.n, g.ids) IS DISTINCT FROM (w.n, w.ids)) AS wrong
FROM want w,
	 LATERAL (SELECT count(*) AS n, coalesce(sum(id), 0) AS ids FROM dift WHERE a = w.k) g;
SELECT count(*) AS int4_probes,
	   count(*) FILTER (WHERE (g.n, g.ids) IS DISTINCT FROM (w.n, w.ids)) AS wrong
FROM want w,
	 LATERAL (SELECT count(*) AS n, coalesce(sum(id), 0) AS ids FROM dift WHERE a = w.k::int4) g
WHERE w.k < 100000;
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_hashjoin;
RESET enable_mergejoin;
SELECT fractal_check('dift_a', true);
SELECT fractal_check('dift_ba', true);

-- text keys under the "C" collation (filtered) and varchar probed with
-- text keys; the same probes through a hash join and through the index
CREATE TABLE diftx (id int, t text COLLATE "C", v varchar);
CREATE INDEX diftx_t ON diftx USING fractal (t) WITH (filter_bytes = 64);
CREATE INDEX diftx_v ON diftx USING fractal (v) WITH (filter_bytes = 64);
INSERT INTO diftx SELECT g, md5((g % 30000)::text), md5((g % 30000)::text)
FROM generate_series(1, 60000) g ORDER BY random();
ANALYZE diftx;
CREATE TEMP TABLE tprobe AS
	SELECT md5((random() * 40000)::int::text) AS k FROM generate_series(1, 1500);
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE TEMP TABLE twant AS
	SELECT p.k, count(d.id) AS n FROM (SELECT DISTINCT k FROM tprobe) p
	LEFT JOIN diftx d ON d.t = p.k GROUP BY p.k;
RESET enable_indexscan;
RESET enable_bitmapscan;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SELECT count(*) FILTER (WHERE w.n > 0) > 0 AS some_present,
	   count(*) FILTER (WHERE w.n = 0) > 0 AS some_absent,
	   count(*) FILTER (WHERE (SELECT count(*) FROM diftx WHERE t = w.k) <> w.n) AS wrong_text,
	   count(*) FILTER (WHERE (SELECT count(*) FROM diftx WHERE v = w.k::text) <> w.n) AS wrong_varchar
FROM twant w;
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_hashjoin;
RESET enable_mergejoin;
SELECT fractal_check('diftx_t', true);
SELECT fractal_check('diftx_v', true);

DROP TABLE dif, difb, dift, diftx;
DROP FUNCTION fr_diff_check(text, text, bool);
DROP FUNCTION fr_diff_queries(text, int);
DROP FUNCTION fr_diff_batch(text, int, int);
