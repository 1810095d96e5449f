--
-- unique: UNIQUE fractal indexes.  Duplicates are refused whether the
-- existing entry sits in a leaf or in a node buffer, on INSERT, UPDATE,
-- CREATE UNIQUE INDEX [CONCURRENTLY]; NULLs are distinct unless NULLS NOT
-- DISTINCT; keys the operator class calls equal conflict even when their
-- bytes differ; INSERT ... ON CONFLICT DO NOTHING / DO UPDATE use a fractal
-- unique index as arbiter.  Concurrent inserts are in specs/unique_insert.
--
SET client_min_messages = warning;
CREATE SCHEMA fr_unique;
SET search_path = fr_unique, public;
SET max_parallel_workers_per_gather = 0;

-- keys inserted in random order into a small-buffered index: some sit in
-- leaves, the latest ones in node buffers
CREATE TABLE uq (id int, k int, t text);
CREATE UNIQUE INDEX uq_k ON uq USING fractal (k) WITH (buffer_pages = 4);
INSERT INTO uq SELECT g, (g * 7919) % 20011, 'x' || g FROM generate_series(1, 20000) g;
SELECT buffered_messages > 0 AS buffered, leaf_entries + buffered_messages = 20000 AS all_rows
  FROM fractal_stats('uq_k');
-- a key in a leaf, the key inserted last (in a buffer), a new key
INSERT INTO uq VALUES (0, (1 * 7919) % 20011, 'dup');
INSERT INTO uq VALUES (0, (20000 * 7919) % 20011, 'dup');
INSERT INTO uq VALUES (0, 20011, 'new');
-- duplicates inside one statement, and within one transaction
INSERT INTO uq VALUES (0, 30000, 'a'), (0, 30000, 'b');
BEGIN;
INSERT INTO uq VALUES (0, 30001, 'a');
INSERT INTO uq VALUES (0, 30001, 'b');
ROLLBACK;
-- an aborted insert leaves a dead entry that does not conflict
BEGIN;
INSERT INTO uq VALUES (0, 30002, 'aborted');
ROLLBACK;
INSERT INTO uq VALUES (0, 30002, 'kept');
-- UPDATE onto an existing key, and a key swap through a deleted row
UPDATE uq SET k = 5 WHERE k = 6;
DELETE FROM uq WHERE k = 7;
UPDATE uq SET k = 7 WHERE k = 8;
-- NULLs are distinct
INSERT INTO uq VALUES (0, NULL, 'n1'), (0, NULL, 'n2');
SELECT count(*) AS nulls FROM uq WHERE k IS NULL;
-- every key once, as a seqscan sees it and through the index
SELECT count(*) AS rows, count(DISTINCT k) AS keys, count(k) AS non_null FROM uq;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS rows_via_index FROM uq WHERE k >= 0;
SELECT k, t FROM uq WHERE k IN (7, 20011, 30002) ORDER BY k;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT fractal_check('uq_k', true) AS uq_ok;

-- INSERT ... ON CONFLICT with the fractal index as arbiter
EXPLAIN (COSTS OFF) INSERT INTO uq VALUES (0, 1, 'x') ON CONFLICT (k) DO NOTHING;
INSERT INTO uq VALUES (0, 40000, 'first') ON CONFLICT (k) DO NOTHING;
INSERT INTO uq VALUES (0, 40000, 'second') ON CONFLICT (k) DO NOTHING;
INSERT INTO uq VALUES (0, 40000, 'third') ON CONFLICT (k) DO UPDATE SET t = uq.t || '+' || excluded.t;
INSERT INTO uq VALUES (0, 40001, 'fourth') ON CONFLICT (k) DO UPDATE SET t = excluded.t;
INSERT INTO uq VALUES (0, 40000, 'no target') ON CONFLICT DO NOTHING;
SELECT k, t FROM uq WHERE k IN (40000, 40001) ORDER BY k;
-- a batch with 10% repeats (existing keys in leaves and buffers, and
-- repeats inside the batch), as an idempotent loader sends it
INSERT INTO uq SELECT 100000 + g, 50000 + (g % 900), 'batch'
  FROM generate_series(1, 1000) g ON CONFLICT (k) DO NOTHING;
INSERT INTO uq SELECT 200000 + g, (g * 7919) % 20011, 'again'
  FROM generate_series(1, 300) g ON CONFLICT (k) DO NOTHING;
