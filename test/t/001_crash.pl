# Crash recovery: kill the server (immediate stop) in the middle of a
# concurrent insert load that keeps flushing buffers and splitting pages,
# restart, and check that every committed row is found through each fractal
# index exactly once (the load's inserts into c are batched in backend
# memory until commit, some inside a rolled-back savepoint, fr_pending.c), that point lookups (which leaf filters may answer)
# equal a seqscan's and fractal_check passes, that a UNIQUE fractal index loaded with INSERT ... ON
# CONFLICT DO NOTHING (many repeats) holds no duplicate and loses no
# committed row, that an in-memory three-level index whose root is flushed
# under a share lock (fr_rootflush.c) finds every row once, that a
# compressed index on the serial id (in-order keys: the rightmost leaf moves
# into its left sibling, fr_split.c) finds every row once, and that an
# unlogged table's index comes back empty and usable.  Rounds 1-3 run without shared_preload_libraries (generic WAL
# only), rounds 4-6 with the library preloaded (custom WAL records for the
# hot paths).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_buffers = 16MB
checkpoint_timeout = 30s
max_wal_size = 64MB
wal_keep_size = 512MB
log_min_messages = warning
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE TABLE c (id bigserial, a int8, b text);
CREATE INDEX c_a ON c USING fractal (a) WITH (buffer_pages = 6, partition_children = 4, compression = none);
CREATE INDEX c_ba ON c USING fractal (b, a) WITH (buffer_pages = 8);
CREATE INDEX c_id ON c USING fractal (id) WITH (compression = zstd);
CREATE TABLE q (id bigserial, k int8);
CREATE UNIQUE INDEX q_k ON q USING fractal (k) WITH (buffer_pages = 6);
CREATE UNLOGGED TABLE u (a int8);
CREATE INDEX u_a ON u USING fractal (a) WITH (buffer_pages = 4);
CREATE TABLE w (id bigserial, t text);
});

# w_t: wide keys, so that a few thousand rows make a three-level tree that
# stays in memory, whose root is flushed under a share lock (fr_rootflush.c)
# while the load runs; rebuilt small at the start of every round
sub fresh_w
{
	$node->safe_psql('postgres', q{
	DROP INDEX IF EXISTS w_t;
	TRUNCATE w;
	INSERT INTO w (t) SELECT repeat(md5(g::text), 6) FROM generate_series(1, 3000) g;
	CREATE INDEX w_t ON w USING fractal (t) WITH (buffer_pages = 4);
	});
}

my $script = $node->basedir . '/load.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
INSERT INTO c (a, b) SELECT (random() * 1e12)::int8, md5(random()::text) FROM generate_series(1, 40);
BEGIN;
INSERT INTO c (a, b) SELECT (random() * 1e12)::int8, md5(random()::text) FROM generate_series(1, 20);
SAVEPOINT s;
INSERT INTO c (a, b) SELECT -1 - (random() * 1e12)::int8, 'rolled back' FROM generate_series(1, 20);
ROLLBACK TO s;
INSERT INTO c (a, b) SELECT (random() * 1e12)::int8, md5(random()::text) FROM generate_series(1, 20);
COMMIT;
INSERT INTO u SELECT (random() * 1e9)::int8 FROM generate_series(1, 20);
INSERT INTO q (k) SELECT (random() * 300000)::int8 FROM generate_series(1, 30) ON CONFLICT (k) DO NOTHING;
INSERT INTO w (t) SELECT repeat(md5(random()::text), 6) FROM generate_series(1, 2);
});

# digest of the rows found with the given planner settings
sub digest
{
	my ($settings, $where) = @_;
	return $node->safe_psql('postgres',
		"$settings SELECT count(*) || ':' || coalesce(sum(id), 0) || ':' || coalesce(sum(a % 1000003), 0) FROM c WHERE $where");
}
my $seq = 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
my $idx = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
my $bmp = 'SET enable_seqscan = off; SET enable_indexscan = off;';

