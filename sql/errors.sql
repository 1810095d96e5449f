--
-- errors: what the fractal access method refuses, and how
--
SET client_min_messages = warning;
CREATE SCHEMA fr_errors;
SET search_path = fr_errors, public;
\set VERBOSITY terse

CREATE TABLE er (id int, t text, b bytea, p point, j jsonb, a int);

-- oversize keys: incompressible 5000-byte text and bytea values
CREATE INDEX er_t ON er USING fractal (t);
INSERT INTO er (id, t) SELECT 1, string_agg(md5(i::text), '') FROM generate_series(1, 157) i;
SELECT count(*) FROM er;
-- a key just under the limit is fine, and compressible long keys are too
INSERT INTO er (id, t) VALUES (2, repeat('z', 900)), (3, repeat('ab', 5000));
INSERT INTO er (id, t) SELECT 4, string_agg(md5(i::text), '') FROM generate_series(1, 60) i;
SELECT id, length(t) FROM er ORDER BY id;
SET enable_seqscan = off;
SELECT id, length(t) FROM er WHERE t = repeat('ab', 5000);
SELECT id, length(t) FROM er WHERE t >= 'z' ORDER BY t;
RESET enable_seqscan;
-- multi-column: the whole index row counts (640 + 320 bytes of data fit
-- on their own, not together)
CREATE TABLE er_mc (t text, b bytea);
CREATE INDEX er_mc_tb ON er_mc USING fractal (t, b);
INSERT INTO er_mc SELECT string_agg(md5(i::text), ''), NULL FROM generate_series(1, 20) i;
INSERT INTO er_mc SELECT NULL, decode(string_agg(md5((-i)::text), ''), 'hex') FROM generate_series(1, 20) i;
INSERT INTO er_mc
SELECT string_agg(md5(i::text), ''), decode(string_agg(md5((-i)::text), ''), 'hex')
  FROM generate_series(1, 20) i;
SELECT count(*) FROM er_mc;
-- a bulk build meets the oversize key too
DROP INDEX er_t;
INSERT INTO er (id, t) SELECT 6, string_agg(md5(i::text), '') FROM generate_series(1, 157) i;
CREATE INDEX er_t ON er USING fractal (t);
DELETE FROM er WHERE id = 6;
CREATE TABLE er_b (b bytea);
CREATE INDEX er_b_b ON er_b USING fractal (b);
INSERT INTO er_b SELECT decode(string_agg(md5(i::text), ''), 'hex') FROM generate_series(1, 157) i;
SELECT count(*) FROM er_b;

-- bad reloptions
CREATE INDEX er_bad ON er USING fractal (a) WITH (buffer_pages = 0);
CREATE INDEX er_bad ON er USING fractal (a) WITH (buffer_pages = 3);
CREATE INDEX er_bad ON er USING fractal (a) WITH (buffer_pages = 100000);
CREATE INDEX er_bad ON er USING fractal (a) WITH (buffer_pages = 4097);
CREATE INDEX er_bad ON er USING fractal (a) WITH (buffer_pages = 'many');
CREATE INDEX er_bad ON er USING fractal (a) WITH (partition_children = 1);
CREATE INDEX er_bad ON er USING fractal (a) WITH (partition_children = 257);
CREATE INDEX er_bad ON er USING fractal (a) WITH (fillfactor = 5);
CREATE INDEX er_bad ON er USING fractal (a) WITH (fillfactor = 101);
CREATE INDEX er_bad ON er USING fractal (a) WITH (buffer_percent = 0);
CREATE INDEX er_bad ON er USING fractal (a) WITH (buffer_percent = 101);
CREATE INDEX er_bad ON er USING fractal (a) WITH (no_such_option = 1);
CREATE INDEX er_bad ON er USING fractal (a) WITH (deduplicate_items = on);
CREATE INDEX er_bad ON er USING fractal (a) WITH (filter_bytes = -1);
CREATE INDEX er_bad ON er USING fractal (a) WITH (filter_bytes = 100);
CREATE INDEX er_bad ON er USING fractal (a) WITH (filter_bytes = 8192);
-- the limits themselves are accepted
CREATE INDEX er_lim1 ON er USING fractal (a)
	WITH (buffer_pages = 4, partition_children = 2, fillfactor = 10,
		  filter_bytes = 0);
CREATE INDEX er_lim2 ON er USING fractal (a)
	WITH (buffer_pages = 4096, partition_children = 256, fillfactor = 100,
		  filter_bytes = 4096);
SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'er_lim%' ORDER BY relname;
ALTER INDEX er_lim1 SET (buffer_pages = 0);
ALTER INDEX er_lim1 SET (bogus = 1);
SELECT relname FROM pg_class WHERE relname = 'er_bad';

-- a unique index over duplicate rows (sql/unique.sql tests the rest)
CREATE UNIQUE INDEX er_bad ON er USING fractal ((1));