WITH ins AS (INSERT INTO uq VALUES (0, 40002, 'cte') ON CONFLICT (k) DO NOTHING RETURNING k)
SELECT count(*) AS inserted_by_cte FROM ins;
SELECT count(*) AS rows, count(DISTINCT k) AS keys FROM uq WHERE k IS NOT NULL;
SELECT count(*) FILTER (WHERE t = 'batch') AS batch_rows,
	   count(*) FILTER (WHERE t = 'again') AS again_rows FROM uq;
-- a table with a btree and a fractal unique index: either can arbitrate
CREATE TABLE uqm (a int, b int);
CREATE UNIQUE INDEX uqm_a ON uqm (a);
CREATE UNIQUE INDEX uqm_b ON uqm USING fractal (b);
INSERT INTO uqm VALUES (1, 1);
INSERT INTO uqm VALUES (1, 2) ON CONFLICT (a) DO NOTHING;
INSERT INTO uqm VALUES (2, 1) ON CONFLICT (b) DO NOTHING;
INSERT INTO uqm VALUES (2, 1) ON CONFLICT (a) DO NOTHING;
INSERT INTO uqm VALUES (3, 3) ON CONFLICT (b) DO UPDATE SET a = 30;
INSERT INTO uqm VALUES (4, 3) ON CONFLICT (b) DO UPDATE SET a = 30;
SELECT * FROM uqm ORDER BY a;

-- keys equal in the operator class but not in bytes conflict
CREATE COLLATION uq_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE uqe (n numeric, f float8, c text COLLATE uq_ci);
CREATE UNIQUE INDEX uqe_n ON uqe USING fractal (n);
CREATE UNIQUE INDEX uqe_f ON uqe USING fractal (f);
CREATE UNIQUE INDEX uqe_c ON uqe USING fractal (c);
INSERT INTO uqe VALUES (1.0, 0.0, 'Abc');
INSERT INTO uqe VALUES (1.00, 1, 'x');
INSERT INTO uqe VALUES (2, '-0', 'y');
INSERT INTO uqe VALUES (3, 3, 'aBC');
INSERT INTO uqe VALUES (1.000, 4, 'z') ON CONFLICT (n) DO NOTHING;
SELECT count(*) AS uqe_rows FROM uqe;

-- multi-column keys: a NULL column makes the key distinct; INCLUDE
-- columns do not take part
CREATE TABLE uqc (a int, b text, c int);
CREATE UNIQUE INDEX uqc_ab ON uqc USING fractal (a, b) INCLUDE (c);
INSERT INTO uqc VALUES (1, 'x', 1), (1, 'y', 1), (2, 'x', 1), (1, NULL, 1), (1, NULL, 2);
INSERT INTO uqc VALUES (1, 'x', 2);
INSERT INTO uqc VALUES (1, 'x', 3) ON CONFLICT (a, b) DO UPDATE SET c = excluded.c;
SELECT a, b, c FROM uqc ORDER BY a, b, c;
-- NULLS NOT DISTINCT
CREATE TABLE uqn (a int, b int);
CREATE UNIQUE INDEX uqn_ab ON uqn USING fractal (a, b) NULLS NOT DISTINCT;
INSERT INTO uqn VALUES (1, NULL), (NULL, NULL);
INSERT INTO uqn VALUES (1, NULL);
INSERT INTO uqn VALUES (NULL, NULL);
INSERT INTO uqn VALUES (NULL, NULL) ON CONFLICT (a, b) DO NOTHING;
SELECT count(*) AS uqn_rows FROM uqn;

-- CREATE UNIQUE INDEX on existing rows: duplicates fail cleanly, dead
-- duplicates do not count, NULLs never do
CREATE TABLE uqb (k int, v int);
INSERT INTO uqb SELECT g % 5000, g FROM generate_series(1, 5001) g;
INSERT INTO uqb VALUES (NULL, -1), (NULL, -2);
CREATE UNIQUE INDEX uqb_k ON uqb USING fractal (k);
DELETE FROM uqb WHERE v = 5001;
CREATE UNIQUE INDEX uqb_k ON uqb USING fractal (k);
INSERT INTO uqb VALUES (4999, 1);
CREATE UNIQUE INDEX CONCURRENTLY uqb_kv ON uqb USING fractal ((k % 10));
SELECT indisvalid AS kv_valid FROM pg_index WHERE indexrelid = 'uqb_kv'::regclass;
DROP INDEX uqb_kv;
CREATE UNIQUE INDEX CONCURRENTLY uqb_v ON uqb USING fractal (v);
SELECT indisvalid AS v_valid FROM pg_index WHERE indexrelid = 'uqb_v'::regclass;
INSERT INTO uqb VALUES (6000, 5000);
SELECT fractal_check('uqb_k', true) AS uqb_k_ok, fractal_check('uqb_v', true) AS uqb_v_ok;