for my $round (1 .. 6)
{
	my ($out, $err) = ('', '');
	if ($round == 4)
	{
		$node->append_conf('postgresql.conf', "shared_preload_libraries = 'fractal'");
		$node->restart;
		is($node->safe_psql('postgres', "SELECT count(*) FROM pg_get_wal_resource_managers() WHERE rm_name = 'fractal'"),
			'1', 'custom resource manager registered');
	}
	fresh_w();
	is($node->safe_psql('postgres', "SELECT height >= 2 FROM fractal_stats('w_t')"),
		't', "round $round: w_t has a root above level 1");
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '4', '-j', '2', '-T', '120',
			'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	# let the load run; flushes happen every few hundred inserts
	sleep(2 + $round);
	my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM c');
	my $q_before = $node->safe_psql('postgres', 'SELECT count(*) FROM q');
	# just restarted with the library preloaded, so every leaf was cold:
	# flushes asked for their leaves to be read ahead (fr_flush_prefetch,
	# fr_flush_warm)
	if ($round == 4)
	{
		cmp_ok($node->safe_psql('postgres',
				"SELECT value FROM fractal_counters() WHERE name = 'flush_prefetches'"),
			'>', 0, 'round 4: flushes into cold leaves started reads ahead');
		# ... and read them before locking the node (fr_flush_warm)
		cmp_ok($node->safe_psql('postgres',
				"SELECT value FROM fractal_counters() WHERE name = 'flush_warm_reads'"),
			'>', 0, 'round 4: flushes read cold pages before locking their node');
		# ... and the first descents read the cold root and other nodes,
		# counted by page kind (fr_count_page_read)
		cmp_ok($node->safe_psql('postgres',
				"SELECT value FROM fractal_counters() WHERE name = 'node_blocks_read'"),
			'>', 0, 'round 4: reads of cold nodes are counted as node_blocks_read');
	}
	# w_t's root was flushed under a share lock during the load
	if ($round >= 4)
	{
		cmp_ok($node->safe_psql('postgres',
				"SELECT value FROM fractal_counters() WHERE name = 'root_shared_flushes'"),
			'>', 0, "round $round: roots flushed under a share lock before the crash");
	}
	$node->stop('immediate');
	$h->kill_kill;
	$node->start;

	my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM c');
	cmp_ok($rows, '>=', $before, "round $round: committed rows survived the crash ($rows)");

	# preloaded, flushes from above level 1 log moves naming their source
	# pages (fr_move.c): the recovery just done replayed some (the WAL it
	# read is kept by wal_keep_size)
	if ($round >= 4)
	{
		my $log = slurp_file($node->logfile);
		my @from = ($log =~ /redo starts at ([0-9A-F]+\/[0-9A-F]+)/g);
		my @to = ($log =~ /redo done at ([0-9A-F]+\/[0-9A-F]+)/g);
		$node->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS pg_walinspect');
		cmp_ok($node->safe_psql('postgres', qq{
			SELECT count(*) FROM pg_get_wal_records_info('$from[-1]', '$to[-1]')
			 WHERE resource_manager = 'fractal' AND record_type = 'MOVE_ITEMS'}),
			'>', 0, "round $round: recovery replayed moves between buffer chains");
	}

	my $want = digest($seq, 'a IS NOT NULL');
	is(digest($idx, 'a >= 0'), $want, "round $round: index scan on c_a finds every row once");
	is(digest($bmp, 'a >= 0'), $want, "round $round: bitmap scan on c_a finds every row once");
	my $want_b = digest($seq, "b >= ''");
	is(digest($idx, "b >= ''"), $want_b, "round $round: index scan on c_ba finds every row once");
	# c_id: ids in order into a compressed index, whose rightmost leaf moves
	# into its left sibling or is compressed behind a new one (fr_split.c)
	is(digest($idx, 'id > 0'), digest($seq, 'id > 0'), "round $round: index scan on c_id finds every row once");
	# rows of the rolled-back savepoints (a < 0) exist for no scan
	is(digest($seq, 'a < 0') . ' ' . digest($idx, 'a < 0'), '0:0:0 0:0:0',
		"round $round: rolled-back savepoint rows are found by neither scan");

	# point lookups of a sample of committed rows through the index
	my $missing = $node->safe_psql('postgres', qq{
		SET enable_seqscan = off; SET enable_bitmapscan = off;
		SELECT count(*) FROM (SELECT a FROM c TABLESAMPLE SYSTEM (5) LIMIT 200) s
		WHERE (SELECT count(*) FROM c c2 WHERE c2.a = s.a) = 0});
	is($missing, '0', "round $round: sampled rows are found by point lookups");
	# ... and lookups of keys next to them (mostly absent: the leaf filters
	# rule them out) count what a seqscan counts
	my $near = q{SELECT string_agg((SELECT count(*) FROM c c2 WHERE c2.a = s.a + 1)::text, ',' ORDER BY s.a)
		FROM (SELECT a FROM c WHERE id % 50 = 0 ORDER BY id LIMIT 200) s};
	is($node->safe_psql('postgres', "SET enable_seqscan = off; SET enable_bitmapscan = off; $near"),
		$node->safe_psql('postgres', "$seq $near"),
		"round $round: lookups of neighbouring keys equal a seqscan's");
	# the leaf filters (and everything else) verify
	$node->safe_psql('postgres', "SELECT fractal_check('c_a', true), fractal_check('q_k', true), fractal_check('c_id', true)");
	pass("round $round: fractal_check passes on c_a, q_k and c_id");
	# w_t, crashed in the middle of share-locked root flushes: every row
	# once, and its chains (emptied pages, cut chains) verify
	my $wq = "SELECT count(*) || ':' || sum(id) || ':' || sum(length(t)) FROM w WHERE t >= ''";
	is($node->safe_psql('postgres', "$idx $wq"), $node->safe_psql('postgres', "$seq $wq"),
		"round $round: index scan on w_t finds every row once");
	$node->safe_psql('postgres', "SELECT fractal_check('w_t', true)");
	pass("round $round: fractal_check passes on w_t");

	# the unique index: no key twice, every committed row found once
	my $qrows = $node->safe_psql('postgres', 'SELECT count(*) FROM q');
	cmp_ok($qrows, '>=', $q_before, "round $round: committed rows of q survived ($qrows)");
	is($node->safe_psql('postgres', 'SELECT count(*) = count(DISTINCT k) FROM q'), 't',
		"round $round: no duplicate keys in the unique table");
	is($node->safe_psql('postgres',
			"$idx SELECT count(*) || ':' || sum(id) FROM q WHERE k >= 0"),
		$node->safe_psql('postgres',
			"$seq SELECT count(*) || ':' || sum(id) FROM q WHERE k >= 0"),
		"round $round: index scan on q_k finds every row once");
	my ($rc, $qout, $qerr) = $node->psql('postgres',
		'INSERT INTO q (k) SELECT k FROM q ORDER BY id DESC LIMIT 1');
	like($qerr, qr/duplicate key value violates unique constraint "q_k"/,
		"round $round: the unique index still refuses a duplicate");

	# the unlogged table and its index come back empty and usable
	is($node->safe_psql('postgres', 'SELECT count(*) FROM u'), '0',
		"round $round: unlogged table is empty after the crash");
	$node->safe_psql('postgres',
		'INSERT INTO u SELECT g FROM generate_series(1, 3000) g');
	is($node->safe_psql('postgres',
		"$idx SELECT count(*) FROM u WHERE a BETWEEN 100 AND 199"),
		'100', "round $round: unlogged index usable after the crash");
}

