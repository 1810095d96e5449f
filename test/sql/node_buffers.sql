-- Test helpers (TAP tests 001, 002, 006, 007, 009; sql/leaf_filter.sql,
-- sql/differential.sql):
-- the buffer pages of every internal node
-- of a fractal index, read from the raw pages with pageinspect, since
-- fractal_stats / fractal_level_stats only give totals per level.
--
--   fr_node_buffers(index regclass, root_only boolean DEFAULT false)
--     -> one row per internal node reachable from the root:
--        blkno, level, children, partitions, buffer_pages, budget
--
-- buffer_pages is the sum of chain_pages over the node's partition-start
-- items, i.e. what fr_node_buffer_pages() compares with the budget; budget
-- is fr_node_budget(): max(4, min(buffer_pages option,
-- max(ceil(children * pct / 100), root spread))), pct being buffer_percent, or at least 60
-- (FR_UPPER_BUFFER_PERCENT) above level 1 once the index has at least a
-- quarter of shared_buffers' blocks (fr_index_large; the server compares
-- a cached size that can lag, so its budget is never above this one);
-- the root above level 1 gets at least 2 pages per partition
-- (fr_root_spread; the server gives it that only while not large, this
-- mirror always, so again never below the server's).
--
-- Layout read here (src/fractal.h, src/README.md section 3):
--   page header 24 bytes, line pointers from byte 24 (4 bytes each: offset
--   in bits 0-14); special area at pd_special (u16 at byte 16; the last 16
--   bytes on node pages): link u32, level u16 at +4, flags u16 at +6
--   (FR_NODE = 4); metapage contents at byte 24:
--   magic, version, root (byte 32), height (byte 36); node item: child u32,
--   chain_tail u32, chain_pages u16 (+8), leaf filter page high half u16
--   (+10), low half u16 (+14), flags u16 (+12, PART_START = 1).
-- Each page is copied under its buffer share lock, but pages are read one
-- at a time: the result is exact only while the index is not modified.
-- Needs: CREATE EXTENSION pageinspect (superuser).

CREATE FUNCTION fr_u32(p bytea, o int) RETURNS int8 LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT get_byte(p, o)::int8 | (get_byte(p, o + 1)::int8 << 8)
		 | (get_byte(p, o + 2)::int8 << 16) | (get_byte(p, o + 3)::int8 << 24)
$$;

CREATE FUNCTION fr_u16(p bytea, o int) RETURNS int LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT get_byte(p, o) | (get_byte(p, o + 1) << 8)
$$;

CREATE FUNCTION fr_node_buffers(idx regclass, root_only boolean DEFAULT false,
	OUT blkno int8, OUT level int, OUT children int, OUT partitions int,
	OUT buffer_pages int8, OUT budget int)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
	relname text := idx::text;
	opt_pages int;
	opt_percent int;
	large boolean;
	meta bytea;
	root int8;
	todo int8[];
	p bytea;
	nitems int;
	lp int8;
	off int;
	i int;
BEGIN
	SELECT coalesce(max(option_value) FILTER (WHERE option_name = 'buffer_pages'), '256')::int,
		   coalesce(max(option_value) FILTER (WHERE option_name = 'buffer_percent'), '10')::int
	  INTO opt_pages, opt_percent
	  FROM pg_class c LEFT JOIN LATERAL pg_options_to_table(c.reloptions) ON true
	 WHERE c.oid = idx;
	SELECT pg_relation_size(idx) / 8192 >= setting::int8 / 4 INTO large
	  FROM pg_settings WHERE name = 'shared_buffers';
	meta := get_raw_page(relname, 0);
	IF fr_u32(meta, 24) <> x'46524354'::int8 THEN
		RAISE EXCEPTION 'fr_node_buffers: % has no fractal metapage', relname;
	END IF;
	root := fr_u32(meta, 32);
	todo := ARRAY[root];
	WHILE cardinality(todo) > 0 LOOP
		blkno := todo[1];
		todo := todo[2:];
		p := get_raw_page(relname, blkno);
		IF fr_u16(p, fr_u16(p, 16) + 6) & 4 = 0 THEN
			CONTINUE;			-- a leaf (root of a tiny index)
		END IF;
		level := fr_u16(p, 8180);
		nitems := (fr_u16(p, 12) - 24) / 4;
		children := nitems;
		partitions := 0;
		buffer_pages := 0;
		FOR i IN 0 .. nitems - 1 LOOP
			lp := fr_u32(p, 24 + 4 * i);
			off := (lp & 32767)::int;
			IF fr_u16(p, off + 12) & 1 <> 0 THEN
				partitions := partitions + 1;
				buffer_pages := buffer_pages + fr_u16(p, off + 8);
			END IF;
			IF level > 1 AND NOT root_only THEN
				todo := todo || fr_u32(p, off);
			END IF;
		END LOOP;
		budget := greatest(4, least(opt_pages, greatest((children *
			CASE WHEN level > 1 AND large THEN greatest(opt_percent, 60)
				 ELSE opt_percent END + 99) / 100,
			CASE WHEN blkno = root AND level > 1 THEN 2 * partitions ELSE 0 END)));
		RETURN NEXT;
		EXIT WHEN root_only;
	END LOOP;
END
$$;

-- fr_level1_partitions(index regclass) -> partitions, with_filter: the
-- partitions (PART_START items, flag 1 at item + 12) of the index's level-1
-- nodes, and how many of them name a leaf filter page (format 4: high half
-- at item + 10, low half at item + 14, 0 = none; src/README.md 3d).
CREATE FUNCTION fr_level1_partitions(idx regclass,
	OUT partitions int, OUT with_filter int)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
	relname text := idx::text;
	todo int8[] := ARRAY[fr_u32(get_raw_page(idx::text, 0), 32)];
	p bytea;
	off int;
	i int;
BEGIN
	partitions := 0;
	with_filter := 0;
	WHILE cardinality(todo) > 0 LOOP
		p := get_raw_page(relname, todo[1]::int);
		todo := todo[2:];
		CONTINUE WHEN fr_u16(p, fr_u16(p, 16) + 6) & 4 = 0;	-- a leaf
		FOR i IN 0 .. (fr_u16(p, 12) - 24) / 4 - 1 LOOP
			off := (fr_u32(p, 24 + 4 * i) & 32767)::int;
			IF fr_u16(p, 8180) > 1 THEN
				todo := todo || fr_u32(p, off);
			ELSIF fr_u16(p, off + 12) & 1 <> 0 THEN
				partitions := partitions + 1;
				IF fr_u16(p, off + 10) <> 0 OR fr_u16(p, off + 14) <> 0 THEN
					with_filter := with_filter + 1;
				END IF;
			END IF;
		END LOOP;
	END LOOP;
END
$$;

-- fr_page_opaque(index regclass) -> blkno, special, level, flags of every
-- page but the metapage: pd_special (u16 at byte 16) and, from the opaque
-- data at the start of the special area (a buffer page's key filter
-- follows it there), level (+4) and flags (+6).
CREATE FUNCTION fr_page_opaque(idx regclass,
	OUT blkno int8, OUT special int, OUT level int, OUT flags int)
RETURNS SETOF record LANGUAGE sql AS $$
	SELECT b, sp, fr_u16(p, sp + 4), fr_u16(p, sp + 6)
	  FROM generate_series(1, pg_relation_size(idx) / 8192 - 1) b,
		   LATERAL (SELECT get_raw_page(idx::text, b::int) AS p) r,
		   LATERAL (SELECT fr_u16(p, 16) AS sp) s
$$;

-- fr_leaf_filter_pages(index regclass) -> the number of leaf filter pages
-- (format 4, src/README.md section 3d): pages whose special area is just
-- the 16-byte opaque data, with FR_LFILTERS (512) in its flags.
CREATE FUNCTION fr_leaf_filter_pages(idx regclass) RETURNS int8 LANGUAGE sql AS $$
	SELECT count(*) FROM fr_page_opaque(idx)
	 WHERE special = 8176 AND flags & 512 <> 0
$$;

-- fr_chain_page_kinds(index regclass) -> level, sorted, pages: the buffer
-- (chain) pages (FR_CHAIN = 8) of the index by level and by FR_SORTED
-- (128).  Freed pages are FR_FREE only, so they are not counted.
CREATE FUNCTION fr_chain_page_kinds(idx regclass,
	OUT level int, OUT sorted boolean, OUT pages int8)
RETURNS SETOF record LANGUAGE sql AS $$
	SELECT level, flags & 128 <> 0, count(*) FROM fr_page_opaque(idx)
	 WHERE flags & 8 <> 0
	 GROUP BY 1, 2 ORDER BY 1, 2
$$;
