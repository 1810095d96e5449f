--
-- ordering: ordered scans (ASC / DESC, NULLS FIRST / LAST, forward and
-- backward, with and without LIMIT) on single- and multi-column fractal
-- indexes, quals on the leading and on the second column, IS [NOT] NULL,
-- min()/max(), merge joins fed by fractal index scans and scroll cursors.
-- Every result through the fractal index is compared with a seqscan.
--
SET client_min_messages = warning;
CREATE SCHEMA fr_ordering;
SET search_path = fr_ordering, public;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET max_parallel_workers_per_gather = 0;

\i test/sql/check_functions.sql

-- Three tables with the same rows (every 31st a is NULL, every 13th b is
-- NULL, many duplicate (a, b) pairs; b is 300 bytes wide so the tree gets
-- several levels) and fractal indexes on (a, b) with different orderings,
-- created empty and filled in two batches: the trees have several internal
-- levels and messages buffered at more than one of them.
CREATE TYPE ord_pair AS (a int, b text);
CREATE TABLE ord_asc (id int, a int, b text);
CREATE TABLE ord_desc (id int, a int, b text);
CREATE TABLE ord_mixed (id int, a int, b text);
CREATE INDEX ord_asc_ab ON ord_asc USING fractal (a, b) WITH (buffer_pages = 4);
CREATE INDEX ord_desc_ab ON ord_desc USING fractal (a DESC, b DESC) WITH (buffer_pages = 4);
CREATE INDEX ord_mixed_ab ON ord_mixed USING fractal (a NULLS FIRST, b DESC NULLS LAST)
	WITH (buffer_pages = 4);
CREATE FUNCTION ord_row(i int) RETURNS ord_pair LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN i % 31 = 0 THEN NULL ELSE (i * 7919) % 1000 END,
		   CASE WHEN i % 13 = 0 THEN NULL ELSE lpad((i % 17)::text, 300, '-') END
$$;
INSERT INTO ord_asc SELECT i, (ord_row(i)).* FROM generate_series(1, 3000) i;
INSERT INTO ord_desc SELECT i, (ord_row(i)).* FROM generate_series(1, 3000) i;
INSERT INTO ord_mixed SELECT i, (ord_row(i)).* FROM generate_series(1, 3000) i;
INSERT INTO ord_asc SELECT i, (ord_row(i)).* FROM generate_series(3001, 6000) i;
INSERT INTO ord_desc SELECT i, (ord_row(i)).* FROM generate_series(3001, 6000) i;
INSERT INTO ord_mixed SELECT i, (ord_row(i)).* FROM generate_series(3001, 6000) i;
ANALYZE ord_asc, ord_desc, ord_mixed;

SELECT t, s.height >= 2 AS multi_level, s.leaf_pages > 50 AS many_leaves,
	   s.buffered_messages > 0 AS buffered,
	   (SELECT count(*) FROM fractal_level_stats(t) WHERE buffered_messages > 0) >= 2
		AS buffered_on_two_levels,
	   s.leaf_entries + s.buffered_messages = 6000 AS all_rows_indexed
  FROM unnest('{ord_asc_ab,ord_desc_ab,ord_mixed_ab}'::regclass[]) t,
	   LATERAL fractal_stats(t) s;

-- plans: forward and backward scans, no Sort
SELECT fr_explain('SELECT a, b FROM ord_asc ORDER BY a, b');
SELECT fr_explain('SELECT a, b FROM ord_asc ORDER BY a DESC, b DESC LIMIT 10');
SELECT fr_explain('SELECT a, b FROM ord_asc WHERE a = 500 ORDER BY b DESC');
SELECT fr_explain('SELECT a, b FROM ord_asc WHERE a > 10 AND a <= 20 ORDER BY a, b');
SELECT fr_explain('SELECT a, b FROM ord_desc ORDER BY a DESC, b DESC');
SELECT fr_explain('SELECT a, b FROM ord_desc ORDER BY a, b');
SELECT fr_explain('SELECT a, b FROM ord_mixed ORDER BY a NULLS FIRST, b DESC NULLS LAST');
SELECT fr_explain('SELECT a, b FROM ord_mixed ORDER BY a DESC NULLS LAST, b NULLS FIRST LIMIT 5');
-- an order the index does not provide needs a Sort
SELECT fr_explain('SELECT a, b FROM ord_asc ORDER BY a NULLS FIRST, b');
SELECT fr_explain('SELECT a, b FROM ord_asc ORDER BY a, b DESC');
-- a qual on the second column only is an index qual
SELECT fr_explain('SELECT a, b FROM ord_asc WHERE b = lpad(''5'', 300, ''-'')');

