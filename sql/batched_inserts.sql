-- Batched inserts (src/fr_pending.c): a transaction's inserts into a plain
-- fractal index wait in backend memory and are appended before commit, or
-- before this backend scans the index.  Every case below compares index
-- scans with sequential scans of the same data, inside the transaction and
-- after it, and fractal_check(heapallindexed) confirms every live row has
-- its entry.
SHOW fractal.batch_inserts;

CREATE TABLE bi (id int, k int8, t text);
CREATE INDEX bi_k ON bi USING fractal (k);
CREATE INDEX bi_t ON bi USING fractal (t);

-- index scan vs seqscan of both indexes: 'agree <rows>' or the mismatch
CREATE FUNCTION bi_compare() RETURNS text LANGUAGE plpgsql AS $$
DECLARE ik text; it text; s text;
BEGIN
  SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
  SELECT count(*) || ':' || coalesce(sum(id), 0) INTO ik FROM bi WHERE k >= -1e18;
  SELECT count(*) || ':' || coalesce(sum(id), 0) INTO it FROM bi WHERE t >= '';
  SET LOCAL enable_indexscan = off; SET LOCAL enable_seqscan = on;
  SELECT count(*) || ':' || coalesce(sum(id), 0) INTO s FROM bi;
  RETURN CASE WHEN ik = s AND it = s THEN 'agree ' || s
              ELSE 'MISMATCH k ' || ik || ' t ' || it || ' seq ' || s END;
END $$;

-- 1. rows inserted earlier in the transaction are found by its index scans
BEGIN;
INSERT INTO bi SELECT g, (g * 7919) % 10007, md5(g::text) FROM generate_series(1, 500) g;
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM bi WHERE k = 7919;
SELECT id FROM bi WHERE k = 7919;
SELECT id FROM bi WHERE t = md5('42');
SELECT bi_compare();
INSERT INTO bi SELECT g, (g * 7919) % 10007, md5(g::text) FROM generate_series(501, 1000) g;
SELECT count(*) FROM bi WHERE k BETWEEN 0 AND 5000;
COMMIT;
SELECT bi_compare();
SELECT count(*) FROM bi WHERE k BETWEEN 0 AND 5000;

-- 2. savepoints: what a rolled-back subtransaction inserted never arrives,
-- what a released one inserted does
BEGIN;
INSERT INTO bi SELECT g, g, 'a' || g FROM generate_series(2001, 2100) g;
SAVEPOINT s1;
INSERT INTO bi SELECT g, g, 'b' || g FROM generate_series(2101, 2200) g;
SAVEPOINT s2;
INSERT INTO bi SELECT g, g, 'c' || g FROM generate_series(2201, 2300) g;
RELEASE s2;
ROLLBACK TO s1;
INSERT INTO bi SELECT g, g, 'd' || g FROM generate_series(2301, 2400) g;
SAVEPOINT s3;
INSERT INTO bi SELECT g, g, 'e' || g FROM generate_series(2401, 2500) g;
RELEASE s3;
SELECT bi_compare();
COMMIT;
SELECT bi_compare();
SELECT count(*) FROM bi WHERE k BETWEEN 2001 AND 2500;
SELECT min(k), max(k) FROM bi WHERE k BETWEEN 2101 AND 2300;

-- 3. an exception block rolls back its own inserts only
DO $$
BEGIN
  INSERT INTO bi SELECT g, g, 'f' || g FROM generate_series(3001, 3050) g;
  BEGIN
    INSERT INTO bi SELECT g, g, 'g' || g FROM generate_series(3051, 3100) g;
    RAISE EXCEPTION 'undo the inner block';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  INSERT INTO bi SELECT g, g, 'h' || g FROM generate_series(3101, 3150) g;
END $$;
SELECT count(*) FROM bi WHERE k BETWEEN 3001 AND 3150;
SELECT bi_compare();

-- 4. an error aborts the transaction and its waiting entries
BEGIN;
INSERT INTO bi SELECT g, g, 'x' || g FROM generate_series(4001, 4100) g;
SELECT 1 / 0;
ROLLBACK;
SELECT count(*) FROM bi WHERE k BETWEEN 4001 AND 4100;
SELECT bi_compare();

