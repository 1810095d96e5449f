--
-- opclasses: every operator class of the fractal access method, with every
-- operator (<, <=, =, >=, >), BETWEEN, IN, IS [NOT] NULL and ordered scans,
-- same-type and cross-type; each result through the fractal index (plain
-- index scan and bitmap scan) is compared with the result of a seqscan.
--
SET client_min_messages = warning;
CREATE SCHEMA fr_opclasses;
SET search_path = fr_opclasses, public;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET max_parallel_workers_per_gather = 0;

\i test/sql/check_functions.sql

-- One table per operator class: id, v.  Rows 1..600 are inserted into an
-- empty table that already has a fractal index WITH (buffer_pages = 4), the
-- rest in four more batches, so that the tree has several leaves and keeps
-- some messages in node buffers.  Every 29th row is NULL; every value occurs
-- several times; a few special values (extremes, infinities, NaN, values
-- that are equal but print differently) are added in the last batch.
CREATE TABLE oc_types (
	ord int PRIMARY KEY,
	typ text,				-- column type
	gen text,				-- value of row i (NULL every 29th row is added)
	specials text,			-- extra values, a VALUES-style list
	c_mid text,				-- a constant that occurs in the data
	c_lo text, c_hi text,	-- BETWEEN bounds
	c_in text				-- an IN list (with absent values)
);
INSERT INTO oc_types VALUES
 (1, 'int2', $$((i*7919) % 1001 - 500)::int2$$,
  $$(32767::int2), ((-32768)::int2), (0::int2)$$,
  $$7::int2$$, $$(-100)::int2$$, $$250::int2$$, $$(-500::int2, 7::int2, 8::int2, 499::int2, 32767::int2, 12345::int2)$$),
 (2, 'int4', $$((i*7919) % 1001 - 500) * 100000$$,
  $$(2147483647), (-2147483648), (0)$$,
  $$700000$$, $$-10000000$$, $$25000000$$, $$(-50000000, 700000, 800001, 2147483647)$$),
 (3, 'int8', $$((i*7919) % 1001 - 500)::int8 * 10000000000$$,
  $$(9223372036854775807), (-9223372036854775808), (0)$$,
  $$70000000000$$, $$-1000000000000$$, $$2500000000000$$, $$(-5000000000000, 70000000000, 70000000001, 9223372036854775807)$$),
 (4, 'float4', $$(((i*7919) % 1001 - 500) / 8.0)::float4$$,
  $$('NaN'::float4), ('Infinity'), ('-Infinity'), ('-0'), ('0'), ('1e-40'), ('0.1')$$,
  $$0.875::float4$$, $$(-12.5)::float4$$, $$31.25::float4$$, $$('-62.5'::float4, 0.875::float4, 'NaN'::float4, 'Infinity'::float4, 0.3::float4)$$),
 (5, 'float8', $$((i*7919) % 1001 - 500) / 3.0::float8$$,
  $$('NaN'::float8), ('Infinity'), ('-Infinity'), ('-0'), ('0'), ('1e-310'), ('1e308')$$,
  $$(7 / 3.0::float8)$$, $$(-10)::float8$$, $$40.5::float8$$, $$((-500) / 3.0::float8, 0::float8, 'NaN'::float8, '-Infinity'::float8, 0.3::float8)$$),
 (6, 'numeric', $$round(((i*7919) % 1001 - 500) / 7.0, i % 4)$$,
  $$('1'::numeric), ('1.0'), ('1.000'), ('NaN'), ('Infinity'), ('-Infinity'), ('1e100'), ('-1e-100')$$,
  $$1::numeric$$, $$(-3.5)::numeric$$, $$12.25::numeric$$, $$(1.00::numeric, 'NaN'::numeric, '-Infinity'::numeric, 3.142857::numeric, 3.14::numeric)$$),
 (7, 'text', $$'k' || ((i*7919) % 701)::text$$,
  $$(''::text), (' '), ('K'), (repeat('abc', 700)), ('ä'), ('k1'), ('k350 ')$$,
  $$'k350'::text$$, $$'k2'::text$$, $$'k5'::text$$, $$('k1'::text, 'k700', '', 'nope', repeat('abc', 700))$$),
 (8, 'varchar(40)', $$'v' || lpad(((i*7919) % 701)::text, 4, '0')$$,
  $$(''::varchar), ('v'), ('v0350 ')$$,
  $$'v0350'::varchar$$, $$'v0100'::varchar$$, $$'v0500'::varchar$$, $$('v0001'::varchar, 'v0700', '', 'v9999')$$),
 (9, 'name', $$('n' || ((i*7919) % 701)::text)::name$$,
  $$(''::name), ('n'), ('N1')$$,
  $$'n350'::name$$, $$'n2'::name$$, $$'n5'::name$$, $$('n1'::name, 'n700', '', 'zz')$$),
 (10, 'char(6)', $$'b' || ((i*7919) % 701)::text$$,
  $$(''::char(6)), ('b1  '), ('b')$$,
  $$'b350'::bpchar$$, $$'b2'::bpchar$$, $$'b5'::bpchar$$, $$('b1'::bpchar, 'b7   ', '', 'zz')$$),
 (11, 'bytea', $$decode(lpad(to_hex((i*7919) % 701), 4, '0'), 'hex')$$,
  $$('\x'::bytea), ('\x00'), ('\xff'), ('\xffff'), ('\x015e00')$$,
  $$'\x015e'::bytea$$, $$'\x0064'::bytea$$, $$'\x01f4'::bytea$$, $$('\x0001'::bytea, '\x'::bytea, '\xffff'::bytea, '\x1234'::bytea)$$),
 (12, 'bool', $$(i*7919) % 3 = 0$$,
  $$(true), (false)$$,
  $$(SELECT true)$$, $$(SELECT false)$$, $$(SELECT true)$$, $$(true, NULL)$$),
 (13, '"char"', $$(((i*7919) % 200) - 100)::"char"$$,
  $$(127::"char"), ((-128)::"char"), ('a'::"char")$$,
  $$50::"char"$$, $$10::"char"$$, $$(-20)::"char"$$, $$(50::"char", (-1)::"char", 'z'::"char")$$),
 (14, 'oid', $$(((i*7919) % 1001) * 4000000::int8)::oid$$,
  $$(0::oid), (4294967295::oid), (2147483648::oid)$$,
  $$2800000000::oid$$, $$1000000000::oid$$, $$3000000000::oid$$, $$(0::oid, 2800000000::oid, 2800000001::oid, 4294967295::oid)$$),
 (15, 'date', $$'2000-01-01'::date + ((i*7919) % 1001 - 500)$$,
  $$('infinity'::date), ('-infinity'), ('2000-03-01')$$,
  $$'2000-03-01'::date$$, $$'1999-06-01'::date$$, $$'2000-07-04'::date$$, $$('2000-03-01'::date, 'infinity', '1066-10-14', '2000-02-29')$$),
 (16, 'timestamp', $$'2000-01-01'::timestamp + ((i*7919) % 1001 - 500) * interval '7 hours'$$,
  $$('infinity'::timestamp), ('-infinity'), ('2000-01-01 07:00:00.000001')$$,
  $$'2000-01-01 07:00'::timestamp$$, $$'1999-12-01'::timestamp$$, $$'2000-02-03 04:05:06'::timestamp$$,
  $$('2000-01-01 07:00'::timestamp, '2000-01-01 07:00:00.000001', '-infinity', '2000-01-01 08:00')$$),
 (17, 'timestamptz', $$'2000-01-01 00:00+00'::timestamptz + ((i*7919) % 1001 - 500) * interval '7 hours'$$,
  $$('infinity'::timestamptz), ('-infinity'), ('2000-01-01 07:00:00+01')$$,
  $$'2000-01-01 07:00+00'::timestamptz$$, $$'1999-12-01 00:00+00'::timestamptz$$, $$'2000-02-03 04:05:06+00'::timestamptz$$,
  $$('2000-01-01 07:00+00'::timestamptz, '2000-01-01 08:00+01', 'infinity', '2000-01-01 01:00+00')$$),
 (18, 'time', $$'00:00'::time + ((i*7919) % 1001) * interval '86 seconds'$$,
  $$('24:00:00'::time), ('00:00'), ('00:01:26.5')$$,
  $$'00:01:26'::time$$, $$'03:00'::time$$, $$'12:00'::time$$, $$('00:01:26'::time, '24:00', '00:00:01', '23:59:59.999999')$$),
 (19, 'interval', $$((i*7919) % 1001 - 500) * interval '5 hours'$$,
  $$('1 day'::interval), ('24 hours'), ('1 mon'), ('30 days'), ('720 hours'), ('5 days'), ('-178956970 years')$$,
  $$'5 days'::interval$$, $$'-2 days'::interval$$, $$'1 mon 1 day'::interval$$, $$('1 day'::interval, '30 days', '1 second', '-2500 hours')$$),
 (20, 'uuid', $$md5(((i*7919) % 701)::text)::uuid$$,
  $$('00000000-0000-0000-0000-000000000000'::uuid), ('ffffffff-ffff-ffff-ffff-ffffffffffff'), (md5('350')::uuid)$$,
  $$md5('350')::uuid$$, $$'40000000-0000-0000-0000-000000000000'::uuid$$, $$'c0000000-0000-0000-0000-000000000000'::uuid$$,
  $$(md5('1')::uuid, md5('x')::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid)$$);

