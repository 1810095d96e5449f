# Point lookups in an index large against shared buffers, with cold pages:
# the path where a plain scan leaves a leaf filter page unread when it is
# not in shared buffers (fr_lfilter_worth_reading, src/README.md 3d,
# "Lookups that expect a hit").
#
# shared_buffers = 1MB (128 buffers), so a fractal index of 2,000+ blocks is
# "large" (fr_index_large: at least a quarter of shared buffers) and most of
# its filter pages are out of shared buffers.  Its leaves are plain
# (compression = none; auto would compress them, and a quarter of the
# leaves would need a quarter of the filter pages).  The index is built (empty
# chains, a filter page per partition), then 20,000 rows are inserted so
# that some partitions have chains, then the server restarts (nothing
# cached).  Asserted, differentially (nested-loop index scans against a
# hash join without the index), for present and absent keys of an int8 and a
# text column: the same rows; that plain lookups bypassed filter pages
# (counter leaf_filter_bypasses > 0) and still probed some (pages that were
# cached, or partitions whose chain costs reads); that ON CONFLICT
# pre-checks (dirty snapshot) never bypass: the counter does not move while
# they run, and every absent key is inserted exactly once.  Range scans
# forward and backward, cold, return what sorts of the table do, start
# their leaves' reads before walking cold chains (scan_leaf_prefetches), and
# start the reads of the heap blocks ahead of the executor (heap_prefetches;
# not with fractal.heap_prefetch = 0, nor for all-visible blocks in
# index-only scans, nor, beyond one, when the heap reads are faster than
# fractal.heap_prefetch_min_us).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cold');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fractal'
shared_buffers = 1MB
autovacuum = off
fractal.heap_prefetch_min_us = 0
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE TABLE t (a int8, s text, n int);
INSERT INTO t SELECT (hashint8(g) & 1099511627775)::int8 * 2, md5(g::text), g
  FROM generate_series(1, 150000) g;
CREATE INDEX t_a ON t USING fractal (a) WITH (compression = none);
CREATE INDEX t_s ON t USING fractal (s) WITH (compression = none);
INSERT INTO t SELECT (hashint8(g) & 1099511627775)::int8 * 2, md5(g::text), g
  FROM generate_series(150001, 170000) g;
-- keys looked up: present ones (even a) and absent ones (odd a, unknown s)
CREATE TABLE probe AS
  SELECT a, s FROM t WHERE n % 37 = 0
  UNION ALL
  SELECT a + 1, 'x' || s FROM t WHERE n % 53 = 0;
ANALYZE t; ANALYZE probe;
});
cmp_ok($node->safe_psql('postgres', "SELECT pg_relation_size('t_a') / 8192"),
	'>=', 4 * 128, 'the index is large against shared buffers');

$node->restart;

# one statement's answer through nested-loop index scans and through a hash join
sub answer
{
	my ($col, $use_index) = @_;
	my $set = $use_index
	  ? 'SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_seqscan = off; SET enable_bitmapscan = off;'
	  : 'SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_nestloop = off;';
	return $node->safe_psql('postgres', qq{$set
SELECT count(*), coalesce(sum(hashtext(t.s || t.n)), 0) FROM probe p JOIN t ON t.$col = p.$col;});
}

foreach my $col ('a', 's')
{
	my $plan = $node->safe_psql('postgres', qq{SET enable_hashjoin = off; SET enable_mergejoin = off;
SET enable_seqscan = off; SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*), coalesce(sum(hashtext(t.s || t.n)), 0) FROM probe p JOIN t ON t.$col = p.$col;});
	like($plan, qr/Index Scan using t_$col/, "column $col: lookups are index scans");
	my $expected = answer($col, 0);
	like($expected, qr/^[1-9]\d*\|/, "column $col: the probes find rows");
	is(answer($col, 1), $expected, "column $col: cold index lookups return what the hash join does");
}

my $counter = sub {
	$node->safe_psql('postgres',
		"SELECT value FROM fractal_counters() WHERE name = '$_[0]'");
};
cmp_ok($counter->('leaf_filter_bypasses'), '>', 0,
	'plain lookups left cold filter pages unread');
cmp_ok($counter->('leaf_filter_probes'), '>', 0,
	'plain lookups still probed some filter pages');
note('leaf_filter_bypasses ' . $counter->('leaf_filter_bypasses')
	  . ', leaf_filter_probes ' . $counter->('leaf_filter_probes')
	  . ', scan_leaf_prefetches ' . $counter->('scan_leaf_prefetches'));