-- ordered queries: the index-scan result equals the seqscan+sort result
-- element by element; unordered ones are compared as multisets
CREATE TABLE ord_tests (ord serial, q text, modes text, ordered boolean);
INSERT INTO ord_tests (q, modes, ordered) VALUES
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc ORDER BY a, b', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc ORDER BY a ASC NULLS LAST, b ASC NULLS LAST', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc ORDER BY a DESC, b DESC', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc ORDER BY a DESC NULLS FIRST, b DESC NULLS FIRST', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc ORDER BY a, b LIMIT 10', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc ORDER BY a DESC, b DESC LIMIT 10', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc ORDER BY a DESC, b DESC LIMIT 300', 'i', true),
 ('SELECT a AS v FROM ord_asc ORDER BY a LIMIT 1', 'i', true),
 ('SELECT a AS v FROM ord_asc ORDER BY a DESC LIMIT 200', 'i', true),
 ('SELECT b AS v FROM ord_asc WHERE a = 500 ORDER BY b', 'i', true),
 ('SELECT b AS v FROM ord_asc WHERE a = 500 ORDER BY b DESC', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a < 100 ORDER BY a, b', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a < 100 ORDER BY a DESC, b DESC LIMIT 25', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a >= 250 AND a < 260 ORDER BY a, b', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a BETWEEN 250 AND 260 ORDER BY a DESC, b DESC', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a > 990 ORDER BY a, b', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a <= 3 ORDER BY a DESC, b DESC', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a = 500 AND b > lpad(''8'', 300, ''-'') ORDER BY a, b', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a = 500 AND b <= lpad(''8'', 300, ''-'') ORDER BY a DESC, b DESC', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a IS NULL ORDER BY a, b', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a IS NULL ORDER BY a DESC, b DESC', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a IS NOT NULL ORDER BY a DESC, b DESC LIMIT 30', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE b = lpad(''5'', 300, ''-'') ORDER BY a, b', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE b IS NULL ORDER BY a DESC, b DESC', 'i', true),
 ('SELECT id, a, b FROM ord_asc WHERE a = 500', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a < 17 AND a > 3', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE b = lpad(''5'', 300, ''-'')', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE b < lpad(''12'', 300, ''-'')', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE b >= lpad(''16'', 300, ''-'') AND a > 900', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a = 500 AND b = lpad(''5'', 300, ''-'')', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a IS NOT NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE b IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE b IS NOT NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a IS NULL AND b IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a IS NULL AND b IS NOT NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a = 500 AND b IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a > 500 AND b IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a IS NOT NULL AND b IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a IS NULL AND b = lpad(''5'', 300, ''-'')', 'ib', false),
 ('SELECT id, a, b FROM ord_asc WHERE a IS NULL AND a = 5', 'ib', false),
 ('SELECT (a, b)::ord_pair AS v FROM ord_desc ORDER BY a DESC, b DESC', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_desc ORDER BY a, b', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_desc ORDER BY a DESC, b DESC LIMIT 10', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_desc ORDER BY a, b LIMIT 10', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_desc WHERE a < 100 ORDER BY a DESC, b DESC', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_desc WHERE a BETWEEN 250 AND 260 ORDER BY a, b', 'i', true),
 ('SELECT b AS v FROM ord_desc WHERE a = 500 ORDER BY b DESC', 'i', true),
 ('SELECT b AS v FROM ord_desc WHERE a = 500 ORDER BY b', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_desc WHERE a IS NULL ORDER BY a DESC, b DESC', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_desc WHERE a > 900 ORDER BY a, b LIMIT 40', 'i', true),
 ('SELECT id, a, b FROM ord_desc WHERE a > 900', 'ib', false),
 ('SELECT id, a, b FROM ord_desc WHERE a <= 3', 'ib', false),
 ('SELECT id, a, b FROM ord_desc WHERE a = 500', 'ib', false),
 ('SELECT id, a, b FROM ord_desc WHERE a IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_desc WHERE b IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_desc WHERE a = 500 AND b < lpad(''9'', 300, ''-'')', 'ib', false),
 ('SELECT (a, b)::ord_pair AS v FROM ord_mixed ORDER BY a NULLS FIRST, b DESC NULLS LAST', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_mixed ORDER BY a DESC NULLS LAST, b NULLS FIRST', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_mixed ORDER BY a NULLS FIRST, b DESC NULLS LAST LIMIT 10', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_mixed ORDER BY a DESC NULLS LAST, b NULLS FIRST LIMIT 10', 'i', true),
 ('SELECT b AS v FROM ord_mixed WHERE a = 500 ORDER BY b DESC NULLS LAST', 'i', true),
 ('SELECT b AS v FROM ord_mixed WHERE a = 500 ORDER BY b NULLS FIRST', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_mixed WHERE a > 990 ORDER BY a NULLS FIRST, b DESC NULLS LAST', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_mixed WHERE a < 5 ORDER BY a DESC NULLS LAST, b NULLS FIRST', 'i', true),
 ('SELECT (a, b)::ord_pair AS v FROM ord_mixed WHERE a IS NULL ORDER BY a NULLS FIRST, b DESC NULLS LAST', 'i', true),
 ('SELECT id, a, b FROM ord_mixed WHERE a < 10', 'ib', false),
 ('SELECT id, a, b FROM ord_mixed WHERE a IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_mixed WHERE b IS NULL', 'ib', false),
 ('SELECT id, a, b FROM ord_mixed WHERE a >= 995 AND b IS NOT NULL', 'ib', false);

SELECT t.ord, t.q, c.ok, c.nrows
  FROM ord_tests t, LATERAL fr_check(t.q, t.modes, t.ordered) c
 ORDER BY t.ord;

-- min() and max() through the index
SELECT fr_explain('SELECT min(a), max(a) FROM ord_asc');
SELECT fr_explain('SELECT max(b) FROM ord_asc WHERE a = 500');
SELECT q, (fr_check(q, 'i')).*
  FROM unnest(ARRAY[
	'SELECT min(a), max(a) FROM ord_asc',
	'SELECT min(a), max(a) FROM ord_desc',
	'SELECT min(a), max(a) FROM ord_mixed',
	'SELECT min(b), max(b) FROM ord_asc WHERE a = 500',
	'SELECT max(a) FROM ord_asc WHERE a < 500',
	'SELECT min(a) FROM ord_desc WHERE a > 500',
	'SELECT max(a) FROM ord_asc WHERE a > 5000']) q;
SELECT min(a), max(a), max(right(b, 3)) FROM ord_asc;

-- merge join with both inputs presorted by fractal indexes; duplicate keys
-- on both sides make the inner index scan mark and restore its position
CREATE TABLE mj_l (k int, x int);
CREATE TABLE mj_r (k int, y int);
CREATE INDEX mj_l_k ON mj_l USING fractal (k) WITH (buffer_pages = 4);
CREATE INDEX mj_r_k ON mj_r USING fractal (k DESC) WITH (buffer_pages = 4);
INSERT INTO mj_l SELECT CASE WHEN i % 50 = 0 THEN NULL ELSE (i * 7919) % 500 END, i
  FROM generate_series(1, 3000) i;
INSERT INTO mj_r SELECT CASE WHEN i % 40 = 0 THEN NULL ELSE (i * 31) % 700 END, i
  FROM generate_series(1, 2000) i;
INSERT INTO mj_l SELECT (i * 7919) % 500, i FROM generate_series(3001, 4000) i;
INSERT INTO mj_r SELECT (i * 31) % 700, i FROM generate_series(2001, 3000) i;
ANALYZE mj_l, mj_r;

CREATE FUNCTION mj_check(q text, OUT plan_ok boolean, OUT same boolean, OUT nrows bigint)
LANGUAGE plpgsql AS $f$
DECLARE
	p jsonb;
	r_mj text;
	r_hj text;
	wrapped text := format('SELECT array_agg(s::text ORDER BY s::text) FROM (%s) s', q);
BEGIN
	PERFORM fr_set_mode('i');
	PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_nestloop', 'off', true),
			set_config('enable_sort', 'off', true), set_config('enable_material', 'off', true);
	EXECUTE 'EXPLAIN (FORMAT JSON, COSTS OFF) ' || q INTO p;
	plan_ok := (SELECT count(*) FILTER (WHERE n->>'Node Type' = 'Merge Join') = 1 AND
					   count(*) FILTER (WHERE n->>'Node Type' = 'Index Scan' AND
										n->>'Index Name' IN ('mj_l_k', 'mj_r_k')) = 2 AND
					   count(*) FILTER (WHERE n->>'Node Type' IN ('Sort', 'Seq Scan')) = 0
				  FROM jsonb_path_query(p, 'strict $.**') n
				 WHERE jsonb_typeof(n) = 'object' AND n ? 'Node Type');
	EXECUTE wrapped INTO r_mj;
	PERFORM fr_set_mode('s');
	PERFORM set_config('enable_hashjoin', 'on', true), set_config('enable_mergejoin', 'off', true),
			set_config('enable_sort', 'on', true), set_config('enable_material', 'on', true),
			set_config('enable_nestloop', 'on', true);
	EXECUTE wrapped INTO r_hj;
	same := r_mj IS NOT DISTINCT FROM r_hj;
	nrows := coalesce(cardinality(r_hj::text[]), 0);
	PERFORM set_config('enable_hashjoin', 'on', true), set_config('enable_mergejoin', 'on', true),
			fr_set_mode('i'), set_config('enable_seqscan', 'on', true),
			set_config('enable_bitmapscan', 'on', true);
END
$f$;

SET enable_hashjoin = off;
SET enable_nestloop = off;
SET enable_sort = off;
SET enable_material = off;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT l.k, l.x, r.y FROM mj_l l JOIN mj_r r ON l.k = r.k;
EXPLAIN (COSTS OFF) SELECT l.k, l.x, r.y FROM mj_l l JOIN mj_r r ON l.k = r.k ORDER BY l.k DESC;
RESET enable_hashjoin;
RESET enable_nestloop;
RESET enable_sort;
RESET enable_material;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT q, (mj_check(q)).*
  FROM unnest(ARRAY[
	'SELECT l.k, l.x, r.y FROM mj_l l JOIN mj_r r ON l.k = r.k',
	'SELECT l.k, l.x, r.y FROM mj_l l JOIN mj_r r ON l.k = r.k ORDER BY l.k DESC',
	'SELECT l.k, l.x, r.y FROM mj_l l JOIN mj_r r ON l.k = r.k WHERE l.k BETWEEN 100 AND 200',
	'SELECT l.k, l.x, r.y FROM mj_l l LEFT JOIN mj_r r ON l.k = r.k',
	'SELECT l.k, l.x, r.y FROM mj_l l FULL JOIN mj_r r ON l.k = r.k']) q;

-- scroll cursors over index scans, checked step by step against the same
-- cursor over a seqscan + sort
CREATE FUNCTION fr_cursor_check(q text)
RETURNS TABLE (step text, has_row boolean, idx_row text, same boolean)
LANGUAGE plpgsql AS $f$
DECLARE
	ci refcursor;
	cs refcursor;
	ri record;
	rs record;
	fi boolean;
	fs boolean;
	kind text;
	n int;
	steps text[] := ARRAY['next', 'next', 'relative 3', 'prior', 'absolute 20',
		'relative -5', 'prior', 'first', 'prior', 'next', 'next', 'last', 'next',
		'prior', 'prior', 'absolute -3', 'relative 0', 'absolute 0', 'next',
		'move relative 40', 'next', 'prior', 'move absolute -1', 'prior',
		'move absolute 0', 'prior', 'relative 2', 'absolute 1000000', 'prior',
		'absolute -1000000', 'next', 'move last', 'next', 'next', 'prior'];
BEGIN
	PERFORM fr_set_mode('i');
	OPEN ci SCROLL FOR EXECUTE q;
	PERFORM fr_set_mode('s');
	OPEN cs SCROLL FOR EXECUTE q;
	PERFORM fr_set_mode('i'), set_config('enable_seqscan', 'on', true),
			set_config('enable_bitmapscan', 'on', true);
	FOREACH step IN ARRAY steps LOOP
		kind := regexp_replace(step, ' -?[0-9]+$', '');
		n := coalesce(substring(step FROM '-?[0-9]+$')::int, 0);
		ri := NULL;
		rs := NULL;
		CASE kind
			WHEN 'next' THEN
				FETCH NEXT FROM ci INTO ri; fi := FOUND; FETCH NEXT FROM cs INTO rs; fs := FOUND;
			WHEN 'prior' THEN
				FETCH PRIOR FROM ci INTO ri; fi := FOUND; FETCH PRIOR FROM cs INTO rs; fs := FOUND;
			WHEN 'first' THEN
				FETCH FIRST FROM ci INTO ri; fi := FOUND; FETCH FIRST FROM cs INTO rs; fs := FOUND;
			WHEN 'last' THEN
				FETCH LAST FROM ci INTO ri; fi := FOUND; FETCH LAST FROM cs INTO rs; fs := FOUND;
			WHEN 'absolute' THEN
				FETCH ABSOLUTE n FROM ci INTO ri; fi := FOUND; FETCH ABSOLUTE n FROM cs INTO rs; fs := FOUND;
			WHEN 'relative' THEN
				FETCH RELATIVE n FROM ci INTO ri; fi := FOUND; FETCH RELATIVE n FROM cs INTO rs; fs := FOUND;
			WHEN 'move relative' THEN
				MOVE RELATIVE n FROM ci; fi := FOUND; MOVE RELATIVE n FROM cs; fs := FOUND;
			WHEN 'move absolute' THEN
				MOVE ABSOLUTE n FROM ci; fi := FOUND; MOVE ABSOLUTE n FROM cs; fs := FOUND;
			WHEN 'move last' THEN
				MOVE LAST FROM ci; fi := FOUND; MOVE LAST FROM cs; fs := FOUND;
		END CASE;
		has_row := fi;
		idx_row := CASE WHEN kind LIKE 'move%' THEN NULL ELSE ri::text END;
		same := fi = fs AND ri::text IS NOT DISTINCT FROM rs::text;
		RETURN NEXT;
	END LOOP;
	CLOSE ci;
	CLOSE cs;
END
$f$;

SELECT fr_explain('SELECT a, right(b, 3) AS rb FROM ord_asc WHERE a BETWEEN 100 AND 120 ORDER BY a, b');
SELECT * FROM fr_cursor_check('SELECT a, right(b, 3) AS rb FROM ord_asc WHERE a BETWEEN 100 AND 120 ORDER BY a, b');
SELECT fr_explain('SELECT a, right(b, 3) AS rb FROM ord_desc WHERE a < 30 OR a IS NULL ORDER BY a DESC, b DESC');
SELECT * FROM fr_cursor_check('SELECT a, right(b, 3) AS rb FROM ord_desc WHERE a < 30 OR a IS NULL ORDER BY a DESC, b DESC');
SELECT fr_explain('SELECT a, right(b, 3) AS rb FROM ord_mixed ORDER BY a DESC NULLS LAST, b NULLS FIRST');
SELECT * FROM fr_cursor_check('SELECT a, right(b, 3) AS rb FROM ord_mixed ORDER BY a DESC NULLS LAST, b NULLS FIRST');

-- a plain SQL scroll cursor over a backward index scan
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_sort = off;
BEGIN;
DECLARE c SCROLL CURSOR FOR
	SELECT a, right(b, 3) AS rb FROM ord_asc WHERE a >= 995 ORDER BY a DESC, b DESC;
FETCH 4 FROM c;
FETCH BACKWARD 2 FROM c;
FETCH ABSOLUTE 10 FROM c;
FETCH RELATIVE -4 FROM c;
FETCH PRIOR FROM c;
FETCH LAST FROM c;
FETCH BACKWARD 3 FROM c;
MOVE FIRST IN c;
FETCH FORWARD 2 FROM c;
COMMIT;
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_sort;
-- the same rows, in the same order, from a sort
SELECT a, right(b, 3) AS rb FROM ord_asc WHERE a >= 995 ORDER BY a DESC, b DESC;

-- IN lists and "= ANY(array)" as index scans (amsearcharray): one descent
-- per element (sorted, duplicates and NULLs dropped), in index order
-- forward and backward, no Sort when the array is on the first column (the
-- planner sorts when one is on a later column); inequalities over arrays
-- reduce to one element
SELECT fr_explain('SELECT a, b FROM ord_asc WHERE a IN (500, 3, 500, NULL, 17) ORDER BY a, b');
SELECT fr_explain('SELECT a, b FROM ord_asc WHERE a IN (500, 3, 17) ORDER BY a DESC, b DESC');
SELECT fr_explain('SELECT a, b FROM ord_desc WHERE a = ANY(''{7,500,1}'') ORDER BY a DESC, b DESC');
SELECT q, (fr_check(q, m, o)).*
  FROM (VALUES
	('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a IN (500, 3, 500, NULL, 17, 2000) ORDER BY a, b', 'i', true),
	('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a IN (500, 3, 17) ORDER BY a DESC, b DESC', 'i', true),
	('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a IN (500, 3, 17) ORDER BY a DESC, b DESC LIMIT 7', 'i', true),
	('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a = ANY(''{999,0,1,998}''::int8[]) ORDER BY a, b', 'i', true),
	('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a IN (10, 20, 30) AND b > lpad(''8'', 300, ''-'') ORDER BY a, b', 'i', true),
	('SELECT (a, b)::ord_pair AS v FROM ord_asc WHERE a IN (10, 20, 30) AND b IN (lpad(''5'', 300, ''-''), lpad(''16'', 300, ''-''), lpad(''1'', 300, ''-''))', 'ib', false),
	('SELECT (a, b)::ord_pair AS v FROM ord_desc WHERE a = ANY(''{7,500,1,NULL}'') ORDER BY a DESC, b DESC', 'i', true),
	('SELECT (a, b)::ord_pair AS v FROM ord_desc WHERE a = ANY(''{7,500,1}'') ORDER BY a, b', 'i', true),
	('SELECT (a, b)::ord_pair AS v FROM ord_mixed WHERE a IN (5, 995, 400) ORDER BY a DESC NULLS LAST, b NULLS FIRST', 'i', true),
	('SELECT id, a, b FROM ord_asc WHERE a IN (500, 3, 17)', 'ib', false),
	('SELECT id, a, b FROM ord_asc WHERE a = ANY(''{}'')', 'ib', false),
	('SELECT id, a, b FROM ord_asc WHERE a = ANY(''{NULL}'')', 'ib', false),
	('SELECT id, a, b FROM ord_asc WHERE a = ANY(NULL::int[])', 'ib', false),
	('SELECT id, a, b FROM ord_asc WHERE a IN (3, 4) AND a IN (4, 5)', 'ib', false),
	('SELECT id, a, b FROM ord_asc WHERE a > 990 AND b IN (lpad(''5'', 300, ''-''), lpad(''1'', 300, ''-''))', 'ib', false),
	('SELECT id, a, b FROM ord_asc WHERE a < ANY(''{5,NULL,2}'')', 'ib', false),
	('SELECT id, a, b FROM ord_asc WHERE a >= ANY(''{995,998}'') AND b <= ANY(''{-1,-9}''::text[])', 'ib', false),
	('SELECT id, a, b FROM ord_desc WHERE a > ANY(''{995,998}'') AND a IN (996, 999, 1)', 'ib', false),
	('SELECT id, a, b FROM ord_desc WHERE a <= ANY(''{2,4}'')', 'ib', false)) v(q, m, o);
SELECT fr_explain('SELECT a, right(b, 3) AS rb FROM ord_asc WHERE a IN (7, 100, 3) ORDER BY a, b');
SELECT * FROM fr_cursor_check('SELECT a, right(b, 3) AS rb FROM ord_asc WHERE a IN (7, 100, 3) ORDER BY a, b');
SELECT q, (mj_check(q)).*
  FROM unnest(ARRAY[
	'SELECT l.k, l.x, r.y FROM mj_l l JOIN mj_r r ON l.k = r.k WHERE r.k IN (5, 100, 7, 499)',
	'SELECT l.k, l.x, r.y FROM mj_l l JOIN mj_r r ON l.k = r.k WHERE r.k IN (5, 100, 7, 499) AND l.k IN (100, 5, 6)']) q;

-- a non-C (ICU) collation: the index orders by the column's collation
CREATE TABLE ord_icu (id int, t text COLLATE "und-x-icu");
CREATE INDEX ord_icu_t ON ord_icu USING fractal (t) WITH (buffer_pages = 4);
INSERT INTO ord_icu
SELECT i, CASE WHEN i % 37 = 0 THEN NULL
			   ELSE chr(65 + (i * 7) % 26 + 32 * (i % 2)) || chr(97 + (i * 11) % 26) || (i % 10) END
  FROM generate_series(1, 3000) i;
ANALYZE ord_icu;
SELECT q, (fr_check(q, m, o)).*
  FROM (VALUES
	('SELECT t AS v FROM ord_icu ORDER BY t', 'i', true),
	('SELECT t AS v FROM ord_icu ORDER BY t DESC', 'i', true),
	('SELECT t AS v FROM ord_icu WHERE t >= ''b'' AND t < ''D'' ORDER BY t', 'i', true),
	('SELECT id, t FROM ord_icu WHERE t < ''M''', 'ib', false),
	('SELECT id, t FROM ord_icu WHERE t = ''Aa0''', 'ib', false)) v(q, m, o);

-- an open index scan keeps returning exactly its snapshot's rows, forward and
-- then backward, while its own transaction inserts enough rows to flush
-- buffers and split leaves and nodes under it
CREATE TABLE ord_live (id int, a int, b text);
CREATE INDEX ord_live_ab ON ord_live USING fractal (a, b) WITH (buffer_pages = 4);
INSERT INTO ord_live SELECT i, (i * 7919) % 1000, lpad((i % 17)::text, 200, '-')
  FROM generate_series(1, 4000) i;
ANALYZE ord_live;
CREATE FUNCTION ord_live_check(OUT fwd_ok boolean, OUT bwd_ok boolean, OUT leaves_grew boolean,
							   OUT nrows int)
LANGUAGE plpgsql AS $f$
DECLARE
	c refcursor;
	r record;
	expected text[];
	got text[] := '{}';
	back text[] := '{}';
	leaves0 bigint;
	p jsonb;
BEGIN
	PERFORM fr_set_mode('s');
	SELECT array_agg((a, right(b, 3))::text ORDER BY a, b) INTO expected FROM ord_live;
	leaves0 := (SELECT leaf_pages FROM fractal_stats('ord_live_ab'));
	PERFORM fr_set_mode('i');
	IF NOT fr_plan_ok('SELECT a, right(b, 3) AS rb FROM ord_live ORDER BY a, b', 'Index Scan', true) THEN
		RAISE WARNING 'ord_live_check: no fractal index scan';
	END IF;
	OPEN c SCROLL FOR EXECUTE 'SELECT a, right(b, 3) AS rb FROM ord_live ORDER BY a, b';
	FOR i IN 1..1500 LOOP
		FETCH c INTO r;
		got := got || (r.a, r.rb)::text;
	END LOOP;
	INSERT INTO ord_live SELECT i, (i * 7919) % 1000, lpad((i % 17)::text, 200, '-')
	  FROM generate_series(4001, 12000) i;
	LOOP
		FETCH c INTO r;
		EXIT WHEN NOT FOUND;
		got := got || (r.a, r.rb)::text;
	END LOOP;
	LOOP
		FETCH PRIOR FROM c INTO r;
		EXIT WHEN NOT FOUND;
		back := back || (r.a, r.rb)::text;
	END LOOP;
	CLOSE c;
	fwd_ok := got = expected;
	bwd_ok := back = (SELECT array_agg(e ORDER BY o DESC) FROM unnest(expected) WITH ORDINALITY u(e, o));
	leaves_grew := (SELECT leaf_pages FROM fractal_stats('ord_live_ab')) > leaves0;
	nrows := cardinality(got);
END
$f$;
SELECT * FROM ord_live_check();
SELECT (fr_check('SELECT (a, b)::ord_pair AS v FROM ord_live ORDER BY a, b', 'i', true)).*;

RESET search_path;
DROP SCHEMA fr_ordering CASCADE;
