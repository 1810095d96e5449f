# Hot standby queries during replay.  A primary runs a heavy write load on
# a table with two fractal indexes whose buffers are tiny (buffer_pages = 4,
# partition_children = 4), so buffer flushes, leaf and node splits, root
# growth and VACUUM deletions reach the standby all the time; meanwhile
# the standby runs thousands of queries, each one twice in the same
# REPEATABLE READ snapshot: once through a fractal index (plain index scan
# and bitmap scan alternately) and once as a sequential scan.  Replay
# changes the index pages under the standby's scans; the two results must
# still be equal.  002_standby.pl compares primary and standby only at
# quiet points; this test covers scans racing with redo.
#
# Load (pgbench, ~45 s): 4 clients, 50 transactions a second in all,
# inserting 25-row batches of random keys (the text key is 128 bytes, so the
# (t DESC, a) tree grows from 1 to 3 levels) and deleting small key ranges;
# one client running VACUUM every 2 s.  The rate is limited so that the
# table stays small enough for thousands of seqscans on the standby.
# Standby: batches of 100 transactions, each
#   BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT sb_check(i); COMMIT;
# where sb_check (a PL/pgSQL function created on the primary, replicated)
# builds query i (point lookup, range, ORDER BY ... LIMIT forward and
# backward, on both indexes), runs it with the scan forced each way
# (SET LOCAL through set_config) and returns 'ok' or a description of the
# mismatch.  statement_timeout = 30s turns a hang into an error.
#
# Asserted per mode: the plans really use the fractal indexes (EXPLAIN on
# the standby); no mismatch, no statement timeout and no other error on the
# standby; at least 1,000 iterations (2,000 compared queries) ran, with
# replay advancing between at least half of the batches; the load
# ran without errors, VACUUM ran repeatedly and the root of the wide-key
# index grew (root growth was replayed under the queries); after
# catch-up the standby answers as the primary; fractal_check(..., true)
# passes on the primary; the standby log shows no consistency-check or
# replay failure.  Run twice: generic WAL only, and with the library
# preloaded on both servers (custom WAL records), as in 002_standby.pl.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $load_seconds = $ENV{FRACTAL_TEST_QUICK} ? 20 : 45;
my $min_iterations = $ENV{FRACTAL_TEST_QUICK} ? 300 : 1000;