-- table oc_<ord>: built from oc_types
DO $$
DECLARE
	t record;
	b int4range;
BEGIN
	FOR t IN SELECT * FROM oc_types ORDER BY ord LOOP
		EXECUTE format('CREATE TABLE oc_%s (id int, v %s)', t.ord, t.typ);
		EXECUTE format('CREATE INDEX oc_%s_v ON oc_%s USING fractal (v) WITH (buffer_pages = 4)',
					   t.ord, t.ord);
		FOREACH b IN ARRAY ARRAY[int4range(1, 601), int4range(601, 1201), int4range(1201, 1801),
								 int4range(1801, 2401), int4range(2401, 3001)] LOOP
			EXECUTE format('INSERT INTO oc_%s SELECT i, CASE WHEN i %% 29 = 0 THEN NULL ELSE %s END '
						   'FROM generate_series(%s, %s) i',
						   t.ord, t.gen, lower(b), upper(b) - 1);
		END LOOP;
		EXECUTE format('INSERT INTO oc_%s SELECT 10000 + row_number() OVER (), x FROM (VALUES %s) s(x)',
					   t.ord, t.specials);
		EXECUTE format('ANALYZE oc_%s', t.ord);
	END LOOP;
END
$$;

-- every index has more than one leaf, messages still in buffers, and
-- every row is either a leaf entry or a buffered message
CREATE FUNCTION oc_tree_shape(idx regclass, tab regclass, OUT leaves_gt_1 boolean,
							  OUT some_buffered boolean, OUT all_rows_indexed boolean)
