# UNIQUE fractal indexes under concurrency: 8 pgbench clients for 30 s
# upserting, inserting with ON CONFLICT DO NOTHING, inserting plainly (a
# unique_violation is caught and counted) and deleting keys from a small key
# space, so that the same keys are raced for all the time, while another
# client runs VACUUM.  Afterwards no key is held twice, the index agrees
# with a sequential scan and fractal_check passes.  Run twice: without
# shared_preload_libraries (generic WAL; the ON CONFLICT hook is installed
# when the index is first opened) and preloaded.  Also shows what a fresh
# session's first statement gets when it is an ON CONFLICT without a
# conflict target and the library is not loaded yet (see README.md).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('unique');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_buffers = 32MB
max_connections = 30
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE TABLE uk (k int, v int, n int DEFAULT 0);
CREATE UNIQUE INDEX uk_k ON uk USING fractal (k) WITH (buffer_pages = 4);
CREATE INDEX uk_v ON uk USING fractal (v);
CREATE TABLE caught (n int);
});

my $dir = $node->basedir;
PostgreSQL::Test::Utils::append_to_file("$dir/upsert.sql", q{
\set k random(1, 3000)
INSERT INTO uk VALUES (:k, 1) ON CONFLICT (k) DO UPDATE SET n = uk.n + 1;
});
PostgreSQL::Test::Utils::append_to_file("$dir/nothing.sql", q{
\set k random(1, 3000)
INSERT INTO uk VALUES (:k, 2), (:k + 1, 2), (:k + 2, 2) ON CONFLICT (k) DO NOTHING;
});
PostgreSQL::Test::Utils::append_to_file("$dir/plain.sql", q{
\set k random(1, 3000)
DO $$ BEGIN INSERT INTO uk VALUES (:k, 3); EXCEPTION WHEN unique_violation THEN INSERT INTO caught VALUES (1); END $$;
});
PostgreSQL::Test::Utils::append_to_file("$dir/delete.sql", q{
\set k random(1, 3000)
DELETE FROM uk WHERE k BETWEEN :k AND :k + 3;
});
PostgreSQL::Test::Utils::append_to_file("$dir/vacuum.sql", q{
VACUUM uk;
\sleep 3 s
});

my @conn = ('-h', $node->host, '-p', $node->port, 'postgres');
for my $mode ('generic', 'preloaded')
{
	if ($mode eq 'preloaded')
	{
		$node->append_conf('postgresql.conf', "shared_preload_libraries = 'fractal'");
		$node->restart;
	}
	else
	{
		# a fresh session whose first statement is an ON CONFLICT without a
		# conflict target: nothing has loaded the library yet, so PostgreSQL
		# 15 refuses the unique fractal index itself
		my ($rc, $o, $e) = $node->psql('postgres',
			'INSERT INTO uk VALUES (0, 0) ON CONFLICT DO NOTHING');
		like($e, qr/unexpected non-btree speculative unique index/,
			'generic: first-statement ON CONFLICT without a target needs the library loaded');
		# the same with a target (the planner opens the index, loading it)
		is($node->safe_psql('postgres',
				'INSERT INTO uk VALUES (0, 0) ON CONFLICT (k) DO NOTHING; SELECT count(*) FROM uk'),
			'1', 'generic: ON CONFLICT with a target works in a fresh session');
	}
	my ($out1, $err1, $out2, $err2) = ('', '', '', '');
	my $load = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '8', '-j', '2', '-T', '30',
			'-f', "$dir/upsert.sql\@4", '-f', "$dir/nothing.sql\@3",
			'-f', "$dir/plain.sql\@2", '-f', "$dir/delete.sql\@1", @conn
		],
		'>', \$out1, '2>', \$err1);
	my $vac = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '1', '-T', '30', '-f', "$dir/vacuum.sql", @conn ],
		'>', \$out2, '2>', \$err2);
	$load->finish;
	$vac->finish;

	is($load->result(0), 0, "$mode: load pgbench exited cleanly");
	like($out1, qr/number of failed transactions: 0 /, "$mode: no failed transactions");
	unlike($err1 . $err2, qr/ERROR|FATAL|PANIC/, "$mode: no errors reported by the clients");
	my ($tx) = $out1 =~ /number of transactions actually processed: (\d+)/;
	diag "$mode: $tx transactions in 30 s";
	cmp_ok($tx, '>', 1000, "$mode: the load made progress");
	cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM caught'), '>', 0,
		"$mode: plain inserts met unique violations");
	cmp_ok($node->safe_psql('postgres', 'SELECT sum(n) FROM uk'), '>', 0,
		"$mode: upserts updated existing rows");

	is($node->safe_psql('postgres', 'SELECT count(*) = count(DISTINCT k) FROM uk'), 't',
		"$mode: no key is held twice");
	if ($mode eq 'preloaded')
	{
		# both paths of fr_unique_insert ran: lookups, and checks skipped
		# after an ON CONFLICT pre-check found the key absent
		is($node->safe_psql('postgres',
				"SELECT count(*) FILTER (WHERE value > 0) FROM fractal_counters() "
				  . "WHERE name IN ('unique_checks', 'unique_checks_skipped')"),
			'2', "$mode: checks both looked keys up and skipped pre-checked ones");
	}
	my $seq = 'SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off;';
	my $idx = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
	my $q = "SELECT count(*) || ':' || sum(k) || ':' || sum(n) FROM uk WHERE k >= 0";
	is($node->safe_psql('postgres', "$idx $q"), $node->safe_psql('postgres', "$seq $q"),
		"$mode: index scan agrees with a seqscan");
	$node->safe_psql('postgres', 'VACUUM uk');
	$node->safe_psql('postgres', "SELECT fractal_check('uk_k', true)");
	pass("$mode: fractal_check(uk_k, true) passes");
	my ($rc, $o, $e) = $node->psql('postgres', 'INSERT INTO uk SELECT k, 9 FROM uk LIMIT 1');
	like($e, qr/duplicate key value violates unique constraint "uk_k"/,
		"$mode: a duplicate is still refused");
}

$node->stop;
done_testing();
