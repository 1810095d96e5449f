--
-- leaf_filter: per-leaf key filters (format 4, src/README.md section 3d).
-- An equality lookup of a key a leaf's filter rules out does not read the
-- leaf.  Every lookup here, of keys present and absent, through the index
-- equals a seqscan: with roomy filters and with tiny ones (many false
-- positives), after in-place merges, leaf splits, compressed leaves, DELETE
-- + VACUUM, for int8, text and multi-column keys, many duplicates of one
-- key across leaves, INSERT ... ON CONFLICT on a unique index, and filter
-- pages of two layouts in one index (partition_children changed).  The
-- filter pages exist, fractal_check verifies every leaf entry against its
-- leaf's filter, and the counters show lookups that skipped a leaf.
--
SET client_min_messages = warning;
CREATE SCHEMA fr_lfilter;
SET search_path = fr_lfilter, public;
SET max_parallel_workers_per_gather = 0;
CREATE EXTENSION IF NOT EXISTS pageinspect;

\i test/sql/check_functions.sql
\i test/sql/node_buffers.sql

-- does the plan of q scan index idx?
CREATE FUNCTION lf_plan_uses(q text, idx text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		IF l ~ ('(using|on) ' || idx || '( |$)') THEN
			RETURN true;
		END IF;
	END LOOP;
	RETURN false;
END
$$;

-- keys whose lookups through the index (plain index scan, then bitmap scan)
-- differ from a seqscan's; the plans are checked to scan the index
CREATE FUNCTION lf_diff(tbl text, col text, idx text, keys text[]) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	k text;
	m text;
	q text;
	want bigint;
	got bigint;
	bad text[] := '{}';
BEGIN
	FOREACH k IN ARRAY keys LOOP
		q := format('SELECT count(*) * 1000003 + coalesce(sum(hashtext(t::text)), 0) FROM %s t WHERE %s = %L',
					tbl, col, k);
		PERFORM fr_set_mode('s');
		EXECUTE q INTO want;
		FOREACH m IN ARRAY ARRAY['i', 'b'] LOOP
			PERFORM fr_set_mode(m);
			IF NOT lf_plan_uses(q, idx) THEN
				bad := bad || ('plan ' || m || ':' || k);
			END IF;
			EXECUTE q INTO got;
			IF got IS DISTINCT FROM want THEN
				bad := bad || (m || ':' || k);
			END IF;
		END LOOP;
	END LOOP;
	PERFORM fr_set_mode('s'), set_config('enable_indexscan', 'on', true),
			set_config('enable_bitmapscan', 'on', true);
	RETURN bad;
END
$$;

-- int8 keys, random order, small buffers: many flushes into leaves, some
-- merged in place (the filter gets the new keys), some splitting leaves
CREATE TABLE lf8 (id int, k int8, k2 int8);	-- k2 = k, indexed apart
CREATE INDEX lf8_k ON lf8 USING fractal (k) WITH (buffer_pages = 4, partition_children = 4);
CREATE INDEX lf8_tiny ON lf8 USING fractal (k2)
	WITH (buffer_pages = 4, partition_children = 4, filter_bytes = 128);
INSERT INTO lf8 SELECT g, k, k FROM (SELECT g, (g::int8 * 2654435761) % 1000003 * 2 AS k
	FROM generate_series(1, 30000) g) s;
INSERT INTO lf8 SELECT g, k, k FROM (SELECT g, (g::int8 * 2654435761) % 1000003 * 2 AS k
	FROM generate_series(30001, 60000) g) s;
SELECT fr_leaf_filter_pages('lf8_k') > 0 AS k_has_filters, fr_leaf_filter_pages('lf8_tiny') > 0 AS tiny_has_filters;
-- every partition has its page: one split off another gets its page (with
-- copies of the slots of its leaves) at once, not at its first leaf write
SELECT partitions > 8 AS many_partitions, with_filter = partitions AS every_partition_filtered
  FROM fr_level1_partitions('lf8_k');
-- fractal_stats / fractal_level_stats (extension 1.2) count those pages in
-- filter_pages, at level 1, and not as nodes: against the raw pages
SELECT s.filter_pages = fr_leaf_filter_pages('lf8_k') AS stats_filter_pages,
	   s.node_pages = (SELECT count(*) FROM fr_page_opaque('lf8_k') WHERE flags & 4 <> 0)
		 AS stats_node_pages,
	   (SELECT sum(filter_pages) FROM fractal_level_stats('lf8_k')) = s.filter_pages
		 AS level_filter_pages,
	   (SELECT filter_pages FROM fractal_level_stats('lf8_k') WHERE level = 1) = s.filter_pages
		 AS all_at_level_1,
	   (SELECT sum(nodes) FROM fractal_level_stats('lf8_k') WHERE level > 0) = s.node_pages
		 AS level_nodes
  FROM fractal_stats('lf8_k') s;
SELECT fractal_check('lf8_k', true), fractal_check('lf8_tiny', true);

-- present keys (even), absent keys (odd), through each index
SELECT fractal_counters_reset();
SET enable_seqscan = off;
SELECT lf_diff('lf8', 'k', 'lf8_k',
	   (SELECT array_agg(((g::int8 * 2654435761) % 1000003 * 2 + (g % 2))::text)
		  FROM generate_series(1, 60000, 97) g)) AS k_mismatches;
SELECT value > 0 AS probed FROM fractal_counters() WHERE name = 'leaf_filter_probes';
SELECT value > 0 AS skipped FROM fractal_counters() WHERE name = 'leaf_filter_skips';
SELECT value > 0 AS chain_skipped FROM fractal_counters() WHERE name = 'leaf_filter_chain_skips';
SELECT height >= 2 AS has_nonroot_level1 FROM fractal_stats('lf8_k');
SELECT lf_diff('lf8', 'k2', 'lf8_tiny',
	   (SELECT array_agg(((g::int8 * 2654435761) % 1000003 * 2 + (g % 2))::text)
		  FROM generate_series(3, 60000, 89) g)) AS tiny_mismatches;
RESET enable_seqscan;

-- DELETE + VACUUM (stale bits are only false positives), more inserts,
-- then the same comparison
DELETE FROM lf8 WHERE id % 3 = 0;
VACUUM lf8;
INSERT INTO lf8 SELECT g, k, k FROM (SELECT g, (g::int8 * 2654435761) % 1000003 * 2 + 1 AS k
	FROM generate_series(1, 20000) g) s;
SELECT fractal_check('lf8_tiny', true);
SELECT lf_diff('lf8', 'k2', 'lf8_tiny',
	   (SELECT array_agg(((g::int8 * 2654435761) % 1000003 * 2 + (g % 2))::text)
		  FROM generate_series(5, 60000, 83) g)) AS after_vacuum_mismatches;

-- one key repeated across many leaves: every copy is found
INSERT INTO lf8 SELECT 100000 + g, 424242, 424242 FROM generate_series(1, 3000) g;
INSERT INTO lf8 SELECT g, k, k FROM (SELECT g, (g::int8 * 7919) % 1000003 * 2 AS k
	FROM generate_series(1, 20000) g) s;
SELECT lf_diff('lf8', 'k2', 'lf8_tiny', ARRAY['424242', '424241', '424243']) AS dup_mismatches;
SELECT fractal_check('lf8_tiny', true);

-- everything gone: VACUUM frees leaves (and a partition's filter page with
-- its last leaf); the index still answers and checks
SELECT fr_leaf_filter_pages('lf8_tiny') AS lf_before \gset
DELETE FROM lf8 WHERE k2 <> 424242;
VACUUM lf8;
SELECT fr_leaf_filter_pages('lf8_tiny') < :lf_before AS filter_pages_freed;
SELECT fractal_check('lf8_tiny', true);
SELECT lf_diff('lf8', 'k2', 'lf8_tiny', ARRAY['424242', '2', '4']) AS emptied_mismatches;

-- text keys, compressed leaves, and a two-column index looked up by its
-- first column and by both
CREATE TABLE lft (id int, t text, b int);
CREATE INDEX lft_t ON lft USING fractal (t) WITH (buffer_pages = 4, compression = zstd);
CREATE INDEX lft_tb ON lft USING fractal (t, b) WITH (buffer_pages = 4, filter_bytes = 256);
INSERT INTO lft SELECT g, md5(g::text), g % 7 FROM generate_series(1, 40000) g;
SELECT fr_leaf_filter_pages('lft_t') > 0 AS t_has_filters, fr_leaf_filter_pages('lft_tb') > 0 AS tb_has_filters;
SELECT fractal_check('lft_t', true), fractal_check('lft_tb', true);
SET enable_seqscan = off;
SELECT lf_diff('lft', 't', 'lft_t',
	   (SELECT array_agg(md5((g * 3)::text)) FROM generate_series(1, 25000, 37) g)) AS t_mismatches;
DROP INDEX lft_t;
SELECT lf_diff('lft', 't', 'lft_tb',
	   (SELECT array_agg(md5((g * 3)::text)) FROM generate_series(2, 25000, 41) g)) AS tb_mismatches;
SELECT count(*) FROM lft WHERE t = md5('12345') AND b = 12345 % 7;
SELECT count(*) FROM lft WHERE t = md5('12345') AND b = 12345 % 7 + 1;
SELECT count(*) FROM lft WHERE t = md5('99999') AND b = 1;
RESET enable_seqscan;

-- a unique index under INSERT ... ON CONFLICT DO NOTHING: repeats are
-- found (in leaves too), new keys go in
CREATE TABLE lfu (id int, k text);
CREATE UNIQUE INDEX lfu_k ON lfu USING fractal (k) WITH (buffer_pages = 4);
INSERT INTO lfu SELECT g, md5(g::text) FROM generate_series(1, 20000) g ON CONFLICT DO NOTHING;
INSERT INTO lfu SELECT g, md5((g % 25000)::text) FROM generate_series(15001, 40000) g
	ON CONFLICT (k) DO NOTHING;
SELECT count(*) AS nrows, count(DISTINCT k) AS nkeys FROM lfu;
SELECT fr_leaf_filter_pages('lfu_k') > 0 AS u_has_filters, fractal_check('lfu_k', true);
INSERT INTO lfu VALUES (0, md5('7'));
INSERT INTO lfu VALUES (0, md5('24999'));

-- CREATE INDEX on a filled table writes the leaf filters at once (plain
-- and compressed leaves); lookups through them equal a seqscan and skip
CREATE TABLE lfb (id int, k int8);
INSERT INTO lfb SELECT g, (g::int8 * 2654435761) % 1000003 * 2 FROM generate_series(1, 50000) g;
CREATE INDEX lfb_k ON lfb USING fractal (k);
CREATE INDEX lfb_z ON lfb USING fractal ((k + 0)) WITH (compression = zstd);
SELECT fr_leaf_filter_pages('lfb_k') > 0 AS built_with_filters,
	   fr_leaf_filter_pages('lfb_z') > 0 AS z_built_with_filters;
SELECT fractal_check('lfb_k', true), fractal_check('lfb_z', true);
SELECT fractal_counters_reset();
SET enable_seqscan = off;
SELECT lf_diff('lfb', 'k', 'lfb_k',
	   (SELECT array_agg(((g::int8 * 2654435761) % 1000003 * 2 + (g % 2))::text)
		  FROM generate_series(1, 50000, 101) g)) AS built_mismatches;
SELECT lf_diff('lfb', '(k + 0)', 'lfb_z',
	   (SELECT array_agg(((g::int8 * 2654435761) % 1000003 * 2 + (g % 2))::text)
		  FROM generate_series(2, 50000, 103) g)) AS z_built_mismatches;
RESET enable_seqscan;
SELECT value > 0 AS built_skipped FROM fractal_counters() WHERE name = 'leaf_filter_skips';
-- and inserts after the build keep them right
INSERT INTO lfb SELECT g, (g::int8 * 7919) % 1000003 * 2 + 1 FROM generate_series(1, 30000) g;
SELECT fractal_check('lfb_k', true), fractal_check('lfb_z', true);
-- filter_bytes = 0 stops new leaf filter pages, but the existing ones are
-- still used by lookups, so inserts must keep maintaining them
ALTER INDEX lfb_k SET (filter_bytes = 0);
INSERT INTO lfb SELECT 100000 + g, (g::int8 * 104729) % 1000003 * 2 + 1 FROM generate_series(1, 30000) g;
SELECT fractal_check('lfb_k', true);
SET enable_seqscan = off;
SELECT lf_diff('lfb', 'k', 'lfb_k',
	   (SELECT array_agg(((g::int8 * 104729) % 1000003 * 2 + 1 + (g % 3 = 0)::int)::text)
		  FROM generate_series(1, 30000, 37) g)) AS filters_off_mismatches;
RESET enable_seqscan;

-- filter pages keep the layout they were made with (src/README.md 3d):
-- after partition_children changes, new pages get the new layout, old ones
-- stay valid, leaves beyond an old page's slots are read, never skipped,
-- and lookups still equal a seqscan.  fr_lfilter_layouts lists each
-- layout as nslots x slot_bytes + chain_bytes (u16s at bytes 24, 26 and
-- 30 of the page).
CREATE FUNCTION fr_lfilter_layouts(idx regclass) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(DISTINCT fr_u16(p, 24) || 'x' || fr_u16(p, 26) || '+' || fr_u16(p, 30), ' ')
	  FROM fr_page_opaque(idx) o,
		   LATERAL (SELECT get_raw_page(idx::text, o.blkno::int) AS p) r
	 WHERE o.special = 8176 AND o.flags & 512 <> 0
$$;
CREATE TABLE lfp (id int, k int8);
CREATE INDEX lfp_k ON lfp USING fractal (k) WITH (buffer_pages = 4, partition_children = 4);
INSERT INTO lfp SELECT g, (g::int8 * 2654435761) % 1000003 * 2 FROM generate_series(1, 30000) g;
SELECT fr_lfilter_layouts('lfp_k') AS layouts_at_4;
ALTER INDEX lfp_k SET (partition_children = 16);
INSERT INTO lfp SELECT g, (g::int8 * 2654435761) % 1000003 * 2 FROM generate_series(30001, 200000) g;
SELECT fr_lfilter_layouts('lfp_k') AS layouts_after_16;
SELECT fractal_check('lfp_k', true);
SET enable_seqscan = off;
SELECT lf_diff('lfp', 'k', 'lfp_k',
	   (SELECT array_agg(((g::int8 * 2654435761) % 1000003 * 2 + (g % 2))::text)
		  FROM generate_series(1, 200000, 331) g)) AS pc16_mismatches;
RESET enable_seqscan;
ALTER INDEX lfp_k SET (partition_children = 2);
INSERT INTO lfp SELECT g, (g::int8 * 7919) % 1000003 * 2 + 1 FROM generate_series(1, 30000) g;
SELECT fractal_check('lfp_k', true);
SET enable_seqscan = off;
SELECT lf_diff('lfp', 'k', 'lfp_k',
	   (SELECT array_agg(((g::int8 * 7919) % 1000003 * 2 + 1 + (g % 3 = 0)::int)::text)
		  FROM generate_series(1, 30000, 53) g)) AS pc2_mismatches;
RESET enable_seqscan;

-- an index with filters off keeps no leaf filter pages
CREATE TABLE lfn (k int8);
CREATE INDEX lfn_k ON lfn USING fractal (k) WITH (buffer_pages = 4, filter_bytes = 0);
INSERT INTO lfn SELECT (g::int8 * 2654435761) % 1000003 FROM generate_series(1, 30000) g;
SELECT fr_leaf_filter_pages('lfn_k') AS no_filter_pages;

DROP SCHEMA fr_lfilter CASCADE;
