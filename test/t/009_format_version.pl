# On-disk format versions.  Format 2 keeps buffer pages sorted (FR_SORTED);
# format 3 adds a key filter to buffer pages (FR_FILTERED); format 4 adds
# leaf filter pages (FR_LFILTERS) beside level-1 nodes; format 5 stores
# compressed leaves in blocks (a format-4 compressed index keeps writing
# single-frame leaves; set to 5 it mixes both, tested below).  An index
# written by format 1 has unsorted, unfiltered buffer pages and version 1 in
# its metapage.  Turn a live index without filters into a format-1 index on
# disk (metapage version 1; every buffer page's line pointers reversed, so
# its messages are out of key order, and FR_SORTED cleared), then check that
# it keeps working and stays in its format: queries through it equal a
# seqscan, inserts and VACUUM go on and write no filtered page even though
# the index asks for filters, fractal_check passes.  A metapage version this
# library does not know is refused with a clear "REINDEX required" error,
# and REINDEX repairs it and brings both kinds of filters.  A format-3 index
# with buffer page filters on gets no leaf filter page.  Finally, fractal_check
# notices a filter that lacks a key of its page.  Extension 1.0 updates to
# 1.1 (fractal_counters), whose counters need shared_preload_libraries, and
# 1.1 to 1.2 (filter_pages in fractal_stats and fractal_level_stats).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy;

my $node = PostgreSQL::Test::Cluster->new('fmtver');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE EXTENSION pageinspect;
CREATE TABLE fv (id int, a int8);
CREATE INDEX fv_a ON fv USING fractal (a)
	WITH (buffer_pages = 8, partition_children = 4, filter_bytes = 0);
INSERT INTO fv SELECT g, (random() * 1e9)::int8 FROM generate_series(1, 60000) g;
CHECKPOINT;
});

my $file = $node->data_dir . '/'
  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('fv_a')");
my $nblocks = $node->safe_psql('postgres', "SELECT pg_relation_size('fv_a') / 8192");

# special area: link(4) level(2) flags(2) unused(2) page_id(2) in the last 16 bytes
# (FR_CHAIN 8, FR_SORTED 128: the root's pages are sorted, a lower chain's
# newest page is unsorted until the next page seals it)
my (@chain, @sorted);
for my $blk (1 .. $nblocks - 1)
{
	my $f = $node->safe_psql('postgres',
		"SELECT get_byte(get_raw_page('fv_a', $blk), 8182) + 256 * get_byte(get_raw_page('fv_a', $blk), 8183)");
	push @chain, $blk if $f & 8;
	push @sorted, $blk if ($f & 8) && ($f & 128);
}
cmp_ok(scalar(@chain), '>=', 3, 'the index has buffer pages (' . scalar(@chain) . ')');
cmp_ok(scalar(@sorted), '>=', 1, 'some of them sorted (' . scalar(@sorted) . ')');
$node->stop;

sub rw_page
{
	my ($blk, $edit) = @_;
	open(my $fh, '+<', $file) or die "open: $!";
	binmode $fh;
	seek($fh, $blk * 8192, 0) or die;
	read($fh, my $page, 8192) == 8192 or die "short read";
	$page = $edit->($page);
	seek($fh, $blk * 8192, 0) or die;
	print $fh $page;
	close $fh;
}

sub set_version
{
	my ($v) = @_;
	# FrMetaPageData at offset 24: magic, version, root, height (uint32 each)
	rw_page(0, sub { my $p = shift; substr($p, 28, 4) = pack('V', $v); $p });
}

# reverse a page's line pointers (its messages then run in descending order)
sub reverse_page
{
	my ($p, $keep_flag) = @_;
	my $lower = unpack('v', substr($p, 12, 2));
	my $n = ($lower - 24) / 4;
	my @lp = map { substr($p, 24 + 4 * $_, 4) } 0 .. $n - 1;
	substr($p, 24, 4 * $n) = join('', reverse @lp);
	my $flags = unpack('v', substr($p, 8182, 2));
	substr($p, 8182, 2) = pack('v', $flags & ~128) unless $keep_flag;
	return $p;
}