-- exclusion constraints work (amgettuple is all they need): a conflicting
-- key is found whether it sits in a leaf or in a node buffer (keys in a
-- scrambled order: keys in order would go to the rightmost leaf directly)
CREATE TABLE er_ex (id int, a int, EXCLUDE USING fractal (a WITH =) WITH (buffer_pages = 4));
INSERT INTO er_ex SELECT i, i * 2 FROM generate_series(1, 3000) i ORDER BY hashint4(i);
INSERT INTO er_ex SELECT i, i * 2 FROM generate_series(3001, 4000) i ORDER BY hashint4(i);
INSERT INTO er_ex VALUES (0, NULL), (0, NULL);
SELECT (SELECT count(*) FROM fractal_level_stats('er_ex_a_excl') WHERE level > 0 AND buffered_messages > 0) > 0
		AS some_buffered,
	   (SELECT leaf_pages > 1 FROM fractal_stats('er_ex_a_excl')) AS several_leaves;
INSERT INTO er_ex VALUES (-1, 2);
INSERT INTO er_ex VALUES (-1, 4000);
INSERT INTO er_ex VALUES (-1, 8000);
INSERT INTO er_ex VALUES (-1, 8001), (-2, 8001);
INSERT INTO er_ex VALUES (-1, 8002);
UPDATE er_ex SET a = 6 WHERE id = 1;
SELECT count(*), count(DISTINCT a), max(a) FROM er_ex;
-- only operators of the family can be used
ALTER TABLE er ADD CONSTRAINT er_excl EXCLUDE USING fractal (a WITH <>);

-- types without a fractal operator class
CREATE INDEX er_bad ON er USING fractal (p);
CREATE INDEX er_bad ON er USING fractal (j);
CREATE INDEX er_bad ON er USING fractal (a int4_ops, p);
-- an operator class of another access method
CREATE INDEX er_bad ON er USING fractal (a int4_minmax_ops);
-- a fractal operator class that does not fit the column type
CREATE INDEX er_bad ON er USING fractal (t int4_ops);

-- fractal_stats, fractal_level_stats and fractal_check need a fractal index
CREATE INDEX er_btree ON er USING btree (a);
SELECT * FROM fractal_stats('er_btree');
SELECT * FROM fractal_level_stats('er_btree');
SELECT * FROM fractal_stats('er');
SELECT * FROM fractal_level_stats('er');
SELECT fractal_check('er');
SELECT fractal_check('er_btree');
SELECT fractal_check('er_btree', true);
SELECT fractal_check('er_ex_a_excl', true);
SELECT * FROM fractal_stats(NULL);
SELECT * FROM fractal_stats('no_such_index');

-- operators outside the operator class are not index quals
CREATE TABLE er_scan (id int, t text);
CREATE INDEX er_scan_t ON er_scan USING fractal (t);
INSERT INTO er_scan SELECT i, 'v' || i FROM generate_series(1, 500) i;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM er_scan WHERE t <> 'v42';
EXPLAIN (COSTS OFF) SELECT * FROM er_scan WHERE t LIKE 'v42%';
SELECT count(*) FROM er_scan WHERE t <> 'v42';
SELECT count(*) FROM er_scan WHERE t LIKE 'v42%';
-- index-only scans (the only column selected is the key)
EXPLAIN (COSTS OFF) SELECT t FROM er_scan WHERE t = 'v42';
RESET enable_seqscan;
RESET enable_bitmapscan;

-- fractal_check runs index expressions as the table's owner (as amcheck
-- does): this expression fails for anyone else
CREATE ROLE fr_check_owner;
CREATE FUNCTION fr_owner_only(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'fr_check_owner' THEN
        RAISE EXCEPTION 'index expression evaluated as %', current_user;
    END IF;
    RETURN $1;
END $$;
CREATE TABLE er_owned (a int);
ALTER TABLE er_owned OWNER TO fr_check_owner;
GRANT ALL ON SCHEMA fr_errors TO fr_check_owner;
SET ROLE fr_check_owner;
CREATE INDEX er_owned_f ON er_owned USING fractal (fr_owner_only(a));
INSERT INTO er_owned SELECT generate_series(1, 100);
RESET ROLE;
SELECT fractal_check('er_owned_f', true);
SELECT current_user = 'fr_check_owner' AS still_owner;
DROP TABLE er_owned;

-- fractal.wal_image_compression: auto (the default) or a method the server
-- has, set only by a superuser (as wal_compression); a bad value is refused
SET fractal.wal_image_compression = 'snappy';
SET fractal.wal_image_compression = off;
SHOW fractal.wal_image_compression;
SET fractal.wal_image_compression = pglz;
SHOW fractal.wal_image_compression;
SET fractal.wal_image_compression = on;
SELECT current_setting('fractal.wal_image_compression') IN ('zstd', 'lz4', 'pglz') AS on_is_a_method;
RESET fractal.wal_image_compression;
SHOW fractal.wal_image_compression;
SET ROLE fr_check_owner;
SET fractal.wal_image_compression = off;
RESET ROLE;

RESET search_path;
DROP SCHEMA fr_errors CASCADE;
DROP ROLE fr_check_owner;
