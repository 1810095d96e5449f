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
-- the fastest level allowed: leaves written at two levels coexist
ALTER INDEX zc_a SET (compression_level = -7);
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
-- zt_plain has the default compression, auto: plain while the index is
-- smaller than a quarter of shared_buffers (test/t/002_standby.pl crosses it)
SELECT compressed_leaf_pages = 0 AS plain_while_small FROM fractal_stats('zt_plain');
SET enable_seqscan = off;
SELECT count(*), min(v), max(v) FROM zt WHERE ts BETWEEN '2026-01-01 10:00' AND '2026-01-01 11:00';
SELECT v FROM zt WHERE ts > '2026-01-02' ORDER BY ts DESC LIMIT 3;
RESET enable_seqscan;

-- format 5: compressed leaves in blocks, each with its first entry (fence)
-- stored plain.  A point lookup decompresses only the block of its key;
-- whole-index scans in both directions cross every block boundary (a chunk
-- stops at one); a run of 20,000 equal keys spans many blocks and leaves;
-- variable-width text keys use concatenated frames, int8 keys shuffled ones.
CREATE TABLE zb (k int8, t text);
CREATE INDEX zb_k ON zb USING fractal (k) WITH (compression = zstd);
CREATE INDEX zb_t ON zb USING fractal (t) WITH (compression = zstd);
INSERT INTO zb SELECT CASE WHEN g % 3 = 0 THEN 777 ELSE hashint4(g) & 65535 END,
	'key/' || (g % 97) || '/' || g
FROM generate_series(1, 60000) g;
SELECT fractal_check('zb_k', true), fractal_check('zb_t', true);
SELECT s.compressed_leaf_pages > 0 AS k_compressed, u.compressed_leaf_pages > 0 AS t_compressed
FROM fractal_stats('zb_k') s, fractal_stats('zb_t') u;
SELECT fractal_counters_reset();
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS lookups, sum(c) AS found
FROM generate_series(1, 200) g,
	 LATERAL (SELECT count(*) AS c FROM zb WHERE k = g * 311) s;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT max(value) FILTER (WHERE name = 'compressed_blocks_read') > 0 AS blocks_read,
	   max(value) FILTER (WHERE name = 'compressed_blocks_skipped') >
	   max(value) FILTER (WHERE name = 'compressed_blocks_read') AS most_blocks_skipped
