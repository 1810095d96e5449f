# Inserts during a slow VACUUM.  ambulkdelete holds the flush lock for its
# whole scan (src/README.md sections 7, 8), and flushers skip flushing
# while it is held, so with a throttled VACUUM on a large index every insert
# meanwhile piles up in the root's buffers; when VACUUM ends, the next
# insert inherits the whole backlog.  This test measures both effects with
# counters, never with time.
#
# Setup: 2,000,000 random int8 keys, CREATE INDEX, 100,000 more random
# inserts (buffers in their steady state), a plain VACUUM (hint bits and
# visibility map, so the slow VACUUM below spends its time in the index),
# 30 baseline batches of 100 random inserts, each counting the index blocks
# it touches (pg_stat_get_xact_blocks_fetched inside the batch's own
# transaction: the per-backend counter later flushed into
# pg_statio_user_indexes.idx_blks_hit + idx_blks_read).  Then the oldest
# ~10% of the rows are deleted (keys are random, so every leaf has dead
# entries) and `VACUUM vt` runs with vacuum_cost_delay = 20,
# vacuum_cost_limit = 100 in a background session while one pgbench client
# inserts 100-row batches of random keys (50 batches a second) as long as
# VACUUM has not finished its index pass.  Every second the root's buffer
# pages are sampled (fractal_level_stats' top level, and the root's own
# budget from its raw page via test/sql/node_buffers.sql), with the VACUUM
# phase.
#
# Asserted: VACUUM spent at least 5 samples in 'vacuuming indexes' (so the
# window mattered) with inserts going on; the root never held more than its
# budget + 8 buffer pages; none of the first 5 batches of 100 inserts after
# VACUUM touches more than 3x the blocks of the largest baseline batch; the
# index holds exactly the live rows (no crash, so no entry stored twice,
# src/README.md section 2); fractal_check(..., true) passes; equality,
# range and ORDER BY ... LIMIT (both directions) queries agree across
# index, bitmap and sequential scans.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep);

my $excess_allowed = 8;

my $node = PostgreSQL::Test::Cluster->new('vacbacklog');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fractal'
shared_buffers = 256MB
max_wal_size = 1GB
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE EXTENSION pageinspect;
CREATE TABLE vt (id bigserial, a int8);
INSERT INTO vt (a) SELECT (random() * 1e12)::int8 FROM generate_series(1, 2000000);
CREATE INDEX vt_a ON vt USING fractal (a);
INSERT INTO vt (a) SELECT (random() * 1e12)::int8 FROM generate_series(1, 100000);
VACUUM vt;
});
$node->safe_psql('postgres', slurp_file('test/sql/node_buffers.sql'));
$node->safe_psql('postgres', slurp_file('test/sql/diff_functions.sql'));

my $batch_sql = 'INSERT INTO vt (a) SELECT (random() * 1e12)::int8 FROM generate_series(1, 100)';

# index blocks touched by one batch of 100 random inserts, in a new session
sub batch_blocks
{
	my ($before, $after) = split /\n/, $node->safe_psql('postgres', qq{
		BEGIN;
		SELECT pg_stat_get_xact_blocks_fetched('vt_a'::regclass);
		$batch_sql;
		SELECT pg_stat_get_xact_blocks_fetched('vt_a'::regclass);
		COMMIT;});
	return $after - $before;
}

my @base = map { batch_blocks() } 1 .. 30;
my $base_max = (sort { $b <=> $a } @base)[0];
my $base_median = (sort { $a <=> $b } @base)[15];
diag "baseline batches (index blocks touched): @base";
my $stats = $node->safe_psql('postgres', q{
	SELECT string_agg(level || ':' || nodes || 'n/' || buffer_pages || 'p', ' ' ORDER BY level DESC)
	  FROM fractal_level_stats('vt_a')});
diag "before VACUUM: levels $stats; "
  . $node->safe_psql('postgres', "SELECT 'root budget ' || budget || ', root buffer pages ' || buffer_pages FROM fr_node_buffers('vt_a', true)");

my $deleted = $node->safe_psql('postgres', q{
	WITH d AS (DELETE FROM vt WHERE id <= (SELECT count(*) / 10 FROM vt) RETURNING 1)
	SELECT count(*) FROM d});
note "deleted $deleted rows";

# the insert load: 100-row batches while VACUUM has not finished its index pass
my $dir = $node->basedir;
PostgreSQL::Test::Utils::append_to_file("$dir/during.sql", qq{
SELECT count(*) AS busy FROM pg_stat_progress_vacuum
 WHERE relid = 'vt'::regclass AND phase IN ('initializing', 'scanning heap', 'vacuuming indexes') \\gset
\\if :busy > 0
$batch_sql;
\\else
\\sleep 50 ms
\\endif
});
my $count_before = $node->safe_psql('postgres', 'SELECT count(*) FROM vt');
my ($lout, $lerr) = ('', '');
my $load = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '1', '-R', '50', '-T', '900', '-f', "$dir/during.sql",
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$lout, '2>', \$lerr);

