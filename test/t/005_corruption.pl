# Corruption: damage pages of fractal indexes on disk (server stopped) and
# check that fractal_check and queries report it as a clean ERROR, and the
# server stays up.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy;

my $node = PostgreSQL::Test::Cluster->new('corrupt');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE EXTENSION pageinspect;
CREATE TABLE cr (id int, a int8);
CREATE INDEX cr_a ON cr USING fractal (a) WITH (buffer_pages = 4);
INSERT INTO cr SELECT g, (g::int8 * 7919) % 1000003 FROM generate_series(1, 100000) g;
CHECKPOINT;
});
$node->safe_psql('postgres', "SELECT fractal_check('cr_a', true)");
pass('the intact index verifies');

my $pgdata = $node->data_dir;
my $file = $pgdata . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('cr_a')");
my $nblocks = $node->safe_psql('postgres', "SELECT pg_relation_size('cr_a') / 8192");

# the special area starts at pd_special (bytes 16-17; the last 16 bytes of
# the page except on buffer pages with a key filter): link(4) level(2)
# flags(2) unused(2) page_id(2)
sub page_flags
{
	my ($blk) = @_;
	return $node->safe_psql('postgres',
		"SELECT get_byte(p, s + 6) + 256 * get_byte(p, s + 7) FROM "
		  . "(SELECT p, get_byte(p, 16) + 256 * get_byte(p, 17) AS s "
		  . "FROM get_raw_page('cr_a', $blk) p) x");
}
my ($leaf, $node_blk);
for my $blk (1 .. $nblocks - 1)
{
	my $f = page_flags($blk);
	$leaf //= $blk if ($f & 2) && !($f & 32);
	$node_blk //= $blk if ($f & 4) && !($f & 32);
}
ok(defined $leaf && defined $node_blk, "found a leaf ($leaf) and a non-root node ($node_blk)");
$node->stop;
copy($file, "$file.orig") or die "copy: $!";

sub poke
{
	my ($blk, $offset, $bytes) = @_;
	open(my $fh, '+<', $file) or die "open: $!";
	binmode $fh;
	seek($fh, $blk * 8192 + $offset, 0) or die;
	print $fh $bytes;
	close $fh;
}

sub check_case
{
	my ($name, $check_re, $query_re) = @_;
	$node->start;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT fractal_check('cr_a', true)");
	isnt($ret, 0, "$name: fractal_check fails");
	like($stderr, $check_re, "$name: fractal_check names the problem");
	($ret, $stdout, $stderr) = $node->psql('postgres',
		'SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM cr WHERE a >= 0');
	if (defined $query_re)
	{
		isnt($ret, 0, "$name: a full index scan fails");
		like($stderr, $query_re, "$name: the query reports it cleanly");
	}
	is($node->safe_psql('postgres', 'SELECT 1'), '1', "$name: the server is still up");
	$node->stop;
	copy("$file.orig", $file) or die "restore: $!";
}

# 1. a leaf whose page id is wrong
poke($leaf, 8186, pack('v', 0x1234));
check_case('bad page id',
	qr/index "cr_a" contains corrupted page at block $leaf/,
	qr/index "cr_a" contains corrupted page at block $leaf/);

# 2. two entries of a leaf swapped (line pointers 1 and 2): order broken
{
	open(my $fh, '<', $file) or die;
	binmode $fh;
	seek($fh, $leaf * 8192 + 24, 0);
	my $lp;
	read($fh, $lp, 8);
	close $fh;
	poke($leaf, 24, substr($lp, 4, 4) . substr($lp, 0, 4));
}
check_case('entries out of order', qr/corrupted at block $leaf: entries 1 and 2 are out of order/, undef);

# 3. a node's first child pointer aimed far past the end of the index
{
	open(my $fh, '<', $file) or die;
	binmode $fh;
	seek($fh, $node_blk * 8192 + 24, 0);
	my $lp;
	read($fh, $lp, 4);
	close $fh;
	my $item_off = unpack('V', $lp) & 0x7fff;
	poke($node_blk, $item_off, pack('V', 4000000));
}
check_case('child pointer past the end', qr/reference to invalid block 4000000/,
	qr/index "cr_a" refers to block 4000000, past its end/);

# 4. a leaf turned into garbage: PostgreSQL's own page header check or ours
poke($leaf, 0, 'x' x 8192);
check_case('garbage page', qr/corrupted page at block $leaf|invalid page in block $leaf/,
	qr/corrupted page at block $leaf|invalid page in block $leaf/);

