# Bounded buffers with wide keys.  Reported problem: an index on a 320-byte
# text column, built by CREATE INDEX and then fed random inserts, never
# flushes its level-1 buffers, so they grow without bound (and with them
# the pages every insert and query has to look through).
#
# For each of four indexes:
#   text300       (k text), random keys of exactly 300 bytes
#   text300_int8  (k text, n int8), the same keys plus an int8
#   text300_pc256 (k text) WITH (partition_children = 256)
#   mixed8_900    (k text), random key lengths from 8 to 900 bytes
# load 20,000 rows, CREATE INDEX, then insert 20 batches of 5,000 random
# rows.  After every batch the buffer pages of every internal node are read
# from the raw pages (test/sql/node_buffers.sql, via pageinspect) and
# compared with that node's budget, max(4, min(buffer_pages,
# ceil(children * percent / 100))), percent being buffer_percent or, above
# level 1 once the index is large against shared buffers, at least 30
# (fr_node_budget; computed by fr_node_buffers); and the index blocks the batch
# touched are counted (pg_stat_get_xact_blocks_fetched inside the batch's
# own transaction: the per-backend counter that is later flushed into
# pg_statio_user_indexes.idx_blks_hit + idx_blks_read, with the same value;
# read before and after the INSERT, so no stats flush timing is involved).
#
# Asserted per index: no node ever holds more than budget + 8 buffer pages;
# the last batch touches at most 3 times the blocks of the first; the index
# holds exactly the table's rows (leaf entries + buffered messages: without
# a crash no flush is left half done, so no entry may be stored twice, see
# src/README.md section 2); fractal_check(..., true) passes; and
# equality, range and ORDER BY ... LIMIT (both directions) queries return
# through index scans and bitmap scans what a sequential scan returns.
# Keys are built from md5 hex digits, which pglz cannot compress, so keys
# above 512 bytes stay wide in the index too.  No timing is asserted.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $quick = $ENV{FRACTAL_TEST_QUICK} ? 1 : 0;
my $nbatches = $quick ? 8 : 20;
my $batch_rows = 5000;
my $excess_allowed = 8;

my $node = PostgreSQL::Test::Cluster->new('wide');
$node->init;
# no autovacuum: its bulk delete holds the flush lock and would defer flushes
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fractal'
shared_buffers = 64MB
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION fractal;
CREATE EXTENSION pageinspect;
CREATE FUNCTION rnd_text(n int) RETURNS text LANGUAGE sql VOLATILE AS $$
	SELECT substr(string_agg(md5(random()::text), ''), 1, n) FROM generate_series(1, (n + 31) / 32)
$$;
});
$node->safe_psql('postgres', slurp_file('test/sql/node_buffers.sql'));
$node->safe_psql('postgres', slurp_file('test/sql/diff_functions.sql'));

my @configs = (
	{ name => 'text300', cols => 'k', with => '', gen => 'rnd_text(300)' },
	{ name => 'text300_int8', cols => 'k, n', with => '', gen => 'rnd_text(300)' },
	{ name => 'text300_pc256', cols => 'k', with => 'WITH (partition_children = 256)', gen => 'rnd_text(300)' },
	{ name => 'mixed8_900', cols => 'k', with => '', gen => 'rnd_text(8 + (random() * 892)::int)' },
);

