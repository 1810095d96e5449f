# Concurrency stress: 8 pgbench clients for 60 s mixing inserts, point and
# range selects and deletes on a table with two fractal indexes, while
# another client runs VACUUM every few seconds.  No client may see an
# error, and point lookups of rows that are never deleted always find them
# (a lookup that came back empty fails its transaction with a division by
# zero), whatever flushes (the roots' under a share lock, fr_rootflush.c),
# splits and leaf filter updates run meanwhile; afterwards fractal_check(..., true) passes and generated queries
# through the indexes return what a sequential scan returns.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('stress');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fractal'
shared_buffers = 32MB
max_connections = 30
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE TABLE st (id bigserial, a int8, b text);
CREATE INDEX st_a ON st USING fractal (a) WITH (buffer_pages = 6, partition_children = 4);
CREATE INDEX st_ba ON st USING fractal (b, a) WITH (buffer_pages = 8);
INSERT INTO st (a, b) SELECT (random() * 1e9)::int8, md5(g::text) FROM generate_series(1, 50000) g;
-- rows never deleted: point lookups during the load must always find them
INSERT INTO st (a, b) SELECT g * 499979, 'stable' FROM generate_series(1, 2000) g;
});

my $dir = $node->basedir;
PostgreSQL::Test::Utils::append_to_file("$dir/insert.sql", q{
INSERT INTO st (a, b) SELECT (random() * 1e9)::int8, md5(random()::text) FROM generate_series(1, 20);
});
PostgreSQL::Test::Utils::append_to_file("$dir/point.sql", q{
\set k random(0, 1000000000)
SELECT count(*) FROM st WHERE a = :k;
SELECT count(*) FROM st WHERE a BETWEEN :k AND :k + 100000;
\set g random(1, 2000)
SELECT 1 / count(*) FROM st WHERE a = :g * 499979;
});
PostgreSQL::Test::Utils::append_to_file("$dir/range.sql", q{
\set k random(0, 1000000000)
SELECT sum(a) FROM (SELECT a FROM st WHERE a >= :k ORDER BY a LIMIT 50) s;
SELECT count(*) FROM (SELECT b FROM st WHERE b >= md5(:k::text) ORDER BY b DESC LIMIT 20) s;
});
PostgreSQL::Test::Utils::append_to_file("$dir/delete.sql", q{
\set r random(0, 96)
DELETE FROM st WHERE id IN (SELECT id FROM st WHERE a % 97 = :r AND b <> 'stable' LIMIT 15);
});
PostgreSQL::Test::Utils::append_to_file("$dir/vacuum.sql", q{
VACUUM st;
\sleep 4 s
});

my @conn = ('-h', $node->host, '-p', $node->port, 'postgres');
my ($out1, $err1, $out2, $err2) = ('', '', '', '');
my $load = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '8', '-j', '2', '-T', '60',
		'-f', "$dir/insert.sql\@5", '-f', "$dir/point.sql\@2",
		'-f', "$dir/range.sql\@2", '-f', "$dir/delete.sql\@1", @conn
	],
	'>', \$out1, '2>', \$err1);
my $vac = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '1', '-T', '60', '-f', "$dir/vacuum.sql", @conn ],
	'>', \$out2, '2>', \$err2);
$load->finish;
$vac->finish;

is($load->result(0), 0, 'load pgbench exited cleanly');
is($vac->result(0), 0, 'vacuum pgbench exited cleanly');
like($out1, qr/number of failed transactions: 0 /, 'no failed transactions in the load');
unlike($err1 . $err2, qr/ERROR|FATAL|PANIC/, 'no errors reported by the clients');
my ($tx) = $out1 =~ /number of transactions actually processed: (\d+)/;
diag "load: $tx transactions in 60 s";
cmp_ok($tx, '>', 1000, 'the load made progress');

# the roots were flushed under a share lock while the clients ran
# (fr_rootflush.c: both indexes are in memory with roots above level 1)
cmp_ok($node->safe_psql('postgres', q{
	SELECT max(height) FROM (SELECT height FROM fractal_stats('st_a')
	  UNION ALL SELECT height FROM fractal_stats('st_ba')) h}),
	'>=', 2, 'a root above level 1');
cmp_ok($node->safe_psql('postgres',
		"SELECT value FROM fractal_counters() WHERE name = 'root_shared_flushes'"),
	'>', 0, 'root flushes ran under a share lock during the load');

$node->safe_psql('postgres', 'VACUUM st');
$node->safe_psql('postgres', "SELECT fractal_check('st_a', true)");
pass('fractal_check(st_a, true) passes');
$node->safe_psql('postgres', "SELECT fractal_check('st_ba', true)");
pass('fractal_check(st_ba, true) passes');
is($node->safe_psql('postgres',
		"SELECT leaf_entries + buffered_messages = (SELECT count(*) FROM st) FROM fractal_stats('st_a')"),
	't', 'after VACUUM the index holds exactly the live rows');

# generated queries: index scan, bitmap scan and seqscan must agree
my $seq = 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
my $idx = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
my $bmp = 'SET enable_seqscan = off; SET enable_indexscan = off;';
my $bad = 0;
srand(42);
for my $i (1 .. 150)
{
	my $k = int(rand(1e9));
	my $k2 = $k + int(rand(5e7));
	my $h = sprintf('%x', int(rand(16)));
	my @q = (
		"SELECT count(*) || ':' || coalesce(sum(id), 0) FROM st WHERE a BETWEEN $k AND $k2",
		"SELECT count(*) || ':' || coalesce(sum(id), 0) FROM st WHERE a = $k OR a < " . int($k / 50),
		"SELECT array_agg(a)::text FROM (SELECT a FROM st WHERE a >= $k ORDER BY a LIMIT 20) s",
		"SELECT array_agg(a)::text FROM (SELECT a FROM st WHERE a <= $k ORDER BY a DESC LIMIT 20) s",
		"SELECT count(*) || ':' || coalesce(sum(id), 0) FROM st WHERE b >= '$h' AND b < '$h' || 'f'");
	my $q = $q[$i % @q];
	my $want = $node->safe_psql('postgres', "$seq $q");
	for my $mode ($idx, $bmp)
	{
		my $got = $node->safe_psql('postgres', "$mode $q");
		if ($got ne $want)
		{
			$bad++;
			diag "mismatch: $q: seq=$want got=$got";
		}
	}
}
is($bad, 0, '150 generated queries agree across index, bitmap and seq scans');

$node->stop;
done_testing();
