# Backend private memory stays bounded by something other than the index
# size.  Linux only: the backend's RssAnon (private anonymous memory: palloc,
# malloc; shared buffers count as RssShmem) is read from /proc/<pid>/status
# every 50 ms while the statement runs in its own psql session, and the peak
# growth over the session's RssAnon just before the statement is compared
# with a fixed bound.
#
# 1. fractal_check(idx, true) on 120,000 rows of 800-byte text keys that
#    compress well (repeat(md5(g::text), 25), column storage `main`): the
#    index stores every key compressed inline (~9 MB of index for ~96 MB of
#    keys), so checking an entry detoasts its key.  A build that kept each
#    detoasted copy until the end of the check grew by the keys'
#    decompressed size (~240 MB here; 630 MB on 310,000 rows).  Asserted:
#    the index really is far smaller than its raw keys, the check passes, and
#    its peak RssAnon growth stays below 64 MB (about 1 MB when fixed).
#
# 2. VACUUM of a zstd-compressed index on 2,000,000 random int8 keys after
#    deleting every 50th row (so every leaf has dead entries).  A build that
#    allocated an 8-byte-per-entry array for each compressed leaf during
#    bulk delete and never freed it grew by ~16 MB (8 bytes per entry).
#    Asserted: VACUUM's peak RssAnon growth stays below 5 MB (about 1.3 MB
#    when fixed: dead TIDs, zstd contexts), and the index afterwards holds
#    exactly the live rows.  Every 50th rather than every 10th row is deleted
#    to keep VACUUM's own dead-TID array (6 bytes per dead row) small next to
#    the leak.
#
# 3. One INSERT of 150,000 rows with 320-byte keys that do not compress (ten
#    md5s) into a plain fractal index, in one transaction: its entries are
#    batched in backend memory (fr_pending.c), ~48 MB of them if the batch
#    had no bound.  Asserted: the INSERT's peak RssAnon growth stays below
#    16 MB (the bound is 32 kB per index), and every row is found through
#    the index afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep time);

plan skip_all => 'reads /proc/<pid>/status (Linux only)'
  unless -r "/proc/$$/status";

my $check_bound_kb = 64 * 1024;
my $vacuum_bound_kb = 5 * 1024;

my $node = PostgreSQL::Test::Cluster->new('membounds');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fractal'
shared_buffers = 128MB
max_wal_size = 1GB
autovacuum = off
});
$node->start;

# RssAnon of a process, in kB
sub rss_anon_kb
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/status") or return undef;
	while (my $line = <$fh>)
	{
		if ($line =~ /^RssAnon:\s+(\d+)\s+kB/)
		{
			close($fh);
			return $1;
		}
	}
	close($fh);
	return undef;
}

# Runs $sql in a new session, sampling its backend's RssAnon every 50 ms
# until the statement ends.  Returns (baseline kB, peak kB, samples,
# seconds, psql exit code, psql stderr).
sub peak_rss_during
{
	my ($sql) = @_;
	my ($in, $out, $err) = ("SELECT pg_backend_pid();\n", '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$h->pump until $out =~ /^(\d+)\n/;
	my $pid = $1;
	my $base = rss_anon_kb($pid);
	my ($peak, $n) = ($base, 0);
	my $t0 = time;
	$in .= "$sql;\n\\q\n";
	while ($h->pumpable)
	{
		$h->pump_nb;
		my $kb = rss_anon_kb($pid);
		last unless defined $kb;
		$peak = $kb if $kb > $peak;
		$n++;
		sleep(0.05);
	}
	$h->finish;
	return ($base, $peak, $n, time - $t0, $h->result(0), $err);
}

$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE TABLE t (id int, v text);
ALTER TABLE t ALTER COLUMN v SET STORAGE main;
INSERT INTO t SELECT g, repeat(md5(g::text), 25) FROM generate_series(1, 120000) g;
CREATE INDEX t_v ON t USING fractal (v);
VACUUM ANALYZE t;
});
note 'text index: '
  . $node->safe_psql('postgres',
	"SELECT pg_size_pretty(pg_relation_size('t')) || ' heap, ' || pg_size_pretty(pg_relation_size('t_v')) || ' index'");