my $ti = 0;
for my $c (@configs)
{
	my $name = $c->{name};
	my $t = 'w' . ++$ti;
	my $idx = "${t}_k";
	my $insert = "INSERT INTO $t (k, n) SELECT $c->{gen}, (random() * 1000)::int8 FROM generate_series(1, %d)";
	$node->safe_psql('postgres', "CREATE TABLE $t (id serial, k text, n int8)");
	$node->safe_psql('postgres', sprintf($insert, 20000));
	$node->safe_psql('postgres', "CREATE INDEX $idx ON $t USING fractal ($c->{cols}) $c->{with}");

	my ($height, $lens) = split /\|/, $node->safe_psql('postgres',
		"SELECT (SELECT height FROM fractal_stats('$idx')), min(length(k)) || '-' || max(length(k)) FROM $t");
	note "$name: built, height $height, key lengths $lens";
	cmp_ok($height, '>=', 2, "$name: the built tree has level-1 nodes below a node (height $height)");

	my (@blocks, @maxpages);
	my ($worst, $worst_at) = (-1e9, '');
	for my $b (1 .. $nbatches)
	{
		my ($before, $after) = split /\n/, $node->safe_psql('postgres', qq{
			BEGIN;
			SELECT pg_stat_get_xact_blocks_fetched('$idx'::regclass);
			} . sprintf($insert, $batch_rows) . qq{;
			SELECT pg_stat_get_xact_blocks_fetched('$idx'::regclass);
			COMMIT;});
		push @blocks, $after - $before;

		# per-node maximum over every internal node, with where it happened
		my ($maxpages, $excess, $where) = split /\|/, $node->safe_psql('postgres', qq{
			SELECT buffer_pages, buffer_pages - budget,
				   'level ' || level || ' block ' || blkno || ' (' || children || ' children, '
				   || partitions || ' partitions, budget ' || budget || ')'
			  FROM fr_node_buffers('$idx')
			 ORDER BY buffer_pages - budget DESC, buffer_pages DESC LIMIT 1});
		push @maxpages, $maxpages;
		($worst, $worst_at) = ($excess, "batch $b: $maxpages pages at $where") if $excess > $worst;
		my $levels = $node->safe_psql('postgres', qq{
			SELECT string_agg(level || ':' || nodes || 'n/' || buffer_pages || 'p', ' ' ORDER BY level DESC)
			  FROM fractal_level_stats('$idx') WHERE level > 0});
		note sprintf("%s batch %2d: %6d index blocks touched; most buffer pages in a node %3d (over budget by %3d); levels %s",
			$name, $b, $blocks[-1], $maxpages, $excess, $levels);
	}

	diag "$name: blocks touched per batch: @blocks";
	diag "$name: max buffer pages of a node after each batch: @maxpages";
	diag "$name: worst: $worst_at";
	cmp_ok($worst, '<=', $excess_allowed,
		"$name: no node's buffers exceed its budget by more than $excess_allowed pages (worst: $worst_at)");
	cmp_ok($blocks[-1], '<=', 3 * $blocks[0],
		"$name: the last batch touches at most 3x the index blocks of the first ($blocks[0] -> $blocks[-1])");

	is($node->safe_psql('postgres',
			"SELECT leaf_entries + buffered_messages - (SELECT count(*) FROM $t) FROM fractal_stats('$idx')"),
		'0', "$name: the index holds exactly the table's rows");
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT fractal_check('$idx', true)");
	is($ret, 0, "$name: fractal_check(..., true) passes");
	diag "$name: fractal_check: $err" if $ret;

	# queries: keys sampled from the table (existing and absent ones)
	my @keys = split /\n/, $node->safe_psql('postgres',
		"SELECT k || '|' || n FROM $t ORDER BY random() LIMIT 6");
	my $order = $c->{cols} eq 'k' ? 'k' : 'k, n';
	my $order_desc = $c->{cols} eq 'k' ? 'k DESC' : 'k DESC, n DESC';
	my $agg = "SELECT count(*) || ':' || coalesce(sum(id), 0) FROM $t WHERE";
	my @queries = ("$agg k >= ''", "$agg k < '1'", "$agg k > 'fe'");
	for my $i (0 .. $#keys)
	{
		my ($k, $n) = split /\|/, $keys[$i];
		my $k2 = (split /\|/, $keys[($i + 1) % @keys])[0];
		($k, $k2) = ($k2, $k) if $k2 lt $k;
		my $p = substr($k, 0, 2);
		push @queries,
		  "$agg k = '$k'",
		  "$agg k = '${k}0'",
		  "$agg k BETWEEN '$k' AND '$k2'",
		  "$agg k >= '$p' AND k < '$p' || 'f'",
		  "SELECT string_agg(id::text, ',') FROM (SELECT id FROM $t WHERE k >= '$k' ORDER BY $order LIMIT 25) s",
		  "SELECT string_agg(id::text, ',') FROM (SELECT id FROM $t WHERE k <= '$k' ORDER BY $order_desc LIMIT 25) s",
		  "SELECT string_agg(id::text, ',') FROM (SELECT id FROM $t WHERE k > '$p' ORDER BY $order LIMIT 40) s";
		push @queries, "$agg k = '$k' AND n = $n", "$agg k = '$k' AND n >= $n"
		  if $c->{cols} ne 'k';
	}
	my $bad = 0;
	for my $q (@queries)
	{
		my $r = $node->safe_psql('postgres', "SELECT fr_diff_check(\$q\$$q\$q\$, '$idx', true)");
		if ($r ne '')
		{
			$bad++;
			diag "$name: $r";
		}
	}
	is($bad, 0, "$name: " . scalar(@queries) . " queries agree across index, bitmap and seq scans");
}

$node->stop;
done_testing();