# Range scans, restarted cold: 20 entries forward and backward from each of
# ~60 starting points, through index scans and through sorts of the table.
# Descents that walk a cold level-1 chain start their leaf's read first
# (fr_scan_prefetch_leaf, src/README.md section 9).
$node->restart;
my $prefetches = $counter->('scan_leaf_prefetches');
sub windows
{
	my ($use_index, $dir, $prefix) = @_;
	my ($op, $order) = $dir eq 'fwd' ? ('>=', 'ASC') : ('<=', 'DESC');
	my $set = $use_index
	  ? 'SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off;'
	  : 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
	return $node->safe_psql('postgres', qq{$set
$prefix SELECT count(x.n), coalesce(sum(x.a::numeric), 0)
  FROM (SELECT a FROM probe WHERE hashint8(a) % 128 = 0) p,
  LATERAL (SELECT t.a, t.n FROM t WHERE t.a $op p.a ORDER BY t.a $order LIMIT 20) x;});
}
foreach my $dir ('fwd', 'bwd')
{
	like(windows(1, $dir, 'EXPLAIN (COSTS OFF)'), qr/Index Scan (Backward )?using t_a/,
		"range $dir: index scans");
	my $expected = windows(0, $dir, '');
	like($expected, qr/^[1-9]\d*\|/, "range $dir: the windows hold rows");
	my $heap = $counter->('heap_prefetches');
	is(windows(1, $dir, ''), $expected,
		"range $dir: cold index scans return what the sorts do");
	# the heap (~1,700 blocks) is larger than shared buffers: the scans
	# started reads of the heap blocks of the entries after the one returned
	cmp_ok($counter->('heap_prefetches'), '>', $heap,
		"range $dir: heap reads started ahead (fr_heapprefetch.c)");
}
cmp_ok($counter->('scan_leaf_prefetches'), '>', $prefetches,
	'range scans started leaf reads before walking cold chains');

# Direction changes inside a chunk (a scroll cursor) and mark/restore (the
# inner index scan of a merge join with repeated outer keys), cold, with heap
# prefetch on: the same rows as a sort and a hash join
$node->restart;
my $cursor = sub {
	my ($set) = @_;
	return $node->safe_psql('postgres', qq{$set
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT a, length(s) FROM t
  WHERE a >= (SELECT a FROM t ORDER BY a OFFSET 80000 LIMIT 1) ORDER BY a;
FETCH FORWARD 30 FROM c; FETCH BACKWARD 15 FROM c; FETCH FORWARD 400 FROM c;
FETCH BACKWARD 60 FROM c; FETCH FORWARD 5 FROM c;
COMMIT;});
};
my $heap = $counter->('heap_prefetches');
my $by_index = $cursor->('SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off;');
cmp_ok($counter->('heap_prefetches'), '>', $heap, 'scroll cursor: heap reads started ahead');
is($by_index, $cursor->('SET enable_indexscan = off; SET enable_bitmapscan = off;'),
	'scroll cursor through the index, both directions: the rows of a sort');
my $mj = q{SELECT count(*), coalesce(sum(hashtext(t.s || t.n)), 0)
  FROM (SELECT a FROM probe UNION ALL SELECT a FROM probe) p JOIN t ON t.a = p.a;};
my $mj_set = 'SET enable_hashjoin = off; SET enable_nestloop = off; SET enable_seqscan = off; SET enable_bitmapscan = off;';
like($node->safe_psql('postgres', "$mj_set EXPLAIN (COSTS OFF) $mj"),
	qr/Merge Join(.|\n)*Index Scan using t_a/, 'merge join over an index scan of t_a');
is($node->safe_psql('postgres', "$mj_set $mj"),
	$node->safe_psql('postgres', "SET enable_mergejoin = off; SET enable_nestloop = off; $mj"),
	'merge join with mark/restore: the rows of a hash join');

# fractal.scan_prefetch = off (what the bench compares against): the same
# rows, cold, and no leaf read started ahead
$node->restart;
$prefetches = $counter->('scan_leaf_prefetches');
is(windows(1, 'fwd', 'SET fractal.scan_prefetch = off;'), windows(0, 'fwd', ''),
	'range fwd without read-ahead: the same rows');
is($counter->('scan_leaf_prefetches'), $prefetches,
	'fractal.scan_prefetch = off starts no leaf read');