my $stats = $node->safe_psql('postgres',
	"SELECT height >= 1 AND buffered_messages + leaf_entries >= (SELECT count(*) FROM c) FROM fractal_stats('c_a')");
is($stats, 't', 'index holds at least every row after the crashes');

# the crashes hit an index that keeps leaf filter pages (FR_LFILTERS = 512)
$node->safe_psql('postgres', 'CREATE EXTENSION pageinspect');
$node->safe_psql('postgres', slurp_file('test/sql/node_buffers.sql'));
cmp_ok($node->safe_psql('postgres', "SELECT fr_leaf_filter_pages('c_a')"), '>', 0,
	'c_a has leaf filter pages');

# c_a outgrew a quarter of shared_buffers (16MB) by round 4 (the read-ahead
# above needs that too), so its flushes appended to child chains both ways:
# unsorted tails sealed later while it was small, sorted pages after
cmp_ok($node->safe_psql('postgres', "SELECT pg_relation_size('c_a') / 8192"), '>=', 512,
	'c_a is larger than a quarter of shared_buffers');
# c_ba has the default compression, auto: zstd leaves once it took a quarter
# of shared_buffers (512 pages), which it did early (c_a, forced plain, is
# the plain index of this test)
is($node->safe_psql('postgres', "SELECT pg_relation_size('c_ba') / 8192 >= 512 AND compressed_leaf_pages > 0 FROM fractal_stats('c_ba')"),
	't', 'c_ba (compression auto) grew past a quarter of shared_buffers and compressed its leaves');
for my $idx ('c_a', 'c_ba')
{
	my ($rc, $o, $e) = $node->psql('postgres', "SELECT fractal_check('$idx', true)");
	is($rc . $e, '0', "fractal_check('$idx') passes after the crashes");
}

$node->stop;
done_testing();