# a page flagged sorted whose messages are out of order is caught
copy($file, "$file.orig") or die "copy: $!";
rw_page($sorted[0], sub { reverse_page(shift, 1) });
$node->start;
my ($crc, $cout, $cerr) = $node->psql('postgres', "SELECT fractal_check('fv_a')");
like($cerr, qr/sorted buffer page has messages \d+ and \d+ out of order/,
	'fractal_check reports a sorted buffer page out of order');
$node->stop;
copy("$file.orig", $file) or die "copy: $!";

# format 1: version 1, buffer pages unsorted and unflagged
set_version(1);
rw_page($_, sub { reverse_page(shift, 0) }) for @chain;
$node->start;

my @queries = (
	'SELECT count(*), sum(id) FROM fv WHERE a < 300000000',
	'SELECT count(*), sum(id) FROM fv WHERE a BETWEEN 400000000 AND 420000000',
	'SELECT array_agg(id ORDER BY a, id) FROM (SELECT id, a FROM fv WHERE a > 900000000 ORDER BY a LIMIT 50) x',
	'SELECT array_agg(id ORDER BY a DESC, id) FROM (SELECT id, a FROM fv WHERE a < 100000000 ORDER BY a DESC LIMIT 50) x',
);
sub compare_all
{
	my ($what) = @_;
	my $keys = $node->safe_psql('postgres',
		'SELECT string_agg(a::text, \',\') FROM (SELECT a FROM fv ORDER BY id LIMIT 40) s');
	my @qs = (@queries, map { "SELECT count(*), min(id) FROM fv WHERE a = $_" } split(/,/, $keys));
	my $bad = 0;
	for my $q (@qs)
	{
		my $i = $node->safe_psql('postgres', "SET enable_seqscan = off; SET enable_bitmapscan = off; $q");
		my $s = $node->safe_psql('postgres', "SET enable_indexscan = off; SET enable_bitmapscan = off; $q");
		$bad++ if $i ne $s;
	}
	is($bad, 0, "$what: " . scalar(@qs) . ' queries through the index equal a seqscan');
}

is($node->safe_psql('postgres',
	"SELECT get_byte(get_raw_page('fv_a', 0), 28)"), '1', 'the metapage says format 1');
$node->safe_psql('postgres', "SELECT fractal_check('fv_a', true)");
pass('fractal_check passes on the format-1 index');
compare_all('format 1');

# pages whose special area is larger than the 16-byte opaque data: filtered
sub filtered_pages
{
	my ($idx) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM generate_series(1, pg_relation_size('$idx') / 8192 - 1) b,
			 page_header(get_raw_page('$idx', b::int)) h
		WHERE h.special < 8176});
}

# pages flagged FR_LFILTERS (512): leaf filter pages
$node->safe_psql('postgres', slurp_file('test/sql/node_buffers.sql'));
sub leaf_filter_pages
{
	my ($idx) = @_;
	return $node->safe_psql('postgres', "SELECT fr_leaf_filter_pages('$idx')");
}

# it keeps working: inserts (appends to unsorted tails), flushes, VACUUM;
# it asks for filters, but a format-1 index gets none
$node->safe_psql('postgres', "ALTER INDEX fv_a SET (filter_bytes = 1024)");
$node->safe_psql('postgres', q{
INSERT INTO fv SELECT g, (random() * 1e9)::int8 FROM generate_series(60001, 90000) g;
DELETE FROM fv WHERE id % 7 = 0;
VACUUM fv;
INSERT INTO fv SELECT g, (random() * 1e9)::int8 FROM generate_series(90001, 100000) g;
});
$node->safe_psql('postgres', "SELECT fractal_check('fv_a', true)");
pass('fractal_check passes after inserts and VACUUM on the format-1 index');
compare_all('format 1 after inserts and VACUUM');
is(filtered_pages('fv_a'), '0', 'the format-1 index got no filtered buffer page');
is(leaf_filter_pages('fv_a'), '0', 'the format-1 index got no leaf filter page');

# format 3 (buffer page filters, no leaf filters): a second index, built
# now (format 4) and turned into format 3 by its metapage before it holds
# any leaf filter page, takes inserts and flushes and stays without one
$node->safe_psql('postgres', q{
CREATE TABLE fv3 (id int, a int8);
CREATE INDEX fv3_a ON fv3 USING fractal (a) WITH (buffer_pages = 8, partition_children = 4);
CHECKPOINT;
});
is(leaf_filter_pages('fv3_a'), '0', 'the empty index has no leaf filter page yet');
my $file3 = $node->data_dir . '/'
  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('fv3_a')");