-- what PostgreSQL 15 itself allows only for btree: a constraint (and so
-- a DEFERRABLE one) over the index, and ON CONFLICT into partitions that
-- have a unique fractal index
ALTER TABLE uqb ADD CONSTRAINT uqb_k_con UNIQUE USING INDEX uqb_k;
CREATE TABLE uqp (k int) PARTITION BY RANGE (k);
CREATE TABLE uqp1 PARTITION OF uqp FOR VALUES FROM (0) TO (100);
CREATE UNIQUE INDEX uqp1_k ON uqp1 USING fractal (k);
INSERT INTO uqp VALUES (1);
INSERT INTO uqp VALUES (1);
INSERT INTO uqp VALUES (2) ON CONFLICT DO NOTHING;

-- ON CONFLICT's pre-check proves a new key absent, so the insert's own
-- check is skipped (counted in fractal_counters(), which this preloading
-- cluster has); a plain INSERT, or a key found by the pre-check, checks.
-- The results match a seqscan either way; specs/unique_precheck.spec races
-- an insert of the same key into the gap.
CREATE TABLE uqs (k int8, v text, w int);
CREATE INDEX uqs_w ON uqs USING fractal (w);
CREATE UNIQUE INDEX uqs_k ON uqs USING fractal (k) INCLUDE (v)
  WITH (buffer_pages = 4);
INSERT INTO uqs SELECT g * 2, 'base', g FROM generate_series(1, 3000) g;
SELECT fractal_counters_reset();
INSERT INTO uqs SELECT g, 'new', g FROM generate_series(1, 401) g
  ON CONFLICT (k) DO NOTHING;
SELECT c.checks = 0 AS none_checked, c.skipped = 201 AS odd_keys_skipped
  FROM (SELECT max(value) FILTER (WHERE name = 'unique_checks') AS checks,
			   max(value) FILTER (WHERE name = 'unique_checks_skipped') AS skipped
		  FROM fractal_counters()) c;
INSERT INTO uqs VALUES (100001, 'plain', 0);
INSERT INTO uqs VALUES (100001, 'plain', 0);
INSERT INTO uqs VALUES (100001, 'again', 0) ON CONFLICT (k) DO UPDATE SET v = 'updated';
INSERT INTO uqs VALUES (100001, 'again', 0) ON CONFLICT (k) DO UPDATE SET k = 100003;
SELECT c.checks AS checked, c.skipped AS skipped
  FROM (SELECT max(value) FILTER (WHERE name = 'unique_checks') AS checks,
			   max(value) FILTER (WHERE name = 'unique_checks_skipped') AS skipped
		  FROM fractal_counters()) c;
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*), count(DISTINCT k), sum(k), string_agg(DISTINCT v, ',' ORDER BY v) FROM uqs;
RESET enable_seqscan; RESET enable_bitmapscan;
SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off;
SELECT count(*), count(DISTINCT k), sum(k), string_agg(DISTINCT v, ',' ORDER BY v) FROM uqs;
RESET enable_indexscan; RESET enable_indexonlyscan; RESET enable_bitmapscan;
SELECT fractal_check('uqs_k', true) AS uqs_k_ok;
-- a key too large for an entry: the insert's own error, pre-check or not
CREATE TABLE uqt (t text);
CREATE UNIQUE INDEX uqt_t ON uqt USING fractal (t);
INSERT INTO uqt SELECT string_agg(md5(g::text), '') FROM generate_series(1, 200) g
  ON CONFLICT (t) DO NOTHING;
INSERT INTO uqt VALUES ('small') ON CONFLICT (t) DO NOTHING;
INSERT INTO uqt VALUES ('small') ON CONFLICT (t) DO NOTHING;
SELECT count(*) FROM uqt;

RESET search_path;
DROP SCHEMA fr_unique CASCADE;
