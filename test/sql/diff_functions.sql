-- Helpers shared by the differential tests (sql/differential.sql,
-- sql/vacuum.sql): included with \i from the repository root, where
-- pg_regress runs.

-- Run query q with seqscan only, index scan only (plain, then index-only
-- where the planner can use one) and bitmap scan only;
-- return NULL when all agree and each forced plan used a fractal index
-- (the plain index scan: index 'idx', or one of a '|'-separated list; the
-- bitmap scan: any index whose name starts with the table's, all of which
-- are fractal here), otherwise a
-- description of the problem.
CREATE FUNCTION fr_diff_check(q text, idx text, want_indexscan bool)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r_seq text; r_idx text; r_ios text; r_bm text; plan text; line text;
BEGIN
	PERFORM set_config('enable_seqscan', 'on', true);
	PERFORM set_config('enable_indexscan', 'off', true);
	PERFORM set_config('enable_bitmapscan', 'off', true);
	EXECUTE q INTO r_seq;

	PERFORM set_config('enable_seqscan', 'off', true);
	PERFORM set_config('enable_indexscan', 'on', true);
	PERFORM set_config('enable_indexonlyscan', 'off', true);
	plan := '';
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		plan := plan || line || E'\n';
	END LOOP;
	IF want_indexscan AND NOT EXISTS (
		SELECT FROM unnest(string_to_array(idx, '|')) i
		 WHERE position('Index Scan using ' || i || ' ' IN plan) > 0
			OR position('Index Scan Backward using ' || i || ' ' IN plan) > 0) THEN
		RETURN 'index scan not used: ' || q || E'\n' || plan;
	END IF;
	EXECUTE q INTO r_idx;

	-- index-only scans where the planner can use one (values from the index)
	PERFORM set_config('enable_indexonlyscan', 'on', true);
	EXECUTE q INTO r_ios;

	PERFORM set_config('enable_indexscan', 'off', true);
	PERFORM set_config('enable_bitmapscan', 'on', true);
	plan := '';
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		plan := plan || line || E'\n';
	END LOOP;
	IF position('Bitmap Index Scan on ' || split_part(idx, '_', 1) || '_' IN plan) = 0 THEN
		RETURN 'bitmap scan not used: ' || q || E'\n' || plan;
	END IF;
	EXECUTE q INTO r_bm;

	IF r_idx IS DISTINCT FROM r_seq THEN
		RETURN 'index scan differs: ' || q || ' seq=' || coalesce(r_seq, 'NULL') || ' idx=' || coalesce(r_idx, 'NULL');
	END IF;
	IF r_ios IS DISTINCT FROM r_seq THEN
		RETURN 'index-only scan differs: ' || q || ' seq=' || coalesce(r_seq, 'NULL') || ' ios=' || coalesce(r_ios, 'NULL');
	END IF;
	IF r_bm IS DISTINCT FROM r_seq THEN
		RETURN 'bitmap scan differs: ' || q || ' seq=' || coalesce(r_seq, 'NULL') || ' bitmap=' || coalesce(r_bm, 'NULL');
	END IF;
	RETURN NULL;
END $$;

-- Generated queries over table tbl with indexes (a) and (b, a).  Each
-- query returns one text value: an order-independent digest for filters,
-- the ordered key list for ORDER BY ... LIMIT.  The third column says
-- whether a plain index scan is expected.
CREATE FUNCTION fr_diff_queries(tbl text, n int)
RETURNS TABLE (q text, idx text, want_indexscan bool) LANGUAGE plpgsql AS $$
DECLARE
	i int; k int8; k2 int8; kb int; agg text;
	ia text := tbl || '_a'; iba text := tbl || '_ba';