# the query kinds; sb_check(i) uses kind i % 8, keys drawn at random
my $functions = q{
CREATE FUNCTION tkey(k int8) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT md5(k::text) || md5((k + 1)::text) || md5((k + 2)::text) || md5((k + 3)::text) $$;

CREATE FUNCTION sb_query(i int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	k int8 := (random() * 200000)::int8;
	k2 int8 := k + (random() * 3000)::int8;
	h text := tkey(k);
	agg text := 'SELECT count(*) || '':'' || coalesce(sum(id), 0) FROM s WHERE ';
BEGIN
	RETURN CASE i % 8
		WHEN 0 THEN agg || format('a = %s', k)
		WHEN 1 THEN agg || format('a BETWEEN %s AND %s', k, k2)
		WHEN 2 THEN format('SELECT string_agg(a::text, '','') FROM (SELECT a FROM s WHERE a >= %s ORDER BY a LIMIT 20) x', k)
		WHEN 3 THEN format('SELECT string_agg(a::text, '','') FROM (SELECT a FROM s WHERE a <= %s ORDER BY a DESC LIMIT 20) x', k)
		WHEN 4 THEN agg || format('t = %L', h)
		WHEN 5 THEN agg || format('t >= %L AND t < %L', substr(h, 1, 2), substr(h, 1, 2) || 'f')
		WHEN 6 THEN format('SELECT string_agg(t || ''/'' || a, '','') FROM (SELECT t, a FROM s WHERE t <= %L ORDER BY t DESC, a LIMIT 20) x', h)
		ELSE format('SELECT string_agg(t || ''/'' || a, '','') FROM (SELECT t, a FROM s WHERE t >= %L ORDER BY t, a DESC LIMIT 20) x', h)
	END;
END $$;

-- force mode 's' (seqscan), 'i' (plain index scan) or 'b' (bitmap scan)
-- for the rest of the transaction
CREATE FUNCTION sb_mode(m text) RETURNS void LANGUAGE sql AS $$
	SELECT set_config('enable_seqscan', (m = 's')::text, true),
		   set_config('enable_indexscan', (m = 'i')::text, true),
		   set_config('enable_bitmapscan', (m = 'b')::text, true),
		   set_config('enable_indexonlyscan', 'off', true)
$$;

CREATE FUNCTION sb_check(i int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	q text := sb_query(i);
	m text := CASE WHEN (i / 8) % 2 = 0 THEN 'i' ELSE 'b' END;
	r_seq text;
	r_idx text;
BEGIN
	PERFORM sb_mode('s');
	EXECUTE q INTO r_seq;
	PERFORM sb_mode(m);
	EXECUTE q INTO r_idx;
	IF r_idx IS DISTINCT FROM r_seq THEN
		RETURN format('MISMATCH (%s): %s: seq=%s index=%s', m, q, coalesce(r_seq, 'NULL'), coalesce(r_idx, 'NULL'));
	END IF;
	RETURN 'ok';
END $$;

-- 'ok' when query kind i, forced to mode m, is planned as expected:
-- a fractal index scan (i: with no Sort for ORDER BY kinds; b) or a
-- sequential scan without one (s)
CREATE FUNCTION sb_plan(i int, m text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	q text := sb_query(i);
	plan text := '';
	line text;
BEGIN
	PERFORM sb_mode(m);
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		plan := plan || line || E'\n';
	END LOOP;
	IF (m = 'i' AND plan ~ 'Index Scan (Backward )?using s_(a|ta) ' AND plan !~ 'Seq Scan'
		AND NOT (i % 8 IN (2, 3, 6, 7) AND plan ~ 'Sort'))
	   OR (m = 'b' AND plan ~ 'Bitmap Index Scan on s_(a|ta)' AND plan !~ 'Seq Scan')
	   OR (m = 's' AND plan ~ 'Seq Scan' AND plan !~ 's_(a|ta)') THEN
		RETURN 'ok';
	END IF;
	RETURN format('unexpected %s plan for %s:%s%s', m, q, E'\n', plan);
END $$;
};

for my $mode ('generic', 'custom')
{
	my $primary = PostgreSQL::Test::Cluster->new("sq_primary_$mode");
	$primary->init(allows_streaming => 1);
	$primary->append_conf('postgresql.conf', qq{
	wal_consistency_checking = 'all'
	shared_buffers = 32MB
	max_wal_size = 256MB
	autovacuum = off
	max_connections = 30
	});
	# 'all' alone leaves out a resource manager that a preloaded library
	# registers (PostgreSQL 15 reads the setting before loading it); naming
	# it defers the check until it is registered, and then 'all' includes it
	$primary->append_conf('postgresql.conf', qq{
	shared_preload_libraries = 'fractal'
	wal_consistency_checking = 'all,fractal'
	}) if $mode eq 'custom';
	$primary->start;
	$primary->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('sb')");
	$primary->backup('bk');
	my $standby = PostgreSQL::Test::Cluster->new("sq_standby_$mode");
	$standby->init_from_backup($primary, 'bk', has_streaming => 1);
	# feedback: the primary's VACUUM must not cancel standby queries
	$standby->append_conf('postgresql.conf', qq{
	primary_slot_name = 'sb'
	hot_standby_feedback = on
	statement_timeout = '30s'
	});
	$standby->start;
	if ($mode eq 'custom')
	{
		is($standby->safe_psql('postgres', "SELECT count(*) FROM pg_get_wal_resource_managers() WHERE rm_name = 'fractal'"),
			'1', "$mode: custom resource manager registered on the standby");
	}

	$primary->safe_psql('postgres', q{
	CREATE EXTENSION fractal;
	CREATE TABLE s (id bigserial, a int8, t text);
	CREATE INDEX s_a ON s USING fractal (a) WITH (buffer_pages = 4, partition_children = 4);
	CREATE INDEX s_ta ON s USING fractal (t DESC, a) WITH (buffer_pages = 4, partition_children = 4);
	});
	$primary->safe_psql('postgres', $functions);
	$primary->safe_psql('postgres', q{
	INSERT INTO s (a, t) SELECT k, tkey(k) FROM (SELECT (random() * 200000)::int8 AS k FROM generate_series(1, 1000)) x;
	ANALYZE s;
	});
	my $heights_sql = "SELECT (SELECT height FROM fractal_stats('s_a')) || '/' || (SELECT height FROM fractal_stats('s_ta'))";
	my $heights_before = $primary->safe_psql('postgres', $heights_sql);
	$primary->wait_for_catchup($standby);

	# the forced plans really are what they claim, on the standby
	my $plans_bad = 0;
	for my $i (0 .. 7)
	{
		for my $m ('s', 'i', 'b')
		{
			my $r = $standby->safe_psql('postgres', "BEGIN; SELECT sb_plan($i, '$m'); COMMIT;");
			next if $r eq 'ok';
			$plans_bad++;
			diag "$mode: $r";
		}
	}
	is($plans_bad, 0, "$mode: on the standby every query kind is planned as forced (seq, index, bitmap)");

	my $dir = $primary->basedir;
	PostgreSQL::Test::Utils::append_to_file("$dir/insert.sql", q{
INSERT INTO s (a, t) SELECT k, tkey(k) FROM (SELECT (random() * 200000)::int8 AS k FROM generate_series(1, 25)) x;
});
	PostgreSQL::Test::Utils::append_to_file("$dir/delete.sql", q{
\set k random(0, 200000)
DELETE FROM s WHERE a BETWEEN :k AND :k + 40;
});
	PostgreSQL::Test::Utils::append_to_file("$dir/vacuum.sql", q{
VACUUM s;
\sleep 2 s
});
	my @conn = ('-h', $primary->host, '-p', $primary->port, 'postgres');
	my ($out1, $err1, $out2, $err2) = ('', '', '', '');
	my $load = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '4', '-j', '2', '-R', '50', '-T', $load_seconds,
			'-f', "$dir/insert.sql\@4", '-f', "$dir/delete.sql\@1", @conn
		],
		'>', \$out1, '2>', \$err1);
	my $vac = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '1', '-T', $load_seconds, '-f', "$dir/vacuum.sql", @conn ],
		'>', \$out2, '2>', \$err2);

	# the standby loop, for as long as the load runs
	my ($iterations, $mismatches, $timeouts, $errors, $batches) = (0, 0, 0, 0, 0);
	my ($last_lsn, $replay_moved) = ('', 0);
	my $i = 0;
	my $end = time() + $load_seconds;
	while (time() < $end)
	{
		# replay position at the start of the batch: did replay move under it?
		my $script = "SELECT 'lsn ' || pg_last_wal_replay_lsn();\n";
		for (1 .. 100)
		{
			$script .= "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT sb_check($i); COMMIT;\n";
			$i++;
		}
		my ($ret, $stdout, $stderr) = $standby->psql('postgres', $script,
			on_error_stop => 0, timeout => 600);
		$batches++;
		for my $line (split /\n/, $stdout)
		{
			if ($line =~ /^lsn (.*)$/)
			{
				$replay_moved++ if $last_lsn ne '' && $1 ne $last_lsn;
				$last_lsn = $1;
			}
			elsif ($line eq 'ok')
			{
				$iterations++;
			}
			elsif ($line =~ /^MISMATCH/)
			{
				$iterations++;
				$mismatches++;
				diag "$mode: $line" if $mismatches <= 10;
			}
		}
		for my $line (split /\n/, $stderr)
		{
			next unless $line =~ /ERROR|FATAL|PANIC/;
			next if $line =~ /current transaction is aborted/;
			if ($line =~ /statement timeout/)
			{
				$timeouts++;
			}
			else
			{
				$errors++;
			}
			diag "$mode: standby: $line" if $timeouts + $errors <= 10;
		}
	}
	$load->finish;
	$vac->finish;
	note "$mode: $batches standby batches";

	diag "$mode: standby ran $iterations iterations (" . 2 * $iterations
	  . " compared queries): $mismatches mismatches, $timeouts timeouts, $errors other errors";
	is($mismatches, 0, "$mode: index and seqscan results agree on the standby during replay");
	is($timeouts, 0, "$mode: no standby query hit statement_timeout");
	is($errors, 0, "$mode: no other error on the standby");
	cmp_ok($iterations, '>=', $min_iterations,
		"$mode: at least $min_iterations iterations (index + seqscan query each) ran on the standby");
	cmp_ok($replay_moved, '>=', ($batches - 1) / 2,
		"$mode: replay advanced between most standby batches ($replay_moved of " . ($batches - 1) . ')');

	is($load->result(0), 0, "$mode: load pgbench exited cleanly");
	is($vac->result(0), 0, "$mode: vacuum pgbench exited cleanly");
	unlike($err1 . $err2, qr/ERROR|FATAL|PANIC/, "$mode: no errors reported by the load");
	my ($tx) = $out1 =~ /number of transactions actually processed: (\d+)/;
	my ($vacs) = $out2 =~ /number of transactions actually processed: (\d+)/;
	$tx //= 0;
	$vacs //= 0;
	my $heights_after = $primary->safe_psql('postgres', $heights_sql);
	my $rows = $primary->safe_psql('postgres', 'SELECT count(*) FROM s');
	diag "$mode: load: $tx transactions, $vacs VACUUMs, $rows rows; index heights (s_a/s_ta) $heights_before -> $heights_after";
	cmp_ok($vacs, '>=', 5, "$mode: VACUUM ran repeatedly during the load");
	my @hb = split m{/}, $heights_before;
	my @ha = split m{/}, $heights_after;
	cmp_ok($ha[1] - $hb[1], '>=', 1,
		"$mode: the (t DESC, a) tree's root grew during the load (heights s_a/s_ta $heights_before -> $heights_after)");

	# quiet point: the standby answers as the primary, the primary verifies
	$primary->wait_for_catchup($standby);
	my $cmp_q = "SET enable_seqscan = off; SET enable_bitmapscan = off; "
	  . "SELECT count(*) || ':' || sum(id) || ':' || sum(a) FROM s WHERE a >= 0";
	is($standby->safe_psql('postgres', $cmp_q), $primary->safe_psql('postgres', $cmp_q),
		"$mode: after catch-up a full index scan on the standby returns what the primary returns");
	$cmp_q = "SET enable_seqscan = off; SET enable_bitmapscan = off; "
	  . "SELECT count(*) || ':' || sum(id) || ':' || sum(a) FROM s WHERE t >= ''";
	is($standby->safe_psql('postgres', $cmp_q), $primary->safe_psql('postgres', $cmp_q),
		"$mode: after catch-up a full scan of the (t DESC, a) index on the standby returns what the primary returns");
	for my $idx ('s_a', 's_ta')
	{
		my ($ret, $out, $err) = $primary->psql('postgres', "SELECT fractal_check('$idx', true)");
		is($ret, 0, "$mode: fractal_check($idx, true) passes on the primary");
		diag "$mode: $err" if $ret;
	}

	ok($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()') eq 't', "$mode: standby still in recovery");
	my $log = slurp_file($standby->logfile);
	unlike($log, qr/inconsistent page found/, "$mode: no wal_consistency_checking failure on the standby");
	unlike($log, qr/PANIC|FATAL:.*startup|terminated by signal/, "$mode: no replay failure or crash on the standby");

	$standby->stop;
	$primary->stop;
}

done_testing();