LANGUAGE plpgsql AS $f$
DECLARE
	n bigint;
	s record;
BEGIN
	EXECUTE format('SELECT count(*) FROM %s', tab) INTO n;
	SELECT * INTO s FROM fractal_stats(idx);
	leaves_gt_1 := s.leaf_pages > 1;
	some_buffered := (SELECT sum(buffered_messages) FROM fractal_level_stats(idx)) > 0
		AND s.buffered_messages > 0;
	all_rows_indexed := s.leaf_entries + s.buffered_messages = n;
END
$f$;

SELECT t.typ, s.*
  FROM oc_types t, LATERAL oc_tree_shape(format('oc_%s_v', t.ord)::regclass,
										 format('oc_%s', t.ord)::regclass) s
 ORDER BY t.ord;

-- the fractal index is used (plain and bitmap) for an equality qual on each type
SELECT t.typ, e.plan
  FROM oc_types t,
	   LATERAL fr_explain(format('SELECT * FROM oc_%s WHERE v = %s', t.ord, t.c_mid)) e(plan)
 ORDER BY t.ord;
SELECT t.typ, e.plan
  FROM oc_types t,
	   LATERAL fr_explain(format('SELECT * FROM oc_%s WHERE v = %s', t.ord, t.c_mid), 'b') e(plan)
 WHERE t.ord IN (1, 7)
 ORDER BY t.ord;