-- 5. a trigger reading the index while the statement inserts sees the rows
-- the statement inserted before it (10 rows of part 1 are in the range too)
CREATE TABLE bi_log (id int, seen bigint);
CREATE FUNCTION bi_trig() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
  INSERT INTO bi_log SELECT NEW.id, count(*) FROM bi WHERE k BETWEEN 5001 AND 5100;
  RETURN NEW;
END $$;
CREATE TRIGGER bi_before BEFORE INSERT ON bi FOR EACH ROW
  WHEN (NEW.k BETWEEN 5001 AND 5100) EXECUTE FUNCTION bi_trig();
INSERT INTO bi SELECT g, g, 'i' || g FROM generate_series(5001, 5100) g;
SELECT count(*) AS triggers, min(seen), max(seen),
       bool_and(seen = 10 + id - 5001) AS each_saw_the_rows_before_it
  FROM bi_log;
DROP TRIGGER bi_before ON bi;
SELECT bi_compare();

-- 6. TRUNCATE, REINDEX and DROP INDEX after inserts in one transaction:
-- waiting entries go into the index before each command (a rebuild then
-- replaces them with the heap's rows)
BEGIN;
INSERT INTO bi SELECT g, g, 'j' || g FROM generate_series(6001, 6100) g;
TRUNCATE bi;
INSERT INTO bi SELECT g, g, 'k' || g FROM generate_series(6101, 6150) g;
COMMIT;
SELECT bi_compare();
SELECT fractal_check('bi_k', true), fractal_check('bi_t', true);
BEGIN;
INSERT INTO bi SELECT g, g, 'l' || g FROM generate_series(6201, 6300) g;
SAVEPOINT s;
TRUNCATE bi;
INSERT INTO bi SELECT g, g, 'm' || g FROM generate_series(6301, 6350) g;
ROLLBACK TO s;
INSERT INTO bi SELECT g, g, 'n' || g FROM generate_series(6351, 6400) g;
COMMIT;
SELECT bi_compare();
SELECT count(*) FROM bi WHERE k BETWEEN 6101 AND 6400;
BEGIN;
INSERT INTO bi SELECT g, g, 'o' || g FROM generate_series(6401, 6500) g;
REINDEX INDEX bi_k;
INSERT INTO bi SELECT g, g, 'p' || g FROM generate_series(6501, 6550) g;
COMMIT;
SELECT bi_compare();
BEGIN;
INSERT INTO bi SELECT g, g, 'q' || g FROM generate_series(6601, 6700) g;
DROP INDEX bi_t;
COMMIT;
CREATE INDEX bi_t ON bi USING fractal (t);
SELECT bi_compare();
SELECT fractal_check('bi_k', true), fractal_check('bi_t', true);

-- ... a TRUNCATE that empties the files in place (the table was created in
-- this transaction), and a SET TABLESPACE that copies the index's file
BEGIN;
CREATE TABLE bt (id int, k int8);
CREATE INDEX bt_k ON bt USING fractal (k);
INSERT INTO bt SELECT g, g FROM generate_series(1, 300) g;
TRUNCATE bt;
INSERT INTO bt SELECT g, g + 1000 FROM generate_series(1, 100) g;
COMMIT;
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*), min(k), max(k), sum(id) FROM bt WHERE k >= 0;
SELECT count(*) FROM bt WHERE k BETWEEN 1 AND 300;
RESET enable_seqscan; RESET enable_bitmapscan;
SET allow_in_place_tablespaces = on;
CREATE TABLESPACE bi_space LOCATION '';
BEGIN;
INSERT INTO bi SELECT g, g, 's' || g FROM generate_series(6801, 6900) g;
ALTER INDEX bi_k SET TABLESPACE bi_space;
INSERT INTO bi SELECT g, g, 't' || g FROM generate_series(6901, 6950) g;
COMMIT;
SELECT bi_compare();
SELECT count(*) FROM bi WHERE k BETWEEN 6801 AND 6950;
ALTER INDEX bi_k SET TABLESPACE pg_default;
DROP TABLESPACE bi_space;
RESET allow_in_place_tablespaces;