FROM fractal_counters();
SELECT q, fr_diff_check(q, idx, true) AS problem
FROM (VALUES
	('SELECT md5(string_agg(k::text, '','')) FROM (SELECT k FROM zb WHERE k >= 0 ORDER BY k) s', 'zb_k'),
	('SELECT md5(string_agg(k::text, '','')) FROM (SELECT k FROM zb WHERE k >= 0 ORDER BY k DESC) s', 'zb_k'),
	('SELECT md5(string_agg(k::text, '','')) FROM (SELECT k FROM zb WHERE k BETWEEN 1000 AND 30000 ORDER BY k DESC) s', 'zb_k'),
	('SELECT count(*) || '' '' || sum(length(t)) FROM zb WHERE k = 777', 'zb_k'),
	('SELECT md5(string_agg(t, '','')) FROM (SELECT t FROM zb WHERE t >= ''key/5'' ORDER BY t LIMIT 3000) s', 'zb_t'),
	('SELECT md5(string_agg(t, '','')) FROM (SELECT t FROM zb WHERE t < ''key/7'' ORDER BY t DESC LIMIT 3000) s', 'zb_t'),
	('SELECT md5(string_agg(t, '','')) FROM (SELECT t FROM zb WHERE t > '''' ORDER BY t) s', 'zb_t')
) v(q, idx);
DELETE FROM zb WHERE k % 4 = 1;
VACUUM zb;
SELECT fractal_check('zb_k', true), fractal_check('zb_t', true);
SELECT count(*) AS queries, count(fr_diff_check(q, 'zb_k', true)) AS problems
FROM (VALUES
	('SELECT md5(string_agg(k::text, '','')) FROM (SELECT k FROM zb WHERE k >= 0 ORDER BY k) s'),
	('SELECT md5(string_agg(k::text, '','')) FROM (SELECT k FROM zb WHERE k >= 0 ORDER BY k DESC) s'),
	('SELECT count(*) || '' '' || sum(length(t)) FROM zb WHERE k = 777')
) v(q);

-- keys in order into a compressed index take the rightmost fast path too:
-- the rightmost leaf stays plain; when full it moves into its left
-- sibling compressed (rightmost_spills), keeping the sibling's blocks but
-- its last one as they were (compressed_blocks_kept), or, when that has no
-- room, is compressed behind a new plain rightmost leaf; so the compressed
-- leaves fill up.  Entries and answers as always: fractal_check, differential
-- queries in both directions (keys only: after the second load keys
-- repeat, with values in no defined order); then keys out of order,
-- deletes, VACUUM, keys in order again.
CREATE TABLE zs (k int8, v int);
CREATE INDEX zs_k ON zs USING fractal (k) WITH (compression = zstd);
SELECT fractal_counters_reset();
DO $$
BEGIN
	FOR i IN 0..199 LOOP
		INSERT INTO zs SELECT g, g FROM generate_series(i * 500 + 1, i * 500 + 500) g;
		COMMIT;
	END LOOP;
END $$;
SELECT max(value) FILTER (WHERE name = 'rightmost_inserts') > 90000 AS fast_path,
	   max(value) FILTER (WHERE name = 'rightmost_spills') > 20 AS spills,
	   max(value) FILTER (WHERE name = 'compressed_blocks_kept') > 20 AS blocks_kept
FROM fractal_counters();
SELECT compressed_leaf_pages > 0 AS compressed, leaf_pages < 60 AS leaves_filled
FROM fractal_stats('zs_k');
SELECT fractal_check('zs_k', true);
SELECT count(*) AS queries, count(fr_diff_check(q, 'zs_k', true)) AS problems
FROM (VALUES
	('SELECT md5(string_agg(k::text, '','')) FROM (SELECT k FROM zs WHERE k >= 0 ORDER BY k) s'),
	('SELECT md5(string_agg(k::text, '','')) FROM (SELECT k FROM zs WHERE k >= 0 ORDER BY k DESC) s'),
	('SELECT count(*) || '' '' || sum(v) FROM zs WHERE k BETWEEN 20000 AND 70000'),
	('SELECT count(*) || '' '' || sum(v) FROM zs WHERE k = 99999')
) v(q);
INSERT INTO zs SELECT (hashint4(g) & 131071)::int8, -g FROM generate_series(1, 20000) g;
DELETE FROM zs WHERE v % 7 = 0;
VACUUM zs;
INSERT INTO zs SELECT g, g FROM generate_series(200001, 230000) g;
SELECT fractal_check('zs_k', true);
SELECT count(*) AS queries, count(fr_diff_check(q, 'zs_k', true)) AS problems
FROM (VALUES
	('SELECT md5(string_agg(k::text, '','')) FROM (SELECT k FROM zs WHERE k >= 0 ORDER BY k) s'),
	('SELECT md5(string_agg(k::text, '','')) FROM (SELECT k FROM zs WHERE k >= 0 ORDER BY k DESC) s'),
	('SELECT count(*) || '' '' || sum(v) FROM zs WHERE k BETWEEN 20000 AND 220000'),
	('SELECT count(*) || '' '' || sum(v) FROM zs WHERE k = 99999')
) v(q);

-- bad settings
\set VERBOSITY terse
CREATE INDEX ON zt USING fractal (ts) WITH (compression = lz4);
CREATE INDEX ON zt USING fractal (ts) WITH (compression_level = 20);
CREATE INDEX ON zt USING fractal (ts) WITH (compression_level = -8);
\set VERBOSITY default

DROP TABLE zc, zt, zb, zs;
DROP FUNCTION fr_diff_check(text, text, bool);
DROP FUNCTION fr_diff_queries(text, int);
DROP FUNCTION fr_diff_batch(text, int, int);
