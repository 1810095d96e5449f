--
-- Differential test: the same generated queries through a fractal index
-- (plain index scan, then bitmap scan) and through a sequential scan must
-- return the same rows.  Run on an index grown by 200,000 random inserts
-- (deep enough that messages are buffered at several levels) and on one
-- built by CREATE INDEX over the same data.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS fractal;
RESET client_min_messages;
SELECT setseed(0.4242);

\i test/sql/diff_functions.sql

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

DROP TABLE dif, difb;
DROP FUNCTION fr_diff_check(text, text, bool);
DROP FUNCTION fr_diff_queries(text, int);
DROP FUNCTION fr_diff_batch(text, int, int);
