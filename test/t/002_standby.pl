# Physical replication: a streaming standby replays inserts, flushes (the
# root's under a share lock too), splits, root growth, leaf filters, sealed buffer pages, sequential inserts
# that split the rightmost leaf at once, compressed page images
# (fractal.wal_image_compression), VACUUM, REINDEX and
# CREATE INDEX of fractal indexes while the primary runs with
# wal_consistency_checking = 'all' (so every replayed record is compared with
# a full-page image), queries on the standby return what the primary
# returns, and fractal_check passes on the primary after each step (so a
# change lost in one WAL mode's do-path is caught there, not only on the
# standby).  Run twice: generic WAL only,
# and with the library preloaded on both servers (custom WAL records).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

for my $mode ('generic', 'custom')
{
	my $primary = PostgreSQL::Test::Cluster->new("primary_$mode");
	$primary->init(allows_streaming => 1);
	# max_wal_size: with the test cluster's 128MB, checkpoints would start
	# in the middle of the load after the CHECKPOINT below (every record
	# carries images for the consistency check), while the checks there
	# need leaf splits of leaves already changed since that checkpoint
	$primary->append_conf('postgresql.conf', qq{
	wal_consistency_checking = 'all'
	shared_buffers = 32MB
	max_wal_size = 2GB
	});
	# 'all' alone leaves out a resource manager that a preloaded library
	# registers (PostgreSQL 15 reads the setting before loading it); naming
	# it defers the check until it is registered, and then 'all' includes it
	$primary->append_conf('postgresql.conf', qq{
	shared_preload_libraries = 'fractal'
	wal_consistency_checking = 'all,fractal'
	}) if $mode eq 'custom';
	$primary->start;
	if ($mode eq 'custom')
	{
		is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_get_wal_resource_managers() WHERE rm_name = 'fractal'"),
			'1', 'custom resource manager registered');
	}
	# every record carries a full-page image: keep WAL for the standby
	$primary->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('sb')");
	$primary->backup('bk');
	my $standby = PostgreSQL::Test::Cluster->new("standby_$mode");
	$standby->init_from_backup($primary, 'bk', has_streaming => 1);
	$standby->append_conf('postgresql.conf', "primary_slot_name = 'sb'");
	$standby->start;

	$primary->safe_psql('postgres', q{
	CREATE EXTENSION fractal;
	CREATE TABLE s (id int, a int8, t text);
	CREATE INDEX s_a ON s USING fractal (a) WITH (buffer_pages = 4, partition_children = 4);
	CREATE INDEX s_ta ON s USING fractal (t DESC, a);
	});

	my @queries = (
		'SELECT count(*), sum(id) FROM s WHERE a < 300000000000',
		'SELECT count(*), sum(id) FROM s WHERE a BETWEEN 500000000000 AND 520000000000',
		'SELECT array_agg(a) FROM (SELECT a FROM s WHERE a > 900000000000 ORDER BY a LIMIT 30) x',
		'SELECT array_agg(a) FROM (SELECT a FROM s ORDER BY a DESC LIMIT 30) x',
		"SELECT count(*), sum(id) FROM s WHERE t >= 'c'",
		# point lookups, of keys present and (mostly) absent: the leaf
		# filters replayed on the standby must rule out only absent keys
		'SELECT string_agg((SELECT count(*) FROM s y WHERE y.a = x.a)::text || (SELECT count(*) FROM s y WHERE y.a = x.a + 1)::text, \',\' ORDER BY x.id) FROM (SELECT id, a FROM s WHERE id % 40 = 0) x',
		'SELECT count(*) FROM s2 WHERE a < 50000',
		# index-only scans (the standby checks every entry against the heap)
		'SELECT count(*), sum(a % 1000) FROM s WHERE a > 100000000000',
		"SELECT array_agg(t || a) FROM (SELECT t, a FROM s WHERE t < 'b' ORDER BY t DESC, a LIMIT 40) x",
	);

	my $compare = sub
	{
		my ($what) = @_;
		$primary->wait_for_catchup($standby);
		like($standby->safe_psql('postgres',
				'SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN (COSTS OFF) ' . $queries[-2]),
			qr/Index Only Scan using s_a/, "$mode, $what: index-only scan on the standby");
		for my $q (@queries)
		{
			my $sql = "SET enable_seqscan = off; $q";
			my $p = $primary->safe_psql('postgres', $sql);
			my $s = $standby->safe_psql('postgres', $sql);
			is($s, $p, "$mode, $what: $q");
		}
		my $q2 = 'SET enable_seqscan = off; SET enable_bitmapscan = off; '
		  . 'SELECT count(*), sum(a), max(a) FROM s2 WHERE a > 0';
		is($standby->safe_psql('postgres', $q2), $primary->safe_psql('postgres', $q2),
			"$mode, $what: s2 through s2_a");
		my $q3 = 'SET enable_seqscan = off; SET enable_bitmapscan = off; '
		  . 'SELECT count(*), sum(a), min(a), max(a) FROM s3 WHERE a > 0';
		is($standby->safe_psql('postgres', $q3), $primary->safe_psql('postgres', $q3),
			"$mode, $what: s3 through s3_a");
		# and the primary's indexes hold every row and every invariant
		# (filters, chain slots, sorted and sealed pages) in this WAL mode
		for my $idx ('s_a', 's_ta', 's2_a', 's3_a')
		{
			my ($rc, $out, $err) = $primary->psql('postgres', "SELECT fractal_check('$idx', true)");
			is($rc . $err, '0', "$mode, $what: fractal_check('$idx') passes on the primary");
		}
	};

	$primary->safe_psql('postgres', 'CREATE TABLE s2 (a int8); INSERT INTO s2 SELECT g FROM generate_series(1, 60000) g');
	$primary->safe_psql('postgres', 'CREATE INDEX s2_a ON s2 USING fractal (a)');
	# sequential inserts into the built index: the rightmost leaf fills and
	# is split at once by pushing its queue down (fr_flush_toward)
	$primary->safe_psql('postgres', 'INSERT INTO s2 SELECT g FROM generate_series(60001, 90000) g');
	is($primary->safe_psql('postgres', "SELECT buffered_messages < 600 FROM fractal_stats('s2_a')"),
		't', "$mode: sequential inserts leave little queued in s2_a");
	# keys in order into a compressed index: the rightmost leaf stays plain
	# and, when full, moves into its left sibling (fr_leaf_spill_left) or is
	# compressed behind a new plain one (fr_leaf_close_right)
	$primary->safe_psql('postgres', 'CREATE TABLE s3 (a int8); CREATE INDEX s3_a ON s3 USING fractal (a) WITH (compression = zstd)');
	for my $batch (1 .. 40)
	{
		$primary->safe_psql('postgres',
			'INSERT INTO s3 SELECT g FROM generate_series(' . (($batch - 1) * 1000 + 1) . ', ' . ($batch * 1000) . ') g');
	}
	is($primary->safe_psql('postgres', "SELECT compressed_leaf_pages > 0 AND leaf_pages < 20 FROM fractal_stats('s3_a')"),
		't', "$mode: s3_a's compressed leaves filled by in-order keys");
	cmp_ok($primary->safe_psql('postgres',
			"SELECT value FROM fractal_counters() WHERE name = 'rightmost_spills'"),
		'>', 0, "$mode: rightmost leaves of s3_a moved into their left siblings")
	  if $mode eq 'custom';
	# wide text keys make the (t, a) tree three levels high with few rows
	for my $batch (1 .. 6)
	{
		$primary->safe_psql('postgres', qq{
			INSERT INTO s SELECT g, (random() * 1e12)::int8, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text)
			FROM generate_series(($batch - 1) * 6000 + 1, $batch * 6000) g});
	}
	my $height = $primary->safe_psql('postgres', "SELECT height FROM fractal_stats('s_ta')");
	cmp_ok($height, '>=', 2, "$mode: tree grew to at least three levels");
	my $levels = $primary->safe_psql('postgres', "SELECT count(*) FROM fractal_level_stats('s_ta') WHERE buffered_messages > 0");
	cmp_ok($levels, '>=', 1, "$mode: messages are buffered");
	# the three-level roots were flushed under a share lock (fr_rootflush.c:
	# emptied pages, then cut), all replayed under consistency checking
	cmp_ok($primary->safe_psql('postgres',
			"SELECT value FROM fractal_counters() WHERE name = 'root_shared_flushes'"),
		'>', 0, "$mode: roots flushed under a share lock")
	  if $mode eq 'custom';
	$primary->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS pageinspect');
	$primary->safe_psql('postgres', slurp_file('test/sql/node_buffers.sql'));
	cmp_ok($primary->safe_psql('postgres', "SELECT fr_leaf_filter_pages('s_a')"), '>', 0, "$mode: s_a has leaf filter pages");
	# below the root, chain tails unsorted and pages sealed behind them (the
	# seal is part of the record that links a new page)
	is($primary->safe_psql('postgres', q{
		SELECT bool_or(NOT k.sorted) AND bool_or(k.sorted)
		  FROM fr_chain_page_kinds('s_ta') k, fractal_stats('s_ta') s WHERE k.level < s.height}),
		't', "$mode: s_ta has unsorted tails and sealed pages below the root");
	$compare->('after inserts');

	$primary->safe_psql('postgres', 'DELETE FROM s WHERE id % 3 = 0; VACUUM s');
	$compare->('after delete and vacuum');

	$primary->safe_psql('postgres', 'REINDEX INDEX s_a; INSERT INTO s SELECT g, (random() * 1e12)::int8, md5(g::text) FROM generate_series(100001, 110000) g');
	$compare->('after reindex and more inserts');

	# a slot keeps the WAL from here for pg_walinspect below
	$primary->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('keep', true)");
	$primary->safe_psql('postgres', 'CHECKPOINT');
	my $start_lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	# three batches: leaves split after the checkpoint split again
	for my $b (0 .. 2)
	{
		my $from = 120001 + $b * 5000;
		$primary->safe_psql('postgres', 'INSERT INTO s SELECT g, (random() * 1e12)::int8, md5(g::text) FROM generate_series(' . $from . ', ' . ($from + 4999) . ') g');
	}
	$compare->('after checkpoint and more inserts');

	# the last inserts wrote every custom record type, so the standby
	# replayed (and consistency-checked) them
	if ($mode eq 'custom')
	{
		$primary->safe_psql('postgres', 'CREATE EXTENSION pg_walinspect');
		my $types = $primary->safe_psql('postgres', qq{
			SELECT string_agg(DISTINCT record_type, ',' ORDER BY record_type)
			  FROM pg_get_wal_records_info('$start_lsn', pg_current_wal_lsn())
			 WHERE resource_manager = 'fractal'});
		is($types, 'ADD_ITEMS,LEAF_SPLIT,LFILTER_SLOTS,MOVE_ITEMS', 'custom: every custom record type was logged and replayed');
		# flushes log moves naming their source pages, into child chains
		# and into leaves (some with the leaf filter slot, as block 1); a
		# source page not changed since the checkpoint would need its image,
		# so its messages go inline, and the later moves from a page named
		# once since the checkpoint find it in place on replay
		my $moves = $primary->safe_psql('postgres', qq{
			SELECT count(*) FILTER (WHERE description ~ 'into a leaf'),
			       count(*) FILTER (WHERE description ~ 'into a chain page'),
			       count(*) FILTER (WHERE description ~ ' [1-9][0-9]* inline'),
			       count(*) FILTER (WHERE block_ref ~ 'blkref #2:'
			                          AND block_ref !~ 'blkref #([2-9]|[1-3][0-9]): [^#]* \\(FPW\\)'),
			       count(*) FILTER (WHERE block_ref ~ 'blkref #1:')
			  FROM pg_get_wal_records_info('$start_lsn', pg_current_wal_lsn())
			 WHERE resource_manager = 'fractal' AND record_type = 'MOVE_ITEMS'});
		my ($toleaf, $tochain, $inline, $named, $movslot) = split /\|/, $moves;
		cmp_ok($toleaf, '>', 0, 'custom: moves into leaves');
		cmp_ok($tochain, '>', 0, 'custom: moves into child chains');
		cmp_ok($inline, '>', 0, 'custom: moves with messages logged inline (their page predates the checkpoint)');
		cmp_ok($named, '>', 0, 'custom: moves whose named source pages replay found in place');
		cmp_ok($movslot, '>', 0, 'custom: moves that also fill a leaf filter slot');
		# leaf splits whose old leaf replay rebuilt from its own entries (not
		# restored from an image: the record's page kept its LSN), each with
		# the new leaf as an image
		my $splits = $primary->safe_psql('postgres', qq{
			SELECT count(*) FILTER (WHERE block_ref !~ 'blkref #1: [^#]* \\(FPW\\)'),
			       count(*) FILTER (WHERE block_ref !~ 'blkref #2: [^#]* \\(FPW\\)')
			  FROM pg_get_wal_records_info('$start_lsn', pg_current_wal_lsn())
			 WHERE resource_manager = 'fractal' AND record_type = 'LEAF_SPLIT'});
		my ($rebuilt, $noimage) = split /\|/, $splits;
		note("leaf splits after the checkpoint: $rebuilt with the old leaf rebuilt, $noimage without the new leaf's image; checkpoints so far: "
			  . $primary->safe_psql('postgres', 'SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter'));
		cmp_ok($rebuilt, '>', 0, 'custom: leaf splits whose old leaf was rebuilt on replay');
		# in-place leaf merges that carry their leaf filter slot's keys
		cmp_ok($primary->safe_psql('postgres', qq{
			SELECT count(*) FROM pg_get_wal_records_info('$start_lsn', pg_current_wal_lsn())
			 WHERE resource_manager = 'fractal' AND record_type = 'ADD_ITEMS'
			   AND block_ref ~ 'blkref #1:'}), '>', 0,
			'custom: leaf additions whose record also fills the leaf filter slot');
		is($noimage, '0', 'custom: every leaf split carries the new leaf as an image');
	}
	# the index's page images are compressed (fractal.wal_image_compression),
	# the heap's, which PostgreSQL logs with wal_compression off, are not.
	# By default (auto) images of pages a record logs whole (a split's new
	# pages, new chain pages and filter pages) are compressed with lz4 and
	# images a checkpoint causes (a page's first change since it) with
	# zstd; a method named applies to every image; off compresses none.
	# Each range is one transaction's inserts after a checkpoint
	# (autovacuum off for s, so no other writer logs the index)
	$primary->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS pg_walinspect; ALTER TABLE s SET (autovacuum_enabled = off)');
	is($primary->safe_psql('postgres', 'SHOW wal_compression'), 'off', "$mode: the server's wal_compression is off");
	is($primary->safe_psql('postgres', "SELECT enumvals @> '{lz4,zstd}' FROM pg_settings WHERE name = 'wal_compression'"),
		't', "$mode: the server compresses with lz4 and zstd");
	is($primary->safe_psql('postgres', "LOAD 'fractal'; SHOW fractal.wal_image_compression"), 'auto', "$mode: image compression is auto by default");
	my $images = sub
	{
		my ($setting, $first) = @_;
		$primary->safe_psql('postgres', 'CHECKPOINT');
		my $from = $primary->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
		my $set = $setting eq 'default' ? '' : "SET fractal.wal_image_compression = $setting; ";
		$primary->safe_psql('postgres', $set . "INSERT INTO s SELECT g, (random() * 1e12)::int8, md5(g::text) FROM generate_series($first, $first + 4999) g");
		# per block image: the index's (by method; a leaf split's new leaf,
		# block 2 of LEAF_SPLIT, and the images of the other custom
		# records, which only checkpoints cause, apart), the heap's
		my $rows = $primary->safe_psql('postgres', qq{
			WITH i AS (
			  SELECT r.resource_manager AS rm, r.record_type AS rt, b,
			         substring(b from 'method: (\\w+)') AS m
			    FROM pg_get_wal_records_info('$from', pg_current_wal_lsn()) r,
			         regexp_split_to_table(r.block_ref, 'blkref #') b
			   WHERE b ~ '\\(FPW')
			SELECT count(*) FILTER (WHERE rm IN ('fractal', 'Generic') AND m = 'zstd'),
			       count(*) FILTER (WHERE rm IN ('fractal', 'Generic') AND m = 'lz4'),
			       count(*) FILTER (WHERE rm IN ('fractal', 'Generic') AND m NOT IN ('zstd', 'lz4')),
			       count(*) FILTER (WHERE rm IN ('fractal', 'Generic') AND m IS NULL),
			       count(*) FILTER (WHERE rt = 'LEAF_SPLIT' AND b ~ '^2:' AND m = 'lz4'),
			       count(*) FILTER (WHERE rt = 'LEAF_SPLIT' AND b ~ '^2:' AND m IS DISTINCT FROM 'lz4'),
			       count(*) FILTER (WHERE rm = 'fractal' AND rt <> 'LEAF_SPLIT' AND m = 'zstd'),
			       count(*) FILTER (WHERE rm = 'fractal' AND rt <> 'LEAF_SPLIT' AND m IS DISTINCT FROM 'zstd'),
			       count(*) FILTER (WHERE rm ~ '^Heap' AND m IS NOT NULL),
			       count(*) FILTER (WHERE rm ~ '^Heap' AND m IS NULL)
			  FROM i});
		my @c = split /\|/, $rows;
		return {zstd => $c[0], lz4 => $c[1], other => $c[2], plain => $c[3],
				split_lz4 => $c[4], split_not_lz4 => $c[5],
				ckpt_zstd => $c[6], ckpt_not_zstd => $c[7],
				heap_z => $c[8], heap_plain => $c[9]};
	};
	my $n = $images->('default', 160001);
	note("auto: index images zstd $n->{zstd}, lz4 $n->{lz4}, plain $n->{plain}; leaf split new leaves lz4 $n->{split_lz4}; other custom records' images zstd $n->{ckpt_zstd}");
	cmp_ok($n->{zstd}, '>', 0, "$mode: auto: images a checkpoint causes are compressed with zstd");
	cmp_ok($n->{lz4}, '>', 0, "$mode: auto: images of pages logged whole are compressed with lz4");
	is($n->{other}, '0', "$mode: auto: ... and with no other method");
	# (PostgreSQL stores an image plain when compressing saves nothing:
	# leaf filter pages are dense bits)
	cmp_ok($n->{zstd} + $n->{lz4}, '>', $n->{plain}, "$mode: most index page images are compressed");
	is($n->{heap_z}, '0', "$mode: the heap's page images are not compressed (wal_compression is off)");
	cmp_ok($n->{heap_plain}, '>', 0, "$mode: the heap logged page images");
	if ($mode eq 'custom')
	{
		cmp_ok($n->{split_lz4}, '>', 0, 'custom: auto: a leaf split logs its new leaf with lz4');
		is($n->{split_not_lz4}, '0', 'custom: auto: ... every one of them');
		cmp_ok($n->{ckpt_zstd}, '>', 0, 'custom: auto: the other records log images a checkpoint caused, with zstd');
		is($n->{ckpt_not_zstd}, '0', 'custom: auto: ... every one of them');
	}
	$n = $images->('zstd', 165001);
	cmp_ok($n->{zstd}, '>', 0, "$mode: with zstd named, index page images are compressed with zstd");
	is($n->{lz4} + $n->{other}, 0, "$mode: ... and with no other method");
	$n = $images->('off', 170001);
	is($n->{zstd} + $n->{lz4} + $n->{other}, 0, "$mode: with fractal.wal_image_compression off, no index page image is compressed");
	cmp_ok($n->{plain}, '>', 0, "$mode: ... and the index logged page images");

	# a compressed index under auto: records whose whole pages are all
	# compressed leaves log them without trying to compress them again.  The
	# WAL cannot show it (PostgreSQL keeps an image that does not shrink as
	# it was, so lz4 tried and not tried look alike); what is checked is that
	# such records replay: random keys rewrite s3_a's compressed leaves, and
	# the comparison below runs on the standby under consistency checking
	$primary->safe_psql('postgres', 'INSERT INTO s3 SELECT (random() * 40000)::int8 FROM generate_series(1, 6000)');
	is($primary->safe_psql('postgres', "SELECT leaf_entries > 40000 AND compressed_leaf_pages > 0 FROM fractal_stats('s3_a')"),
		't', "$mode: random keys flushed into s3_a's compressed leaves");
	# compression = auto (the default): plain leaves while the index is
	# smaller than a quarter of shared_buffers (32MB here: 1,024 pages), zstd
	# leaves from the first statement that finds it larger, and CREATE INDEX
	# by the pages its entries would fill plain; the standby answers through
	# each index as the heap does
	my $s4_check = sub
	{
		my ($idx) = @_;
		my $q4 = 'SELECT count(*), sum(a % 1000), min(a), max(a) FROM s4 WHERE a >= 0';
		$primary->wait_for_catchup($standby);
		like($standby->safe_psql('postgres', "SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN (COSTS OFF) $q4"),
			qr/using $idx/, "$mode: auto: the standby scans $idx");
		is($standby->safe_psql('postgres', "SET enable_seqscan = off; SET enable_bitmapscan = off; $q4"),
			$primary->safe_psql('postgres', "SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off; $q4"),
			"$mode: auto: s4 through $idx on the standby, as the heap says");
		my ($rc, $out, $err) = $primary->psql('postgres', "SELECT fractal_check('$idx', true)");
		is($rc . $err, '0', "$mode: auto: fractal_check('$idx') passes on the primary");
	};
	$primary->safe_psql('postgres', 'CREATE TABLE s4 (a int8); CREATE INDEX s4_a ON s4 USING fractal (a)');
	$primary->safe_psql('postgres', 'INSERT INTO s4 SELECT (random() * 1e12)::int8 FROM generate_series(1, 20000)');
	is($primary->safe_psql('postgres', "SELECT compressed_leaf_pages FROM fractal_stats('s4_a')"),
		'0', "$mode: auto: a small index's leaves are plain");
	$primary->safe_psql('postgres', 'INSERT INTO s4 SELECT (random() * 1e12)::int8 FROM generate_series(1, 500000)');
	cmp_ok($primary->safe_psql('postgres', "SELECT pg_relation_size('s4_a') / 8192"), '>=', 1024,
		"$mode: auto: s4_a grew past a quarter of shared_buffers");
	$primary->safe_psql('postgres', 'INSERT INTO s4 SELECT (random() * 1e12)::int8 FROM generate_series(1, 50000)');
	cmp_ok($primary->safe_psql('postgres', "SELECT compressed_leaf_pages FROM fractal_stats('s4_a')"),
		'>', 0, "$mode: auto: ... and its next statement wrote zstd leaves");
	$s4_check->('s4_a');
	$primary->safe_psql('postgres', 'DROP INDEX s4_a; CREATE INDEX s4_a2 ON s4 USING fractal (a)');
	is($primary->safe_psql('postgres', "SELECT compressed_leaf_pages > 0 AND compressed_leaf_pages >= leaf_pages - 1 FROM fractal_stats('s4_a2')"),
		't', "$mode: auto: CREATE INDEX of a large index compresses its leaves");
	$s4_check->('s4_a2');
	$compare->('after inserts with compressed and plain page images');

	# with full_page_writes off a move could not be replayed safely, so
	# flushes log the messages' bytes instead (fr_move_items declines)
	if ($mode eq 'custom')
	{
		$primary->safe_psql('postgres', 'ALTER SYSTEM SET full_page_writes = off');
		$primary->reload;
		$primary->poll_query_until('postgres', "SELECT current_setting('full_page_writes') = 'off'");
		# the next checkpoint records the change; after it, backends assemble without images
		$primary->safe_psql('postgres', 'CHECKPOINT');
		my $off_lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
		$primary->safe_psql('postgres', 'INSERT INTO s SELECT g, (random() * 1e12)::int8, md5(g::text) FROM generate_series(140001, 150000) g');
		is($primary->safe_psql('postgres', qq{
			SELECT count(*) FILTER (WHERE record_type = 'MOVE_ITEMS') = 0
			       AND count(*) FILTER (WHERE record_type = 'ADD_ITEMS') > 0
			  FROM pg_get_wal_records_info('$off_lsn', pg_current_wal_lsn())
			 WHERE resource_manager = 'fractal'}), 't',
			'custom: with full_page_writes off, flushes log no moves');
		$compare->('with full_page_writes off');
		$primary->safe_psql('postgres', 'ALTER SYSTEM RESET full_page_writes');
		$primary->reload;
	}
	$primary->safe_psql('postgres', "SELECT pg_drop_replication_slot('keep')");
	ok($standby->poll_query_until('postgres', 'SELECT pg_is_in_recovery()'), "$mode: standby still up");
	my $log = slurp_file($standby->logfile);
	unlike($log, qr/inconsistent page found/, "$mode: no wal_consistency_checking failure on the standby");
	unlike($log, qr/PANIC|FATAL:.*startup/, "$mode: no replay failure on the standby");

	$standby->stop;
	$primary->stop;
}

done_testing();
