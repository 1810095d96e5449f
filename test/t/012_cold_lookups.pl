# Point lookups in an index large against shared buffers, with cold pages:
# the path where a plain scan leaves a leaf filter page unread when it is
# not in shared buffers (fr_lfilter_worth_reading, src/README.md 3d,
# "Lookups that expect a hit").
#
# shared_buffers = 1MB (128 buffers), so a fractal index of 2,000+ blocks is
# "large" (fr_index_large: at least a quarter of shared buffers) and most of
# its filter pages are out of shared buffers.  The index is built (empty
# chains, a filter page per partition), then 20,000 rows are inserted so
# that some partitions have chains, then the server restarts (nothing
# cached).  Asserted, differentially (nested-loop index scans against a
# hash join without the index), for present and absent keys of an int8 and a
# text column: the same rows; that plain lookups bypassed filter pages
# (counter leaf_filter_bypasses > 0) and still probed some (pages that were
# cached, or partitions whose chain costs reads); that ON CONFLICT
# pre-checks (dirty snapshot) never bypass: the counter does not move while
# they run, and every absent key is inserted exactly once.
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
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE TABLE t (a int8, s text, n int);
INSERT INTO t SELECT (hashint8(g) & 1099511627775)::int8 * 2, md5(g::text), g
  FROM generate_series(1, 150000) g;
CREATE INDEX t_a ON t USING fractal (a);
CREATE INDEX t_s ON t USING fractal (s);
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
	  . ', lookup_leaf_prefetches ' . $counter->('lookup_leaf_prefetches'));

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
