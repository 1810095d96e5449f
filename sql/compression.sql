--
-- zstd compression of leaf pages: the differential query check with
-- compression on, after switching it off (old compressed pages and new
-- plain pages coexist), after REINDEX, and after switching it back on.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS fractal;
RESET client_min_messages;
SELECT setseed(0.31415);
\i test/sql/diff_functions.sql

CREATE TABLE zc (id int, a int8, b int4, pad text) WITH (autovacuum_enabled = off);
CREATE INDEX zc_a ON zc USING fractal (a) WITH (compression = zstd);
CREATE INDEX zc_ba ON zc USING fractal (b, a) WITH (compression = zstd, compression_level = 9, buffer_pages = 8);
SELECT fr_diff_batch('zc', 1, 60000);
SELECT fr_diff_batch('zc', 60001, 120000);
ANALYZE zc;

-- leaves written by flushes are compressed, and hold more than plain ones
SELECT compressed_leaf_pages > 0 AS compressed, compression_ratio > 1.2 AS saves_space,
	   leaf_entries + buffered_messages = 120000 AS all_entries
FROM fractal_stats('zc_a');
SELECT fractal_check('zc_a', true), fractal_check('zc_ba', true);
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
	  FROM fr_diff_queries('zc', 150)) s;

-- compression off: pages written from now on are plain; both kinds coexist
ALTER INDEX zc_a SET (compression = none);
SELECT fr_diff_batch('zc', 120001, 160000);
DELETE FROM zc WHERE id % 5 = 0;
VACUUM zc;
SELECT compressed_leaf_pages > 0 AS some_compressed,
	   compressed_leaf_pages < leaf_pages AS some_plain,
	   leaf_entries + buffered_messages = (SELECT count(*) FROM zc) AS all_entries
FROM fractal_stats('zc_a');
SELECT fractal_check('zc_a', true);
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
	  FROM fr_diff_queries('zc', 150)) s;

-- REINDEX rewrites everything with the current setting (none)
REINDEX INDEX zc_a;
SELECT compressed_leaf_pages = 0 AS all_plain, compression_ratio = 1 AS ratio_one
FROM fractal_stats('zc_a');
CREATE TEMP TABLE plain_size AS SELECT pg_relation_size('zc_a') AS bytes;

-- back to zstd: REINDEX builds compressed leaves, smaller than plain ones
ALTER INDEX zc_a SET (compression = zstd);
REINDEX INDEX zc_a;
SELECT compressed_leaf_pages > 0 AS compressed,
	   pg_relation_size('zc_a') < (SELECT bytes FROM plain_size) AS smaller
FROM fractal_stats('zc_a');
SELECT fr_diff_batch('zc', 160001, 200000);
SELECT fractal_check('zc_a', true), fractal_check('zc_ba', true);
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
	  FROM fr_diff_queries('zc', 150)) s;

-- timestamps in insert order compress much better
CREATE TABLE zt (ts timestamptz, v int);
CREATE INDEX zt_plain ON zt USING fractal (ts);
CREATE INDEX zt_z ON zt USING fractal (ts) WITH (compression = zstd);
INSERT INTO zt SELECT '2026-01-01'::timestamptz + g * interval '1 second', g
FROM generate_series(1, 100000) g;
SELECT (SELECT compression_ratio FROM fractal_stats('zt_z')) > 2 AS ratio_above_2,
	   pg_relation_size('zt_z') * 2 < pg_relation_size('zt_plain') AS half_the_size;
SELECT fractal_check('zt_z', true);
SET enable_seqscan = off;
SELECT count(*), min(v), max(v) FROM zt WHERE ts BETWEEN '2026-01-01 10:00' AND '2026-01-01 11:00';
SELECT v FROM zt WHERE ts > '2026-01-02' ORDER BY ts DESC LIMIT 3;
RESET enable_seqscan;

-- bad settings
\set VERBOSITY terse
CREATE INDEX ON zt USING fractal (ts) WITH (compression = lz4);
CREATE INDEX ON zt USING fractal (ts) WITH (compression_level = 0);
CREATE INDEX ON zt USING fractal (ts) WITH (compression_level = 20);
\set VERBOSITY default

DROP TABLE zc, zt;
DROP FUNCTION fr_diff_check(text, text, bool);
DROP FUNCTION fr_diff_queries(text, int);
DROP FUNCTION fr_diff_batch(text, int, int);