-- the queries
CREATE TABLE oc_tests (ord int PRIMARY KEY, label text, tmpl text, modes text, ordered boolean);
INSERT INTO oc_tests VALUES
 (1, '<',            'SELECT id, v FROM %t WHERE v < %mid', 'ib', false),
 (2, '<=',           'SELECT id, v FROM %t WHERE v <= %mid', 'ib', false),
 (3, '=',            'SELECT id, v FROM %t WHERE v = %mid', 'ib', false),
 (4, '>=',           'SELECT id, v FROM %t WHERE v >= %mid', 'ib', false),
 (5, '>',            'SELECT id, v FROM %t WHERE v > %mid', 'ib', false),
 (6, 'between',      'SELECT id, v FROM %t WHERE v BETWEEN %lo AND %hi', 'ib', false),
 (7, 'in',           'SELECT id, v FROM %t WHERE v IN %in', 'b', false),
 (8, '< lo or > hi', 'SELECT id, v FROM %t WHERE v < %lo OR v > %hi', 'b', false),
 (9, 'is null',      'SELECT id, v FROM %t WHERE v IS NULL', 'ib', false),
 (10, 'is not null', 'SELECT id, v FROM %t WHERE v IS NOT NULL', 'ib', false),
 (11, '> hi and < lo', 'SELECT id, v FROM %t WHERE v > %hi AND v < %lo', 'ib', false),
 (12, '= and <=',    'SELECT id, v FROM %t WHERE v = %mid AND v <= %mid', 'ib', false),
 (13, 'order by asc', 'SELECT v FROM %t ORDER BY v', 'i', true),
 (14, 'order by desc', 'SELECT v FROM %t ORDER BY v DESC', 'i', true),
 (15, 'range order desc', 'SELECT v FROM %t WHERE v >= %lo AND v < %hi ORDER BY v DESC', 'i', true);

CREATE FUNCTION oc_query(tmpl text, t oc_types) RETURNS text LANGUAGE sql AS $f$
	SELECT replace(replace(replace(replace(replace(tmpl,
		'%t', 'oc_' || t.ord), '%mid', t.c_mid), '%lo', t.c_lo), '%hi', t.c_hi), '%in', t.c_in);
$f$;

SELECT t.typ, q.label, c.ok, c.nrows
  FROM oc_types t CROSS JOIN oc_tests q,
	   LATERAL fr_check(oc_query(q.tmpl, t), q.modes, q.ordered) c
 ORDER BY t.ord, q.ord;