$node->stop;
my $file_save = $file;
$file = $file3;
set_version(3);
$file = $file_save;
$node->start;
$node->safe_psql('postgres',
	'INSERT INTO fv3 SELECT g, (random() * 1e9)::int8 FROM generate_series(1, 60000) g');
cmp_ok(filtered_pages('fv3_a'), '>', 0, 'the format-3 index writes filtered buffer pages');
is(leaf_filter_pages('fv3_a'), '0', 'and no leaf filter page');
is($node->safe_psql('postgres', "SELECT get_byte(get_raw_page('fv3_a', 0), 28)"),
	'3', 'it stays format 3');
$node->safe_psql('postgres', "SELECT fractal_check('fv3_a', true)");
pass('fractal_check passes on the format-3 index');

# Format 5 stores compressed leaves in blocks (FrZHeader format 3, each
# block's first entry plain); format 4 wrote one zstd frame per leaf
# (format 1 or 2).  A compressed index turned into format 4 keeps writing
# single-frame leaves; set to format 5 it writes leaves in blocks beside
# the old ones, and both kinds are read and checked.
$node->safe_psql('postgres', q{
CREATE TABLE fz (id int, t text);
CREATE INDEX fz_t ON fz USING fractal (t) WITH (compression = zstd, partition_children = 2);
CHECKPOINT;
});
my $filez = $node->data_dir . '/'
  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('fz_t')");
sub zleaf_formats
{
	# compressed leaves (FR_LEAF | FR_COMPRESSED, a leaf's 16-byte special
	# area) by the format byte of their FrZHeader
	return $node->safe_psql('postgres', q{
		SELECT coalesce(string_agg(f || ':' || n, ' ' ORDER BY f), '') FROM (
		SELECT get_byte(p, h.upper + 2) AS f, count(*) AS n
		FROM generate_series(1, pg_relation_size('fz_t') / 8192 - 1) b,
			 LATERAL (SELECT get_raw_page('fz_t', b::int) AS p) r,
			 LATERAL page_header(p) h
		WHERE ((get_byte(p, 8182) | (get_byte(p, 8183) << 8)) & 66) = 66
		  AND h.special = 8176
		GROUP BY 1) s});
}
sub compare_fz
{
	my ($what) = @_;
	my @qs = (
		"SELECT md5(string_agg(t, ',' ORDER BY t, id)) FROM fz WHERE t >= 'row/'",
		"SELECT md5(string_agg(t, ',')) FROM (SELECT t FROM fz WHERE t < 'row/5' ORDER BY t DESC LIMIT 2000) s",
		"SELECT count(*), sum(id) FROM fz WHERE t BETWEEN 'row/0000012' AND 'row/0000450'",
		"SELECT count(*), sum(id) FROM fz WHERE t = ANY (ARRAY['row/0000777/a', 'row/0030001/b', 'row/0061234/a', 'nope'])");
	my $bad = 0;
	for my $q (@qs)
	{
		my $i = $node->safe_psql('postgres', "SET enable_seqscan = off; SET enable_bitmapscan = off; $q");
		my $s = $node->safe_psql('postgres', "SET enable_indexscan = off; SET enable_bitmapscan = off; $q");
		$bad++, diag("$what: $q\nindex: $i\nseqscan: $s") if $i ne $s;
	}
	is($bad, 0, "$what: index scans equal seqscans");
}
$node->stop;
$file_save = $file;
$file = $filez;
set_version(4);
$node->start;
$node->safe_psql('postgres', q{
INSERT INTO fz SELECT g, 'row/' || lpad((g * 7919 % 40000)::text, 7, '0') || '/' || (CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END)
FROM generate_series(1, 40000) g;
});
my $f4 = zleaf_formats();
like($f4, qr/^(?:[12]:\d+ ?)+$/, "the format-4 index writes single-frame compressed leaves only ($f4)");
$node->safe_psql('postgres', "SELECT fractal_check('fz_t', true)");
pass('fractal_check passes on single-frame leaves');
compare_fz('format 4, single-frame leaves');
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop;
set_version(5);
$file = $file_save;
$node->start;
# keys above every old key go to new leaves; the few old-range keys
# rewrite some old leaves and leave the rest in the old format (two
# children per buffer partition: a flush rewrites few leaves)
$node->safe_psql('postgres', q{
INSERT INTO fz SELECT g, 'row/' || lpad((g * 7919 % 40000 + 40000)::text, 7, '0') || '/a'
FROM generate_series(40001, 90000) g;
INSERT INTO fz SELECT g, 'row/' || lpad((g % 3000)::text, 7, '0') || '/c'
FROM generate_series(90001, 90600) g;
});
my $f5 = zleaf_formats();
like($f5, qr/\b[12]:\d+/, "after format 5, old single-frame leaves remain ($f5)");
like($f5, qr/\b3:\d+/, 'and new leaves are written in blocks');
$node->safe_psql('postgres', "SELECT fractal_check('fz_t', true)");
pass('fractal_check passes on mixed single-frame and block leaves');
compare_fz('format 5 with old leaves');
$node->safe_psql('postgres', 'DELETE FROM fz WHERE id % 5 = 0; VACUUM fz');
$node->safe_psql('postgres', "SELECT fractal_check('fz_t', true)");
pass('fractal_check passes after VACUUM of mixed leaves');
compare_fz('mixed leaves after VACUUM');

