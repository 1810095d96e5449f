# Batched inserts (src/fr_pending.c) in a logical replication apply worker.
# The apply worker inserts through the executor (its entries wait in backend
# memory like any backend's) but applies a TRUNCATE by calling
# ExecuteTruncateGuts directly, not through ProcessUtility, so the batch is
# not appended before it: the index gets a new relfilenode (rebuilt from the
# emptied heap) while entries for the old one wait.  Those rows are gone, so
# the entries must be dropped at commit -- not appended, not an error (which
# would stop the subscription for good).
#
# Asserted: a publisher transaction that inserts, truncates and inserts
# again (and one with a savepoint rolled back, which logical decoding never
# sends) is applied; the subscriber's fractal index finds exactly its rows
# by index scan, bitmap scan and point lookups, as a sequential scan does;
# fractal_check passes; later plain transactions still replicate.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical');
$pub->start;
my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->append_conf('postgresql.conf', "shared_preload_libraries = 'fractal'");
$sub->start;

my $ddl = 'CREATE TABLE r (id int, k int8, t text)';
$pub->safe_psql('postgres', $ddl);
$pub->safe_psql('postgres', 'CREATE PUBLICATION p FOR TABLE r');
$sub->safe_psql('postgres', "CREATE EXTENSION fractal; $ddl;
	CREATE INDEX r_k ON r USING fractal (k);
	CREATE INDEX r_t ON r USING fractal (t);");
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION s CONNECTION '$connstr' PUBLICATION p");
$sub->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')")
  or die 'the subscription did not sync';

my $seq = 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
my $idx = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
my $bmp = 'SET enable_seqscan = off; SET enable_indexscan = off;';

# index scan, bitmap scan and seqscan of both indexed columns agree
sub check_subscriber
{
	my ($what, $want_rows) = @_;
	my $q = "SELECT count(*) || ':' || coalesce(sum(id), 0) FROM r WHERE";
	my $want = $sub->safe_psql('postgres', "$seq $q k >= 0");
	is((split /:/, $want)[0], $want_rows, "$what: the subscriber has $want_rows rows");
	is($sub->safe_psql('postgres', "$idx $q k >= 0"), $want, "$what: index scan on r_k agrees");
	is($sub->safe_psql('postgres', "$bmp $q k >= 0"), $want, "$what: bitmap scan on r_k agrees");
	is($sub->safe_psql('postgres', "$idx $q t >= ''"), $want, "$what: index scan on r_t agrees");
	# point lookups of every row's key
	is($sub->safe_psql('postgres', "$idx SELECT count(*) FROM r r1
		WHERE (SELECT count(*) FROM r r2 WHERE r2.k = r1.k) <> 1"),
		'0', "$what: every key is found once by a point lookup");
	$sub->safe_psql('postgres', "SELECT fractal_check('r_k', true), fractal_check('r_t', true)");
	pass("$what: fractal_check passes");
}

# inserts, a TRUNCATE and inserts again, in one transaction
$pub->safe_psql('postgres', q{
BEGIN;
INSERT INTO r SELECT g, g, md5(g::text) FROM generate_series(1, 2000) g;
TRUNCATE r;
INSERT INTO r SELECT g, g + 10000, md5(g::text) FROM generate_series(1, 300) g;
COMMIT;
});
$pub->wait_for_catchup('s');
check_subscriber('insert, truncate, insert', 300);
is($sub->safe_psql('postgres', "$idx SELECT count(*) FROM r WHERE k BETWEEN 1 AND 2000"),
	'0', 'no entry of the truncated rows points at a new row');

# a rolled-back savepoint and more rows; then plain transactions
$pub->safe_psql('postgres', q{
BEGIN;
INSERT INTO r SELECT g, g + 20000, md5(g::text) FROM generate_series(1, 100) g;
SAVEPOINT a;
INSERT INTO r SELECT g, g + 30000, md5(g::text) FROM generate_series(1, 100) g;
ROLLBACK TO a;
INSERT INTO r SELECT g, g + 40000, md5(g::text) FROM generate_series(1, 100) g;
COMMIT;
});
$pub->safe_psql('postgres',
	'INSERT INTO r SELECT g, g + 50000, md5(g::text) FROM generate_series(1, 500) g');
$pub->wait_for_catchup('s');
check_subscriber('savepoint and plain transactions', 1000);

# the apply worker batched its inserts (this cluster preloads the library):
# 2 x (300 + 200 + 500) entries of live rows were appended, plus those of
# the truncated rows that reached the 32 kB bound before the TRUNCATE (r_t's
# 48-byte entries: 2 x 683; 3,366 in all); the rest of the 2 x 2000 were
# dropped at commit.  Appending every entry would count 6,000.
my $batched = $sub->safe_psql('postgres',
	"SELECT value FROM fractal_counters() WHERE name = 'batched_inserts'");
note "batched_inserts on the subscriber: $batched";
cmp_ok($batched, '>=', 2000, "the apply worker's inserts were batched");
cmp_ok($batched, '<', 6000, "the truncated rows' waiting entries were dropped, not appended");

$sub->stop;
$pub->stop;
done_testing();