-- cross-type comparisons within the families
CREATE TABLE oc_cross (ord serial, q text, modes text DEFAULT 'ib');
INSERT INTO oc_cross (q) VALUES
 ('SELECT id, v FROM oc_1 WHERE v = 7::int4'),
 ('SELECT id, v FROM oc_1 WHERE v = 7::int8'),
 ('SELECT id, v FROM oc_1 WHERE v < 7::int8'),
 ('SELECT id, v FROM oc_1 WHERE v >= (-100)::int4'),
 ('SELECT id, v FROM oc_1 WHERE v <= 32767::int8'),
 ('SELECT id, v FROM oc_1 WHERE v > 100000::int4'),
 ('SELECT id, v FROM oc_1 WHERE v < 100000::int8'),
 ('SELECT id, v FROM oc_1 WHERE v >= (-100000)::int4'),
 ('SELECT id, v FROM oc_1 WHERE v < (-100000)::int8'),
 ('SELECT id, v FROM oc_1 WHERE v BETWEEN (-100)::int8 AND 250::int4'),
 ('SELECT id, v FROM oc_1 WHERE v >= 3::int8 AND v < 40000::int4'),
 ('SELECT id, v FROM oc_2 WHERE v = 700000::int8'),
 ('SELECT id, v FROM oc_2 WHERE v = 0::int2'),
 ('SELECT id, v FROM oc_2 WHERE v < 5::int8'),
 ('SELECT id, v FROM oc_2 WHERE v < 5000000000::int8'),
 ('SELECT id, v FROM oc_2 WHERE v > (-5000000000)::int8'),
 ('SELECT id, v FROM oc_2 WHERE v <= 30000::int2'),
 ('SELECT id, v FROM oc_2 WHERE v = 2147483647::int8'),
 ('SELECT id, v FROM oc_2 WHERE v > 2147483647::int8'),
 ('SELECT id, v FROM oc_2 WHERE v BETWEEN (-32768)::int2 AND 30000000000::int8'),
 ('SELECT id, v FROM oc_3 WHERE v = 0::int4'),
 ('SELECT id, v FROM oc_3 WHERE v = 0::int2'),
 ('SELECT id, v FROM oc_3 WHERE v < 32767::int2'),
 ('SELECT id, v FROM oc_3 WHERE v >= 2147483647::int4'),
 ('SELECT id, v FROM oc_3 WHERE v > (-2147483648)::int4'),
 ('SELECT id, v FROM oc_3 WHERE v BETWEEN (-5)::int2 AND 2147483647::int4'),
 ('SELECT id, v FROM oc_4 WHERE v = 0.875::float8'),
 ('SELECT id, v FROM oc_4 WHERE v = 0.1::float8'),
 ('SELECT id, v FROM oc_4 WHERE v = 0.1::float4'),
 ('SELECT id, v FROM oc_4 WHERE v < 1e300::float8'),
 ('SELECT id, v FROM oc_4 WHERE v > (-1e300)::float8'),
 ('SELECT id, v FROM oc_4 WHERE v >= ''Infinity''::float8'),
 ('SELECT id, v FROM oc_4 WHERE v = ''NaN''::float8'),
 ('SELECT id, v FROM oc_4 WHERE v BETWEEN (-1e-300)::float8 AND 1e-300::float8'),
 ('SELECT id, v FROM oc_5 WHERE v < 2.5::float4'),
 ('SELECT id, v FROM oc_5 WHERE v >= (-1.5)::float4'),
 ('SELECT id, v FROM oc_5 WHERE v = 0::float4'),
 ('SELECT id, v FROM oc_5 WHERE v = ''NaN''::float4'),
 ('SELECT id, v FROM oc_5 WHERE v > ''Infinity''::float4'),
 ('SELECT id, v FROM oc_5 WHERE v <= ''-Infinity''::float4'),
 ('SELECT id, v FROM oc_7 WHERE v = ''k350''::name COLLATE "default"'),
 ('SELECT id, v FROM oc_7 WHERE v < ''k2''::name COLLATE "default"'),
 ('SELECT id, v FROM oc_7 WHERE v >= ''k5''::name COLLATE "default"'),
 ('SELECT id, v FROM oc_8 WHERE v = ''v0350''::text'),
 ('SELECT id, v FROM oc_8 WHERE v > ''v0350''::text'),
 ('SELECT id, v FROM oc_9 WHERE v = ''n350''::text'),
 ('SELECT id, v FROM oc_9 WHERE v > ''n5''::text'),
 ('SELECT id, v FROM oc_9 WHERE v BETWEEN ''n2''::text AND ''n4''::text'),
 ('SELECT id, v FROM oc_15 WHERE v = ''2000-03-01 00:00''::timestamp'),
 ('SELECT id, v FROM oc_15 WHERE v = ''2000-03-01 00:00:01''::timestamp'),
 ('SELECT id, v FROM oc_15 WHERE v < ''2000-03-01 12:00''::timestamp'),
 ('SELECT id, v FROM oc_15 WHERE v >= ''2000-03-01 00:00+00''::timestamptz'),
 ('SELECT id, v FROM oc_15 WHERE v > ''2000-03-01 00:00+00''::timestamptz'),
 ('SELECT id, v FROM oc_15 WHERE v >= ''infinity''::timestamp'),
 ('SELECT id, v FROM oc_15 WHERE v BETWEEN ''1999-12-31 23:00''::timestamp AND ''2000-02-01''::timestamptz'),
 ('SELECT id, v FROM oc_16 WHERE v = ''2000-01-01''::date'),
 ('SELECT id, v FROM oc_16 WHERE v < ''2000-02-01''::date'),
 ('SELECT id, v FROM oc_16 WHERE v <= ''infinity''::date'),
 ('SELECT id, v FROM oc_16 WHERE v >= ''2000-01-01 07:00+00''::timestamptz'),
 ('SELECT id, v FROM oc_16 WHERE v = ''2000-01-01 07:00+00''::timestamptz'),
 ('SELECT id, v FROM oc_17 WHERE v = ''2000-01-01''::date'),
 ('SELECT id, v FROM oc_17 WHERE v > ''2000-01-02''::date'),
 ('SELECT id, v FROM oc_17 WHERE v >= ''2000-01-01 07:00''::timestamp'),
 ('SELECT id, v FROM oc_17 WHERE v < ''-infinity''::timestamp'),
 ('SELECT id, v FROM oc_17 WHERE v BETWEEN ''1999-12-25''::date AND ''2000-01-03 01:00''::timestamp');

