-- Helpers shared by the fractal regression tests (sql/features.sql,
-- sql/opclasses.sql, sql/ordering.sql), included with \i from the
-- repository root, where pg_regress runs.
--
-- fr_check(q, modes, ordered) runs the query q three times: with plain index
-- scans only (mode letter i), with bitmap scans only (mode letter b) and with
-- a sequential scan only, and returns ok = true iff
--   * every index-mode plan really scans a fractal index (and no Seq Scan),
--   * the seqscan plan uses no fractal index,
--   * the results are equal: as multisets of rows (ordered = false), or, for
--     ordered = true, as arrays of the single output column v in output order
--     (element equality is the type's own "=", so ties that print
--     differently, like 1.0 and 1.00, do not matter), and an ordered index
--     scan has no Sort node above it,
-- plus nrows, the number of rows the seqscan returned.
CREATE FUNCTION fr_plan_ok(q text, kind text, forbid_sort boolean)
RETURNS boolean LANGUAGE plpgsql AS $f$
DECLARE
	p jsonb;
	fam oid := (SELECT oid FROM pg_am WHERE amname = 'fractal');
	uses_fractal boolean;
	has_kind boolean;
	has_seq boolean;
	has_sort boolean;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON, COSTS OFF) ' || q INTO p;
	SELECT coalesce(bool_or(c.relam = fam AND n->>'Node Type' = kind), false),
		   coalesce(bool_or(c.relam = fam), false),
		   coalesce(bool_or(n->>'Node Type' = 'Seq Scan'), false),
		   coalesce(bool_or(n->>'Node Type' IN ('Sort', 'Incremental Sort')), false)
	  INTO has_kind, uses_fractal, has_seq, has_sort
	  FROM jsonb_path_query(p, 'strict $.**') AS n
	  LEFT JOIN pg_class c ON c.oid = to_regclass(n->>'Index Name')
	 WHERE jsonb_typeof(n) = 'object' AND n ? 'Node Type';
	IF kind = 'Seq Scan' THEN
		RETURN has_seq AND NOT uses_fractal;
	END IF;
	RETURN has_kind AND NOT has_seq AND NOT (forbid_sort AND has_sort);
END
$f$;

CREATE FUNCTION fr_set_mode(mode text) RETURNS void LANGUAGE sql AS $f$
	SELECT set_config('enable_seqscan', CASE WHEN mode = 's' THEN 'on' ELSE 'off' END, true),
		   set_config('enable_indexscan', CASE WHEN mode = 'i' THEN 'on' ELSE 'off' END, true),
		   set_config('enable_bitmapscan', CASE WHEN mode = 'b' THEN 'on' ELSE 'off' END, true),
		   set_config('enable_indexonlyscan', 'off', true),
		   set_config('enable_sort', 'on', true);
$f$;

CREATE FUNCTION fr_check(q text, modes text DEFAULT 'ib', ordered boolean DEFAULT false,
						 OUT ok boolean, OUT nrows bigint)
LANGUAGE plpgsql AS $f$
DECLARE
	unordered_q text := format('SELECT array_agg(s::text ORDER BY s::text) FROM (%s) s', q);
	seq_res text;
	arrtype text;
	res text;
	same boolean;
	m text;
BEGIN
	ok := true;
	PERFORM fr_set_mode('s');
	IF NOT fr_plan_ok(q, 'Seq Scan', false) THEN
		RAISE WARNING 'fr_check: seqscan plan not used for: %', q;
		ok := false;
	END IF;
	IF ordered THEN
		EXECUTE format('SELECT array_agg(s.v)::text, '
						   '(SELECT quote_ident(typname) FROM pg_type WHERE oid = pg_typeof(array_agg(s.v))), '
						   'count(*) FROM (%s) s', q)
			INTO seq_res, arrtype, nrows;
	ELSE
		EXECUTE unordered_q INTO seq_res;
		nrows := coalesce(cardinality(seq_res::text[]), 0);
	END IF;
	FOREACH m IN ARRAY string_to_array(modes, NULL) LOOP
		PERFORM fr_set_mode(m);
		IF NOT fr_plan_ok(q, CASE m WHEN 'i' THEN 'Index Scan' ELSE 'Bitmap Index Scan' END,
						  ordered AND m = 'i') THEN
			RAISE WARNING 'fr_check: % plan does not use a fractal index (or sorts) for: %',
				CASE m WHEN 'i' THEN 'index scan' ELSE 'bitmap scan' END, q;
			ok := false;
		END IF;
		IF ordered THEN
			EXECUTE format('SELECT array_agg(s.v) IS NOT DISTINCT FROM %L::%s FROM (%s) s',
						   seq_res, arrtype, q) INTO same;
		ELSE
			EXECUTE unordered_q INTO res;
			same := res IS NOT DISTINCT FROM seq_res;
		END IF;
		IF NOT same THEN
			RAISE WARNING 'fr_check: % result differs from seqscan for: %',
				CASE m WHEN 'i' THEN 'index scan' ELSE 'bitmap scan' END, q;
			ok := false;
		END IF;
	END LOOP;
	PERFORM set_config('enable_seqscan', 'on', true), set_config('enable_indexscan', 'on', true),
			set_config('enable_bitmapscan', 'on', true), set_config('enable_indexonlyscan', 'on', true);
END
$f$;

-- EXPLAIN (COSTS OFF) of q as it is planned with plain index scans only
-- (mode i) or bitmap scans only (mode b).
CREATE FUNCTION fr_explain(q text, mode text DEFAULT 'i') RETURNS SETOF text
LANGUAGE plpgsql AS $f$
DECLARE
	l text;
BEGIN
	PERFORM fr_set_mode(mode);
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		RETURN NEXT l;
	END LOOP;
	PERFORM set_config('enable_seqscan', 'on', true), set_config('enable_indexscan', 'on', true),
			set_config('enable_bitmapscan', 'on', true), set_config('enable_indexonlyscan', 'on', true);
END
$f$;