# an unknown version is refused clearly, and REINDEX repairs it
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop;
set_version(99);
$node->start;
my ($rc, $out, $err) = $node->psql('postgres',
	'SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM fv WHERE a < 5',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($rc, 0, 'a scan of a version-99 index fails');
like($err, qr/XX002.*format version 99.*REINDEX required/s,
	'with index_corrupted, naming the version, and "REINDEX required"');
$node->safe_psql('postgres', 'REINDEX INDEX fv_a');
is($node->safe_psql('postgres', "SELECT get_byte(get_raw_page('fv_a', 0), 28)"),
	'5', 'REINDEX writes format 5');
compare_all('after REINDEX');
$node->safe_psql('postgres',
	'INSERT INTO fv SELECT g, (random() * 1e9)::int8 FROM generate_series(100001, 130000) g');
cmp_ok(filtered_pages('fv_a'), '>', 0, 'after REINDEX, new buffer pages carry filters');
cmp_ok(leaf_filter_pages('fv_a'), '>', 0, 'and leaves written since have leaf filters');
$node->safe_psql('postgres', "SELECT fractal_check('fv_a', true)");
pass('fractal_check passes on the filtered format-5 index');
compare_all('format 5 with filters');

# a leaf filter page whose slots lost their bits lacks the keys of their
# leaves: fractal_check says so (then the page is put back)
$file = $node->data_dir . '/'
  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('fv_a')");	# REINDEX moved it
my $lfblk = $node->safe_psql('postgres', q{
	SELECT b FROM generate_series(1, pg_relation_size('fv_a') / 8192 - 1) b,
		 LATERAL (SELECT get_raw_page('fv_a', b::int) AS p) r
	WHERE ((get_byte(p, 8182) | (get_byte(p, 8183) << 8)) & 512) <> 0
	ORDER BY b LIMIT 1});
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop;
# Leaf filter page 'p': the slot size in bytes of bits and the offset of
# every leaf slot in use.  Contents at 24: nslots u16, slot_bytes u16,
# typlen, chain_bytes u16 (0: slot_bytes); slots from 32, each
# FrFilterData (16 bytes: skip u32, nkeys u32, typlen i16, nbytes u16,
# flags, unused) and its bits: slot 0, the chain slot (chain_bytes), left
# out here, then the leaf slots (slot_bytes each); a free slot's skip is
# 0xFFFFFFFF.
sub used_leaf_slots
{
	my ($p) = @_;
	my ($nslots, $slot_bytes, $typlen, $chain_bytes) = unpack('vvsv', substr($p, 24, 8));
	$chain_bytes ||= $slot_bytes;
	my @at = grep { unpack('V', substr($p, $_, 4)) != 0xFFFFFFFF }
	  map { 32 + 16 + $chain_bytes + ($_ - 1) * (16 + $slot_bytes) } 1 .. $nslots - 1;
	return ($slot_bytes, @at);
}

my $lfpage_orig;
rw_page($lfblk, sub {
	my $p = shift;
	$lfpage_orig = $p;
	my ($slot_bytes, @at) = used_leaf_slots($p);
	substr($p, $_ + 16, $slot_bytes) = "\0" x $slot_bytes for @at;
	return $p;
});
$node->start;
($rc, $out, $err) = $node->psql('postgres', "SELECT fractal_check('fv_a')");
like($err, qr/leaf filter lacks the key of entry/,
	'fractal_check reports a leaf filter that lacks a key of its leaf');
$node->stop;
rw_page($lfblk, sub { $lfpage_orig });
$node->start;
$node->safe_psql('postgres', "SELECT fractal_check('fv_a', true)");
pass('with the page put back, fractal_check passes');

# a leaf slot whose size field is wrong (a lookup reads only the slots it
# uses, so the page's read check no longer sees it): a lookup that tests
# the slot and fractal_check both report it instead of reading past it
$node->stop;
rw_page($lfblk, sub {
	my $p = shift;
	my ($slot_bytes, @at) = used_leaf_slots($p);
	substr($p, $_ + 10, 2) = pack('v', 0xFFC0) for @at;	# nbytes
	return $p;
});
$node->start;
($rc, $out, $err) = $node->psql('postgres',
	'SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_hashjoin = off; '
	  . 'SET enable_mergejoin = off; SET enable_material = off; SET enable_memoize = off; '
	  . 'SELECT count(*) FROM fv f1 WHERE EXISTS (SELECT 1 FROM fv f2 WHERE f2.a = f1.a)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/XX002.*leaf filter page has an invalid slot/s,
	'a lookup that tests a slot with a wrong size reports index corruption');
($rc, $out, $err) = $node->psql('postgres', "SELECT fractal_check('fv_a')");
like($err, qr/leaf filter page has an invalid slot/,
	'fractal_check reports the slot');
$node->stop;
rw_page($lfblk, sub { $lfpage_orig });
$node->start;
$node->safe_psql('postgres', "SELECT fractal_check('fv_a', true)");
pass('with the page put back again, fractal_check passes');

# A leaf filter page of the layout before 2026-12-05 (chain_bytes 0: the
# chain slot as large as a leaf slot) keeps working: the page is rewritten
# in that layout (the same slot count and size, every leaf slot free, the
# chain slot passing every key), then inserts write leaves of its
# partition, and lookups, fractal_check and the page's layout are checked.
$node->stop;
rw_page($lfblk, sub {
	my $p = shift;
	my ($nslots, $slot_bytes, $typlen) = unpack('vvs', substr($p, 24, 6));
	my $slots = pack('VVsvvv', 0, 0, $typlen, $slot_bytes, 2, 0) . ("\0" x $slot_bytes);
	$slots .= pack('VVsvvv', 0xFFFFFFFF, 0, $typlen, $slot_bytes, 0, 0) . ("\0" x $slot_bytes)
	  for 2 .. $nslots;
	my $end = 32 + length($slots);
	substr($p, 12, 2) = pack('v', $end);	# pd_lower
	substr($p, 24, 8) = pack('vvsv', $nslots, $slot_bytes, $typlen, 0);
	substr($p, 32, 8176 - 32) = $slots . ("\0" x (8176 - $end));
	return $p;
});
$node->start;
$node->safe_psql('postgres', "SELECT fractal_check('fv_a', true)");
pass('an old-layout leaf filter page passes fractal_check');
$node->safe_psql('postgres',
	'INSERT INTO fv SELECT g, (random() * 1e9)::int8 FROM generate_series(130001, 190000) g');
my $old = $node->safe_psql('postgres', "SELECT encode(get_raw_page('fv_a', $lfblk), 'hex')");
$old = pack('H*', $old);
is(unpack('v', substr($old, 30, 2)), 0, 'the old-layout page keeps its layout');
my ($ob, @oused) = used_leaf_slots($old);
cmp_ok(scalar(@oused), '>', 0, 'inserts gave leaves slots in the old-layout page');
$node->safe_psql('postgres', "SELECT fractal_check('fv_a', true)");
pass('fractal_check passes after inserts through the old-layout page');
compare_all('an old-layout leaf filter page');

# a filter with its bits cleared lacks the keys of its page
my $fblk = $node->safe_psql('postgres', q{
	SELECT b FROM generate_series(1, pg_relation_size('fv_a') / 8192 - 1) b,
		 page_header(get_raw_page('fv_a', b::int)) h
	WHERE h.special < 8176 AND h.lower > 24 ORDER BY b LIMIT 1});
$file = $node->data_dir . '/'
  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('fv_a')");	# REINDEX moved it
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop;
rw_page($fblk, sub {
	my $p = shift;
	my $special = unpack('v', substr($p, 16, 2));
	# opaque (16 bytes), then FrFilterData: skip, nkeys, typlen, nbytes
	my $nbytes = unpack('v', substr($p, $special + 16 + 10, 2));
	substr($p, $special + 32, $nbytes) = "\0" x $nbytes;
	return $p;
});
$node->start;
($rc, $out, $err) = $node->psql('postgres', "SELECT fractal_check('fv_a')");
like($err, qr/buffer page filter lacks the key of message/,
	'fractal_check reports a filter that lacks a key of its page');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server stayed up');

# The SQL side is versioned too: extension 1.0 updates to 1.1, which adds
# fractal_counters(), then to 1.2 (below); in a server that did not preload
# the library the counters do not exist, and asking for them is a clear
# error.
$node->safe_psql('postgres', 'CREATE DATABASE extver');
$node->safe_psql('extver', "CREATE EXTENSION fractal VERSION '1.0'");
is($node->safe_psql('extver',
	"SELECT count(*) FROM pg_proc WHERE proname LIKE 'fractal_counters%'"),
	'0', 'extension 1.0 has no counter functions');
$node->safe_psql('extver', "ALTER EXTENSION fractal UPDATE TO '1.1'");
is($node->safe_psql('extver',
	"SELECT extversion FROM pg_extension WHERE extname = 'fractal'"),
	'1.1', 'ALTER EXTENSION UPDATE TO 1.1 brings 1.1');

# 1.2 gives fractal_stats and fractal_level_stats a filter_pages column and
# stops counting leaf filter pages as nodes; the library serves the 1.1
# declarations (no such column, filter pages counted with the nodes) until
# the update, and the totals agree across it.
$node->safe_psql('extver', q{
	CREATE TABLE ev (k int8);
	CREATE INDEX ev_k ON ev USING fractal (k) WITH (buffer_pages = 4);
	INSERT INTO ev SELECT (g * 2654435761) % 1000003 FROM generate_series(1, 30000) g;
	INSERT INTO ev SELECT (g * 2654435761) % 1000003 FROM generate_series(30001, 60000) g;
	CREATE TABLE ev_old AS SELECT * FROM fractal_stats('ev_k');
	CREATE TABLE ev_old_levels AS SELECT * FROM fractal_level_stats('ev_k');
});
is($node->safe_psql('extver',
	"SELECT count(*) FROM pg_attribute WHERE attrelid = 'ev_old'::regclass AND attname = 'filter_pages'"),
	'0', 'fractal_stats of 1.1 has no filter_pages column');
$node->safe_psql('extver', 'ALTER EXTENSION fractal UPDATE');
is($node->safe_psql('extver',
	"SELECT extversion FROM pg_extension WHERE extname = 'fractal'"),
	'1.2', 'ALTER EXTENSION UPDATE brings 1.2');
is($node->safe_psql('extver', q{
	SELECT s.filter_pages > 0, s.node_pages + s.filter_pages = o.node_pages,
		   s.leaf_pages = o.leaf_pages AND s.buffer_pages = o.buffer_pages
	  FROM fractal_stats('ev_k') s, ev_old o}),
	't|t|t', '1.2 counts filter pages apart; node + filter pages = 1.1 node pages');
is($node->safe_psql('extver', q{
	SELECT bool_and(n.nodes + n.filter_pages = o.nodes)
		   AND bool_or(n.filter_pages > 0) AND count(*) = (SELECT count(*) FROM ev_old_levels)
	  FROM fractal_level_stats('ev_k') n JOIN ev_old_levels o USING (level)}),
	't', 'fractal_level_stats per level: nodes + filter pages = 1.1 nodes');
($rc, $out, $err) = $node->psql('extver', 'SELECT * FROM fractal_counters()');
like($err, qr/fractal counters are not available.*\n.*HINT:.*shared_preload_libraries/s,
	'counters without preload: a clear error with a hint');
($rc, $out, $err) = $node->psql('extver', 'SELECT fractal_counters_reset()');
like($err, qr/fractal counters are not available/,
	'counter reset without preload: the same error');

$node->stop;
done_testing();