BEGIN
	agg := 'SELECT count(*) || '':'' || coalesce(sum(id), 0) || '':'' || coalesce(sum(hashint4(id)), 0) FROM ' || tbl || ' WHERE ';
	FOR i IN 1..n LOOP
		-- a key that exists (half the time) or a random one
		IF random() < 0.5 THEN
			EXECUTE 'SELECT a FROM ' || tbl || ' WHERE id = $1' INTO k USING 1 + (random() * 199999)::int;
		END IF;
		IF k IS NULL OR random() < 0.5 THEN
			k := (random() * 1e12)::int8;
		END IF;
		k2 := k + (random() * 1e10)::int8;
		kb := (random() * 1000)::int;
		CASE i % 21
			WHEN 0 THEN q := agg || 'a = ' || k; idx := ia; want_indexscan := true;
			WHEN 1 THEN q := agg || 'a < ' || (k / 100); idx := ia; want_indexscan := true;
			WHEN 2 THEN q := agg || 'a <= ' || (k / 100); idx := ia; want_indexscan := true;
			WHEN 3 THEN q := agg || 'a > ' || (1000000000000 - k / 100); idx := ia; want_indexscan := true;
			WHEN 4 THEN q := agg || 'a >= ' || (1000000000000 - k / 100); idx := ia; want_indexscan := true;
			WHEN 5 THEN q := agg || 'a BETWEEN ' || k || ' AND ' || k2; idx := ia; want_indexscan := true;
			WHEN 6 THEN q := agg || 'a IN (' || k || ', ' || k2 || ', ' || (k % 100000) || ')'; idx := ia; want_indexscan := true;
			WHEN 7 THEN q := 'SELECT array_agg(a)::text FROM (SELECT a FROM ' || tbl || ' WHERE a >= ' || k || ' ORDER BY a LIMIT 25) s'; idx := ia; want_indexscan := true;
			WHEN 8 THEN q := 'SELECT array_agg(a)::text FROM (SELECT a FROM ' || tbl || ' WHERE a <= ' || k || ' ORDER BY a DESC LIMIT 25) s'; idx := ia; want_indexscan := true;
			WHEN 9 THEN q := agg || 'b = ' || kb || ' AND a > ' || k; idx := iba; want_indexscan := true;
			WHEN 10 THEN q := agg || 'b BETWEEN ' || kb || ' AND ' || (kb + 3) || ' AND a < ' || k; idx := iba; want_indexscan := true;
			WHEN 11 THEN q := 'SELECT array_agg(row(b, a))::text FROM (SELECT b, a FROM ' || tbl || ' WHERE b = ' || kb || ' ORDER BY b DESC, a DESC LIMIT 20) s'; idx := iba; want_indexscan := true;
			WHEN 12 THEN q := 'SELECT array_agg(row(b, a))::text FROM (SELECT b, a FROM ' || tbl || ' WHERE b >= ' || kb || ' ORDER BY b, a LIMIT 30) s'; idx := iba; want_indexscan := true;
			WHEN 13 THEN q := agg || 'a IS NULL AND id % 7 = ' || (kb % 7); idx := ia; want_indexscan := true;
			WHEN 14 THEN q := agg || 'b IS NULL AND a > ' || k; idx := iba; want_indexscan := true;
			WHEN 16 THEN q := 'SELECT array_agg(a)::text FROM (SELECT a FROM ' || tbl || ' WHERE a = ANY(''{' || k2 || ',' || k || ',NULL,' || (k % 100000) || ',' || k || '}'') ORDER BY a DESC LIMIT 25) s'; idx := ia; want_indexscan := true;
			WHEN 17 THEN q := 'SELECT array_agg(row(b, a))::text FROM (SELECT b, a FROM ' || tbl || ' WHERE b IN (' || kb || ', ' || (kb + 7) || ', ' || (kb / 2) || ') ORDER BY b, a LIMIT 40) s'; idx := iba; want_indexscan := true;
			WHEN 18 THEN q := agg || 'b IN (' || kb || ', ' || (kb + 1) || ') AND a IN (' || k || ', ' || (k % 100000) || ', ' || k2 || ')'; idx := iba || '|' || ia; want_indexscan := true;
			WHEN 19 THEN q := agg || 'b = ANY(''{' || kb || ',' || (kb + 2) || '}'') AND a > ' || k; idx := iba; want_indexscan := true;
			WHEN 20 THEN q := agg || 'a < ANY(''{' || (k / 100) || ',' || (k / 1000) || '}'') AND b > ANY(''{' || kb || ',' || (kb + 500) || '}'')'; idx := ia; want_indexscan := false;
			ELSE q := agg || 'b = ' || kb || ' AND a = ' || k; idx := iba || '|' || ia; want_indexscan := true;
		END CASE;
		RETURN NEXT;
	END LOOP;
END $$;

-- Random rows lo..hi for table tbl(id, a, b, pad): random keys with
-- duplicates and NULLs
CREATE FUNCTION fr_diff_batch(tbl text, lo int, hi int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format($q$
	INSERT INTO %I
	SELECT g,
		   CASE WHEN random() < 0.01 THEN NULL
				WHEN random() < 0.2 THEN (random() * 100000)::int8
				ELSE (random() * 1e12)::int8 END,
		   CASE WHEN random() < 0.01 THEN NULL ELSE (random() * 1000)::int4 END,
		   repeat('x', (random() * 20)::int)
	FROM generate_series(%s, %s) g$q$, tbl, lo, hi);
END $$;
