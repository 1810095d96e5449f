--
-- VACUUM of fractal indexes: 300,000 random keys, a random half deleted,
-- VACUUM; afterwards no entry of a deleted row is left in leaves or
-- buffers, the statistics VACUUM stores agree with the heap, the structure
-- verifies, and generated queries through the index equal a seqscan.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS fractal;
RESET client_min_messages;
SELECT setseed(0.777);
\i test/sql/diff_functions.sql

CREATE TABLE vac (id int, a int8, b int4, pad text) WITH (autovacuum_enabled = off);
CREATE INDEX vac_a ON vac USING fractal (a);
CREATE INDEX vac_ba ON vac USING fractal (b, a) WITH (buffer_pages = 8);
SELECT fr_diff_batch('vac', 1, 100000);
SELECT fr_diff_batch('vac', 100001, 200000);
SELECT fr_diff_batch('vac', 200001, 300000);
SELECT buffered_messages > 0 AS has_messages, height >= 2 AS three_levels
FROM fractal_stats('vac_a');

-- delete a random half: entries sit in leaves and in buffers at every level
DELETE FROM vac WHERE random() < 0.5;
VACUUM vac;

-- every remaining entry belongs to a live row (no duplicates were left by
-- interrupted flushes in this test, so the counts are exact)
SELECT s.leaf_entries + s.buffered_messages = (SELECT count(*) FROM vac) AS no_dead_entries
FROM fractal_stats('vac_a') s;
SELECT s.leaf_entries + s.buffered_messages = (SELECT count(*) FROM vac) AS no_dead_entries
FROM fractal_stats('vac_ba') s;
-- the index statistics VACUUM stored agree with the heap
SELECT c.relname, c.reltuples = (SELECT count(*) FROM vac) AS reltuples_match,
	   c.relpages = pg_relation_size(c.oid) / 8192 AS relpages_match
FROM pg_class c WHERE c.relname IN ('vac_a', 'vac_ba') ORDER BY 1;
SELECT fractal_check('vac_a', true), fractal_check('vac_ba', true);

SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
	  FROM fr_diff_queries('vac', 300)) s;

-- freed space is reused: inserting as many rows again grows the index
-- far less than it grew the first time
CREATE TEMP TABLE sz AS SELECT pg_relation_size('vac_a') AS before;
SELECT fr_diff_batch('vac', 300001, 450000);
SELECT pg_relation_size('vac_a') < 1.25 * before AS space_reused FROM sz;

-- parallel vacuum (two indexes above min_parallel_index_scan_size)
DELETE FROM vac WHERE id % 3 = 0;
VACUUM (PARALLEL 2) vac;
SELECT s.leaf_entries + s.buffered_messages = (SELECT count(*) FROM vac) AS no_dead_entries
FROM fractal_stats('vac_a') s;
SELECT fractal_check('vac_a', true), fractal_check('vac_ba', true);
SELECT count(*) AS queries, count(problem) AS problems
FROM (SELECT fr_diff_check(q, idx, want_indexscan) AS problem
	  FROM fr_diff_queries('vac', 100)) s;

-- deleting everything empties the index
DELETE FROM vac;
VACUUM vac;
SELECT leaf_entries, buffered_messages FROM fractal_stats('vac_a');
-- the emptied leaves were unlinked and freed: only the one leaf each
-- level-1 node keeps is left, and the rest is reusable
SELECT s.leaf_pages <= (SELECT nodes FROM fractal_level_stats('vac_a') WHERE level = 1) AS empty_leaves_unlinked,
	   s.free_pages > s.leaf_pages AS pages_reusable
FROM fractal_stats('vac_a') s;
SELECT fractal_check('vac_a', true);
SELECT count(*) FROM vac WHERE a > 0;

DROP TABLE vac;
DROP FUNCTION fr_diff_check(text, text, bool);
DROP FUNCTION fr_diff_queries(text, int);
DROP FUNCTION fr_diff_batch(text, int, int);