-- ... and a query run by a parallel worker finds the rows its leader's
-- transaction inserted
-- (settings and EXPLAIN first: utility commands append the waiting entries)
BEGIN;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM bi WHERE k BETWEEN 6951 AND 7000;
INSERT INTO bi SELECT g, g, 'u' || g FROM generate_series(6951, 7000) g;
SELECT count(*) FROM bi WHERE k BETWEEN 6951 AND 7000;
COMMIT;

-- 7. COPY, then a prepared transaction
BEGIN;
COPY bi FROM STDIN;
7001	7001	copy1
7002	7002	copy2
7003	7003	copy3
\.
SELECT id FROM bi WHERE k BETWEEN 7001 AND 7003 ORDER BY k;
INSERT INTO bi SELECT g, g, 'r' || g FROM generate_series(7004, 7100) g;
PREPARE TRANSACTION 'fractal_bi';
COMMIT PREPARED 'fractal_bi';
SELECT count(*) FROM bi WHERE k BETWEEN 7001 AND 7100;
SELECT bi_compare();

-- 8. more than a batch's bound of wide entries in one transaction, and more
-- indexes than a backend batches at once (the rest insert directly)
CREATE TABLE bw (id int, a int8, b int8, c int8, d int8, e int8, f int8,
                 g int8, h int8, w text);
CREATE INDEX ON bw USING fractal (a);
CREATE INDEX ON bw USING fractal (b);
CREATE INDEX ON bw USING fractal (c);
CREATE INDEX ON bw USING fractal (d);
CREATE INDEX ON bw USING fractal (e);
CREATE INDEX ON bw USING fractal (f);
CREATE INDEX ON bw USING fractal (g);
CREATE INDEX ON bw USING fractal (h);
CREATE INDEX bw_w ON bw USING fractal (w);
CREATE INDEX bw_id ON bw USING fractal (id);
INSERT INTO bw SELECT i, i, -i, i % 97, i % 89, i * 3, i * 5, i * 7, i * 11,
                      repeat(md5(i::text), 20) FROM generate_series(1, 3000) i;
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM bw WHERE w >= '';
SELECT count(*) FROM bw WHERE id > 0;
SELECT count(*) FROM bw WHERE h > 0;
RESET enable_seqscan; RESET enable_bitmapscan;
SELECT bool_and(c.ok) AS all_checked
  FROM pg_index i, LATERAL (SELECT true AS ok FROM fractal_check(i.indexrelid, true)) c
 WHERE i.indrelid = 'bw'::regclass;

-- 9. what is batched (counters: this cluster preloads the library): plain
-- inserts into a table with a primary key are; speculative insertions
-- (ON CONFLICT), whose heap tuple can be super-deleted while the transaction
-- goes on, are not; with fractal.batch_inserts off nothing is
CREATE TABLE bu (id int PRIMARY KEY, k int8);
CREATE INDEX bu_k ON bu USING fractal (k);
CREATE TEMP TABLE bu_ctr AS SELECT value FROM fractal_counters() WHERE name = 'batched_inserts';
INSERT INTO bu SELECT g, g FROM generate_series(1, 100) g;
SELECT value - (SELECT value FROM bu_ctr) AS batched FROM fractal_counters() WHERE name = 'batched_inserts';
UPDATE bu_ctr SET value = (SELECT value FROM fractal_counters() WHERE name = 'batched_inserts');
BEGIN;
INSERT INTO bu SELECT g, g * 10 FROM generate_series(51, 150) g ON CONFLICT (id) DO NOTHING;
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
SELECT count(*) FROM bu WHERE k >= 0;
COMMIT;
INSERT INTO bu SELECT g, g FROM generate_series(151, 160) g
  ON CONFLICT (id) DO UPDATE SET k = excluded.k + 1;
SET fractal.batch_inserts = off;
INSERT INTO bu SELECT g, g FROM generate_series(161, 170) g;
RESET fractal.batch_inserts;
SELECT value - (SELECT value FROM bu_ctr) AS batched FROM fractal_counters() WHERE name = 'batched_inserts';
SELECT fractal_check('bu_k', true);
SELECT count(*) FROM bu WHERE k >= 0;

DROP TABLE bi, bi_log, bw, bu, bu_ctr, bt;
DROP FUNCTION bi_compare(), bi_trig();