is($node->safe_psql('postgres',
		"SELECT pg_relation_size('t_v') < (SELECT sum(octet_length(v)) FROM t) / 4"),
	't', 'the text index stores its keys compressed (smaller than a quarter of the raw keys)');

my ($base, $peak, $n, $secs, $rc, $err) =
  peak_rss_during("SELECT fractal_check('t_v', true)");
note sprintf('fractal_check(t_v, true): RssAnon baseline %d kB, peak %d kB (+%d kB), %d samples, %.1f s',
	$base, $peak, $peak - $base, $n, $secs);
is($rc, 0, 'fractal_check(t_v, true) passes') or diag $err;
cmp_ok($n, '>=', 3, 'at least 3 samples were taken during fractal_check');
cmp_ok($peak - $base, '<', $check_bound_kb,
	"fractal_check(t_v, true) grows the backend's RssAnon by less than 64 MB");

$node->safe_psql('postgres', q{
CREATE TABLE z (id int8, a int8);
INSERT INTO z SELECT g, (random() * 1e12)::int8 FROM generate_series(1, 2000000) g;
CREATE INDEX z_a ON z USING fractal (a) WITH (compression = zstd);
VACUUM z;
DELETE FROM z WHERE id % 50 = 0;
});
note 'zstd index: '
  . $node->safe_psql('postgres',
	"SELECT compressed_leaf_pages || ' of ' || leaf_pages || ' leaves compressed, ' || pg_size_pretty(pg_relation_size('z_a')) FROM fractal_stats('z_a')");
($base, $peak, $n, $secs, $rc, $err) = peak_rss_during("VACUUM z");
note sprintf('VACUUM z: RssAnon baseline %d kB, peak %d kB (+%d kB), %d samples, %.1f s',
	$base, $peak, $peak - $base, $n, $secs);
is($rc, 0, 'VACUUM z succeeds') or diag $err;
cmp_ok($n, '>=', 3, 'at least 3 samples were taken during VACUUM');
cmp_ok($peak - $base, '<', $vacuum_bound_kb,
	"VACUUM of the zstd index grows the backend's RssAnon by less than 5 MB");
is($node->safe_psql('postgres',
		"SELECT leaf_entries + buffered_messages - (SELECT count(*) FROM z) FROM fractal_stats('z_a')"),
	'0', 'after VACUUM the zstd index holds exactly the live rows');

$node->safe_psql('postgres', q{
CREATE TABLE w (id int, v text);
CREATE INDEX w_v ON w USING fractal (v);
});
($base, $peak, $n, $secs, $rc, $err) = peak_rss_during(q{
INSERT INTO w SELECT g, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text)
  || md5((g + 3)::text) || md5((g + 4)::text) || md5((g + 5)::text) || md5((g + 6)::text)
  || md5((g + 7)::text) || md5((g + 8)::text) || md5((g + 9)::text)
FROM generate_series(1, 150000) g});
note sprintf('INSERT into w: RssAnon baseline %d kB, peak %d kB (+%d kB), %d samples, %.1f s',
	$base, $peak, $peak - $base, $n, $secs);
is($rc, 0, 'the INSERT of 150,000 wide keys succeeds') or diag $err;
cmp_ok($n, '>=', 3, 'at least 3 samples were taken during the INSERT');
cmp_ok($peak - $base, '<', 16 * 1024,
	"one transaction's batched inserts grow the backend's RssAnon by less than 16 MB");
cmp_ok($node->safe_psql('postgres',
		"SELECT value FROM fractal_counters() WHERE name = 'batch_appends'"),
	'>=', 1000, 'the INSERT appended its entries in many bounded batches');
is($node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM w WHERE v >= ''"),
	'150000', 'every row of the INSERT is found through the index');

$node->stop;
done_testing();