# 5. the page the metapage names as root lacks FR_ROOT: a scan must report
# corruption, not retry forever.  The metapage's content (after the 24-byte
# page header) is magic, version, root, height as uint32s.  The retry loop
# this guards against never checked for interrupts, so statement_timeout
# could not stop it; psql's own timeout keeps the test from hanging.
{
	open(my $fh, '<', $file) or die;
	binmode $fh;
	my $buf;
	seek($fh, 24 + 8, 0);
	read($fh, $buf, 4);
	my $root = unpack('V', $buf);
	seek($fh, $root * 8192 + 8182, 0);
	read($fh, $buf, 2);
	close $fh;
	my $flags = unpack('v', $buf);
	ok($flags & 32, "block $root named by the metapage has the root flag");
	poke($root, 8182, pack('v', $flags & ~32));

	$node->start;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT fractal_check('cr_a', true)");
	like($stderr, qr/corrupted at block $root: root page lacks the root flag/,
		'root flag missing: fractal_check names the problem');
	my $timed_out;
	($ret, $stdout, $stderr) = $node->psql('postgres',
		"\\set VERBOSITY verbose\n"
		  . "SET statement_timeout = '10s'; SET enable_seqscan = off; SET enable_bitmapscan = off;\n"
		  . "SELECT count(*) FROM cr WHERE a >= 0;\n",
		timeout => 60,
		timed_out => \$timed_out);
	ok(!$timed_out, 'root flag missing: the index scan does not hang');
	like($stderr, qr/ERROR:  XX002: index "cr_a" contains corrupted page at block $root/,
		'root flag missing: the index scan reports corruption');
	unlike($stderr, qr/statement timeout/, 'root flag missing: not by a timeout');
	if ($timed_out)
	{
		# the backend spins without checking for interrupts
		$node->stop('immediate');
	}
	else
	{
		is($node->safe_psql('postgres', 'SELECT 1'), '1', 'root flag missing: the server is still up');
		$node->stop;
	}
	copy("$file.orig", $file) or die "restore: $!";
}

# 6. compressed leaves in blocks (format 5): FrZHeader (nitems u16,
# format u8, nblocks u8, rawsize u32, csize u32) at pd_upper, then one
# FrZBlock (nitems u16, format u8, unused u8, rawsize u32, csize u32) per
# block.  A directory entry whose compressed size runs past the page and a
# header with no blocks are reported as corruption by fractal_check and by
# a full index scan (the reader validates the whole directory first).
$node->start;
$node->safe_psql('postgres', q{
CREATE TABLE crz (id int, t text);
CREATE INDEX crz_t ON crz USING fractal (t) WITH (compression = zstd);
INSERT INTO crz SELECT g, 'key/' || lpad(g::text, 8, '0') FROM generate_series(1, 30000) g;
CHECKPOINT;
});
my ($zblk, $zupper) = split(/\|/, $node->safe_psql('postgres', q{
	SELECT b, h.upper
	FROM generate_series(1, pg_relation_size('crz_t') / 8192 - 1) b,
		 LATERAL (SELECT get_raw_page('crz_t', b::int) AS p) r,
		 LATERAL page_header(p) h
	WHERE ((get_byte(p, 8182) | (get_byte(p, 8183) << 8)) & 66) = 66
	  AND h.special = 8176 AND get_byte(p, h.upper + 2) = 3 AND get_byte(p, h.upper + 3) >= 2
	ORDER BY b LIMIT 1}));
ok(defined $zupper && $zupper ne '', "found a leaf compressed in blocks ($zblk)");
my $zfile = $pgdata . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('crz_t')");
$node->stop;
copy($zfile, "$zfile.orig") or die "copy: $!";
$file = $zfile;		# poke() writes $file

sub check_zcase
{
	my ($name) = @_;
	my $re = qr/index "crz_t" contains corrupted page at block $zblk/;
	$node->start;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT fractal_check('crz_t')");
	like($stderr, $re, "$name: fractal_check reports the page");
	($ret, $stdout, $stderr) = $node->psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM crz WHERE t >= ''");
	like($stderr, $re, "$name: a full index scan reports the page");
	is($node->safe_psql('postgres', 'SELECT 1'), '1', "$name: the server is still up");
	$node->stop;
	copy("$zfile.orig", $zfile) or die "restore: $!";
}

poke($zblk, $zupper + 12 + 12 + 8, pack('V', 0x7fff0000));	# block 1's csize
check_zcase('a block whose frame runs past the page');
poke($zblk, $zupper + 3, pack('C', 0));		# nblocks 0
check_zcase('a blocked leaf with no blocks');
$node->start;
$node->safe_psql('postgres', "SELECT fractal_check('crz_t', true)");
pass('restored, the compressed index verifies');
$node->stop;

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no backend crashed');
done_testing();
