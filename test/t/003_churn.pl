# Space reuse under churn: on a fixed-size working set of 200,000 rows, 20
# rounds of (insert 50,000 random keys, delete the 50,000 oldest rows,
# VACUUM).  The fractal index must stop growing: its size after round 20
# is at most 1.5 times its size after round 5.  The same churn runs on a
# btree index for comparison (reported, not asserted).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('churn');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fractal'
shared_buffers = 64MB
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE TABLE cf (id bigserial, a int8);
CREATE INDEX cf_a ON cf USING fractal (a);
CREATE TABLE cb (id bigserial, a int8);
CREATE INDEX cb_a ON cb (a);
INSERT INTO cf (a) SELECT (random() * 1e15)::int8 FROM generate_series(1, 200000);
INSERT INTO cb (a) SELECT (random() * 1e15)::int8 FROM generate_series(1, 200000);
});

my (%size_f, %size_b);
for my $round (1 .. 20)
{
	for my $t ('cf', 'cb')
	{
		$node->safe_psql('postgres', qq{
			INSERT INTO $t (a) SELECT (random() * 1e15)::int8 FROM generate_series(1, 50000);
			DELETE FROM $t WHERE id <= (SELECT min(id) + 49999 FROM $t);
			VACUUM $t;});
	}
	$size_f{$round} = $node->safe_psql('postgres', "SELECT pg_relation_size('cf_a')");
	$size_b{$round} = $node->safe_psql('postgres', "SELECT pg_relation_size('cb_a')");
	note sprintf("round %2d: fractal %6.2f MB, btree %6.2f MB", $round,
		$size_f{$round} / 1048576, $size_b{$round} / 1048576);
}

is($node->safe_psql('postgres', 'SELECT count(*) FROM cf'), '200000', 'working set stays 200,000 rows');
my $ratio = $size_f{20} / $size_f{5};
diag sprintf("fractal index: %.2f MB after round 5, %.2f MB after round 20 (x%.2f); btree: %.2f MB -> %.2f MB (x%.2f)",
	$size_f{5} / 1048576, $size_f{20} / 1048576, $ratio,
	$size_b{5} / 1048576, $size_b{20} / 1048576, $size_b{20} / $size_b{5});
cmp_ok($ratio, '<=', 1.5, 'fractal index size after round 20 is within 1.5x of round 5');

my $stats = $node->safe_psql('postgres',
	"SELECT leaf_entries + buffered_messages FROM fractal_stats('cf_a')");
is($stats, '200000', 'the index holds exactly the live rows');
$node->safe_psql('postgres', "SELECT fractal_check('cf_a', true)");
pass('fractal_check passes after the churn');
my $seq = $node->safe_psql('postgres',
	'SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(id) FROM cf WHERE a < 300000000000000');
my $idx = $node->safe_psql('postgres',
	'SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(id) FROM cf WHERE a < 300000000000000');
is($idx, $seq, 'index scan equals seqscan after the churn');

$node->stop;
done_testing();