# Heap reads faster than fractal.heap_prefetch_min_us (this table's heap
# is in the kernel's page cache; 0 above makes every read count as slow so
# that the scans here prefetch): a backend's first scan may start one read
# before its first sample says the reads are fast; then none
$node->restart;
$heap = $counter->('heap_prefetches');
is(windows(1, 'fwd', 'SET fractal.heap_prefetch_min_us = 1000000;'), windows(0, 'fwd', ''),
	'range fwd with every heap read counted as fast: the same rows');
cmp_ok($counter->('heap_prefetches') - $heap, '<=', 1,
	'... and at most one heap read started ahead');

# fractal.heap_prefetch = 0: the same rows, cold, and no heap read started
# ahead.  Index-only scans prefetch only heap blocks that the visibility map
# does not show all-visible: before VACUUM every block they meet; after it
# none (pg_class says the heap is all-visible, so they do not even look);
# with a third of the heap's blocks updated since (and ANALYZE counting
# the all-visible ones again), some, and fewer than before VACUUM.
$node->restart;
$heap = $counter->('heap_prefetches');
is(windows(1, 'bwd', 'SET fractal.heap_prefetch = 0;'), windows(0, 'bwd', ''),
	'range bwd without heap prefetch: the same rows');
is($counter->('heap_prefetches'), $heap, 'fractal.heap_prefetch = 0 starts no heap read');
my $ios_set = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
my $ios = q{SELECT count(*), sum(x.a::numeric) FROM (SELECT a FROM probe WHERE hashint8(a) % 128 = 0) p,
  LATERAL (SELECT t.a FROM t WHERE t.a >= p.a ORDER BY t.a LIMIT 20) x;};
my %ios_reads;
foreach my $when ('before VACUUM', 'after VACUUM', 'a third updated')
{
	$node->safe_psql('postgres', 'VACUUM t') if $when eq 'after VACUUM';
	$node->safe_psql('postgres', q{
UPDATE t SET n = n WHERE (ctid::text::point)[0]::int % 3 = 0; ANALYZE t;})
	  if $when eq 'a third updated';
	$node->restart;
	like($node->safe_psql('postgres', "$ios_set EXPLAIN (COSTS OFF) $ios"),
		qr/Index Only Scan using t_a/, "windows of column a alone $when: index-only scans");
	$heap = $counter->('heap_prefetches');
	is($node->safe_psql('postgres', "$ios_set $ios"), windows(0, 'fwd', ''),
		"index-only windows $when: the same rows");
	$ios_reads{$when} = $counter->('heap_prefetches') - $heap;
}
note(join(', ', map { "$_: $ios_reads{$_}" } sort keys %ios_reads));
cmp_ok($ios_reads{'before VACUUM'}, '>', 0,
	'index-only scans start reads of heap blocks not all-visible');
is($ios_reads{'after VACUUM'}, 0, 'index-only scans of an all-visible heap start none');
cmp_ok($ios_reads{'a third updated'}, '>', 0,
	'index-only scans of a heap a third not all-visible start some');
cmp_ok($ios_reads{'a third updated'}, '<', $ios_reads{'before VACUUM'},
	'... fewer than when no block was all-visible');

# ON CONFLICT pre-checks always probe: a unique index, restarted cold
$node->safe_psql('postgres', q{
CREATE TABLE u (k text);
INSERT INTO u SELECT md5(g::text) FROM generate_series(1, 150000) g;
CREATE UNIQUE INDEX u_k ON u USING fractal (k);
});
$node->restart;
my $bypasses = $counter->('leaf_filter_bypasses');
my $probes = $counter->('leaf_filter_probes');
is($node->safe_psql('postgres', q{
WITH ins AS (
  INSERT INTO u SELECT md5(g::text) FROM generate_series(149001, 152000) g
  ON CONFLICT (k) DO NOTHING RETURNING k)
SELECT count(*) FROM ins;}), '2000', 'ON CONFLICT inserts exactly the absent keys');
is($counter->('leaf_filter_bypasses'), $bypasses,
	'ON CONFLICT pre-checks never bypass a filter page');
cmp_ok($counter->('leaf_filter_probes'), '>', $probes,
	'ON CONFLICT pre-checks probed filter pages');
is($node->safe_psql('postgres', 'SELECT count(*), count(DISTINCT k) FROM u'),
	'152000|152000', 'no duplicates');
my ($rc, $o, $e) = $node->psql('postgres', "SELECT fractal_check('u_k', true), fractal_check('t_a', true), fractal_check('t_s', true)");
is($rc . $e, '0', 'fractal_check passes');

$node->stop;
done_testing();