my $vac = $node->background_psql('postgres');
my $vac_pid = $vac->query_safe('SELECT pg_backend_pid()');
$vac->query_safe('SET vacuum_cost_delay = 20');
$vac->query_safe('SET vacuum_cost_limit = 100');
$vac->query_until(qr/vacuum-start/, "\\echo vacuum-start\nVACUUM vt;\n\\echo vacuum-done\n");
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_progress_vacuum WHERE pid = $vac_pid"),
	'the throttled VACUUM started');

my (@samples, %phase_samples);
my ($max_root, $max_excess, $max_at) = (0, -1e9, '');
for (my $i = 0; $i < 900; $i++)
{
	my ($phase, $state, $root_pages, $budget, $top_pages) = split /\|/, $node->safe_psql('postgres', qq{
		SELECT coalesce((SELECT phase FROM pg_stat_progress_vacuum WHERE pid = $vac_pid), 'done'),
			   (SELECT state FROM pg_stat_activity WHERE pid = $vac_pid),
			   r.buffer_pages, r.budget,
			   (SELECT buffer_pages FROM fractal_level_stats('vt_a') ORDER BY level DESC LIMIT 1)
		  FROM fr_node_buffers('vt_a', true) r});
	last if $phase eq 'done' && $state eq 'idle';
	push @samples, "$phase:$top_pages";
	$phase_samples{$phase}++;
	note "sample $i: phase '$phase', root buffer pages $root_pages (level stats $top_pages), budget $budget";
	if ($root_pages - $budget > $max_excess)
	{
		($max_excess, $max_root, $max_at) = ($root_pages - $budget, $root_pages,
			"sample $i ($phase): $root_pages pages, budget $budget");
	}
	sleep(1);
}
$vac->quit;
$load->kill_kill;
my $during = $node->safe_psql('postgres', 'SELECT count(*) FROM vt') - $count_before;

diag "samples (phase:root buffer pages): @samples";
diag "inserted during VACUUM: $during rows; largest root backlog: $max_at";
unlike($lerr, qr/ERROR|FATAL|PANIC/, 'the insert load saw no error');
cmp_ok($phase_samples{'vacuuming indexes'} // 0, '>=', 5,
	'VACUUM spent at least 5 one-second samples in its index pass');
cmp_ok($during, '>=', 1000, 'inserts went on during VACUUM');
cmp_ok($max_excess, '<=', $excess_allowed,
	"the root's buffers stayed within budget + $excess_allowed during VACUUM (worst: $max_at)");

# a batch only flushes when it links a new root chain page, so the
# backlog lands on one of the first few batches: take the largest of 5
my @after = map { batch_blocks() } 1 .. 5;
my $after_max = (sort { $b <=> $a } @after)[0];
diag "after VACUUM: batches touched @after index blocks; baseline max $base_max, median $base_median";
cmp_ok($after_max, '<=', 3 * $base_max,
	"none of the first 5 batches after VACUUM touches more than 3x the blocks of the largest baseline batch ($after_max vs $base_max)");
$stats = $node->safe_psql('postgres', q{
	SELECT string_agg(level || ':' || nodes || 'n/' || buffer_pages || 'p', ' ' ORDER BY level DESC)
	  FROM fractal_level_stats('vt_a')});
diag "after VACUUM and 5 batches: levels $stats";

is($node->safe_psql('postgres',
		"SELECT leaf_entries + buffered_messages - (SELECT count(*) FROM vt) FROM fractal_stats('vt_a')"),
	'0', 'the index holds exactly the live rows');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT fractal_check('vt_a', true)");
is($ret, 0, 'fractal_check(vt_a, true) passes');
diag "fractal_check: $err" if $ret;

my $agg = "SELECT count(*) || ':' || coalesce(sum(id), 0) FROM vt WHERE";
my @queries = ("$agg a >= 0", "$agg a < 1000000000");
for my $r (split /\n/, $node->safe_psql('postgres', 'SELECT a FROM vt ORDER BY random() LIMIT 5'))
{
	my $r2 = $r + 2000000000;
	push @queries,
	  "$agg a = $r",
	  "$agg a = " . ($r + 1),
	  "$agg a BETWEEN $r AND $r2",
	  "SELECT string_agg(a::text, ',') FROM (SELECT a FROM vt WHERE a >= $r ORDER BY a LIMIT 30) s",
	  "SELECT string_agg(a::text, ',') FROM (SELECT a FROM vt WHERE a <= $r ORDER BY a DESC LIMIT 30) s";
}
my $bad = 0;
for my $q (@queries)
{
	my $r = $node->safe_psql('postgres', "SELECT fr_diff_check(\$q\$$q\$q\$, 'vt_a', true)");
	if ($r ne '')
	{
		$bad++;
		diag $r;
	}
}
is($bad, 0, scalar(@queries) . ' queries agree across index, bitmap and seq scans');

$node->stop;
done_testing();