SELECT c.ord, c.q, r.ok, r.nrows
  FROM oc_cross c, LATERAL fr_check(c.q, c.modes) r
 ORDER BY c.ord;

-- the cross-type quals are index quals, not filters
SELECT fr_explain('SELECT * FROM oc_1 WHERE v > 100000::int4 AND v <= 32767::int8');
SELECT fr_explain('SELECT * FROM oc_4 WHERE v = 0.1::float8');
SELECT fr_explain('SELECT * FROM oc_15 WHERE v < ''2000-03-01 12:00''::timestamp');

-- IN with cross-type elements
SELECT (fr_check('SELECT id, v FROM oc_1 WHERE v IN (7::int8, 32768::int8, -500::int8)', 'b')).*;
SELECT (fr_check('SELECT id, v FROM oc_16 WHERE v = ANY (ARRAY[''2000-01-01''::date, ''2000-03-01''::date])', 'b')).*;

-- all operator classes validate
SELECT opc.opcname, amvalidate(opc.oid)
  FROM pg_opclass opc
 WHERE opc.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'fractal')
 ORDER BY opc.opcname;

-- The same checks on indexes built in bulk from the populated tables (a
-- freshly built index has no buffered messages).
DO $$
DECLARE
	t record;
BEGIN
	FOR t IN SELECT * FROM oc_types ORDER BY ord LOOP
		EXECUTE format('DROP INDEX oc_%s_v', t.ord);
		EXECUTE format('CREATE INDEX oc_%s_v ON oc_%s USING fractal (v)', t.ord, t.ord);
	END LOOP;
END
$$;

SELECT t.typ, s.*
  FROM oc_types t, LATERAL oc_tree_shape(format('oc_%s_v', t.ord)::regclass,
										 format('oc_%s', t.ord)::regclass) s
 ORDER BY t.ord;

SELECT t.typ, q.label, c.ok, c.nrows
  FROM oc_types t CROSS JOIN oc_tests q,
	   LATERAL fr_check(oc_query(q.tmpl, t), q.modes, q.ordered) c
 WHERE q.ord IN (1, 3, 4, 6, 9, 13, 15)
 ORDER BY t.ord, q.ord;

RESET search_path;
DROP SCHEMA fr_opclasses CASCADE;
