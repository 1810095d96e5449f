/*-------------------------------------------------------------------------
 *
 * fr_options.c
 *	  Reloptions, settings (GUCs), planner cost estimate and build phase
 *	  names of the fractal index.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/reloptions.h"
#include "access/xlog.h"
#include "commands/progress.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "utils/guc.h"
#include "utils/index_selfuncs.h"
#include "utils/selfuncs.h"

#include "fractal.h"

static relopt_kind fr_relopt_kind;

static relopt_enum_elt_def fr_compression_values[] = {
	{"none", FR_COMPRESSION_NONE},
	{"zstd", FR_COMPRESSION_ZSTD},
	{"auto", FR_COMPRESSION_AUTO},
	{(const char *) NULL}
};

/* fractal.scan_prefetch: see fr_init_gucs */
bool		fr_scan_prefetch = true;

/*
 * fractal.wal_image_compression: auto (the default: per record, fr_xlog.c),
 * the methods this server was built with (as wal_compression's), and the
 * boolean spellings wal_compression accepts (on: the best method it has,
 * for every image: FR_BEST_IMAGE_COMPRESSION)
 */
static const struct config_enum_entry fr_image_compression_values[] = {
	{"auto", FR_IMAGES_AUTO, false},
	{"off", WAL_COMPRESSION_NONE, false},
	{"pglz", WAL_COMPRESSION_PGLZ, false},
#ifdef USE_LZ4
	{"lz4", WAL_COMPRESSION_LZ4, false},
#endif
#ifdef USE_ZSTD
	{"zstd", WAL_COMPRESSION_ZSTD, false},
#endif
	{"on", FR_BEST_IMAGE_COMPRESSION, true},
	{"true", FR_BEST_IMAGE_COMPRESSION, true},
	{"yes", FR_BEST_IMAGE_COMPRESSION, true},
	{"1", FR_BEST_IMAGE_COMPRESSION, true},
	{"false", WAL_COMPRESSION_NONE, true},
	{"no", WAL_COMPRESSION_NONE, true},
	{"0", WAL_COMPRESSION_NONE, true},
	{NULL, 0, false}
};

/*
 * Register the settings; called once from _PG_init.  Two developer
 * settings to measure with: fractal.scan_prefetch (on) lets out-of-memory
 * scans start a leaf's read before the reads of the filter page and chain
 * above it (fr_scan_prefetch_leaf); fractal.batch_inserts (on) batches a
 * transaction's inserts (fr_pending.c); off measures without either.  And
 * fractal.wal_image_compression, how the index's WAL compresses its page
 * images (fr_xlog.c); fractal.heap_prefetch, how far index and index-only
 * scans of a large index read the heap ahead, and
 * fractal.heap_prefetch_min_us, below what heap read time they do not
 * (fr_heapprefetch.c).
 */
void
fr_init_gucs(void)
{
	DefineCustomBoolVariable("fractal.scan_prefetch",
							 "Lets fractal index scans start a leaf's read before reading the buffers above it.",
							 "A developer setting, to measure the read-ahead against its absence.",
							 &fr_scan_prefetch, true, PGC_USERSET,
							 GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomBoolVariable("fractal.batch_inserts",
							 "Lets a transaction's inserts into plain fractal indexes wait in memory and go in together.",
							 "A developer setting, to measure batched inserts against single ones (fr_pending.c).",
							 &fr_batch_inserts, true, PGC_USERSET,
							 GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomIntVariable("fractal.heap_prefetch",
							"Index entries past the current one whose heap blocks a scan of a large fractal index starts reading ahead of the executor.",
							"Applies to index and index-only scans of an index of a quarter of shared_buffers or more over a table larger than shared_buffers; 0 turns it off, as does an effective_io_concurrency of 0.",
							&fr_heap_prefetch_distance, FR_DEFAULT_HEAP_PREFETCH,
							0, FR_MAX_HEAP_PREFETCH, PGC_USERSET,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("fractal.heap_prefetch_min_us",
							"Heap reads faster than this, averaged over a backend's recent fractal index scans, are taken as served from memory, where heap prefetch only costs.",
							"Microseconds; 0 prefetches however fast the reads are.",
							&fr_heap_prefetch_min_us, FR_DEFAULT_HEAP_PREFETCH_MIN_US,
							0, 1000000, PGC_USERSET,
							0, NULL, NULL, NULL);
	fr_wal_image_compression = FR_IMAGES_AUTO;
	DefineCustomEnumVariable("fractal.wal_image_compression",
							 "Compresses full-page images in the WAL records of fractal indexes.",
							 "Applies while wal_compression is off; auto compresses images of new or rewritten pages with lz4 and the others with zstd, off logs them as PostgreSQL does by default.",
							 &fr_wal_image_compression,
							 FR_IMAGES_AUTO,
							 fr_image_compression_values, PGC_SUSET,
							 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("fractal");
}

/*
 * Register the reloptions; called once from _PG_init.
 */
void
fr_init_reloptions(void)
{
	fr_relopt_kind = add_reloption_kind();
	add_int_reloption(fr_relopt_kind, "buffer_percent",
					  "Message buffer pages an internal node may hold before it flushes its fullest partition, as a percentage of its children",
					  FR_DEFAULT_BUFFER_PERCENT, FR_MIN_BUFFER_PERCENT,
					  FR_MAX_BUFFER_PERCENT, ShareUpdateExclusiveLock);
	add_int_reloption(fr_relopt_kind, "buffer_pages",
					  "Most message buffer pages an internal node may hold before it flushes its fullest partition",
					  FR_DEFAULT_BUFFER_PAGES, FR_MIN_BUFFER_PAGES,
					  FR_MAX_BUFFER_PAGES, ShareUpdateExclusiveLock);
	add_int_reloption(fr_relopt_kind, "partition_children",
					  "Children sharing one message buffer partition before the partition is split",
					  FR_DEFAULT_PARTITION_CHILDREN, FR_MIN_PARTITION_CHILDREN,
					  FR_MAX_PARTITION_CHILDREN, ShareUpdateExclusiveLock);
	add_int_reloption(fr_relopt_kind, "fillfactor",
					  "Packs leaf pages built by CREATE INDEX to this percentage",
					  FR_DEFAULT_FILLFACTOR, FR_MIN_FILLFACTOR, 100,
					  ShareUpdateExclusiveLock);
	add_enum_reloption(fr_relopt_kind, "compression",
					   "Compression of leaf pages written from now on (none, zstd, or auto: zstd once the index takes a quarter of shared_buffers)",
					   fr_compression_values, FR_DEFAULT_COMPRESSION,
					   "Valid values are \"none\", \"zstd\" and \"auto\".",
					   ShareUpdateExclusiveLock);
	add_int_reloption(fr_relopt_kind, "compression_level",
					  "zstd compression level of leaf pages (0: -1 when every column has a fixed width, else 1; negative: zstd's fast levels)",
					  FR_DEFAULT_COMPRESSION_LEVEL, FR_MIN_COMPRESSION_LEVEL,
					  FR_MAX_COMPRESSION_LEVEL, ShareUpdateExclusiveLock);
	add_int_reloption(fr_relopt_kind, "filter_bytes",
					  "Bytes of key filter in each message buffer page written from now on (0 = none; otherwise a multiple of 64)",
					  FR_DEFAULT_FILTER_BYTES, 0, FR_MAX_FILTER_BYTES,
					  ShareUpdateExclusiveLock);
}

bytea *
froptions(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"buffer_pages", RELOPT_TYPE_INT, offsetof(FrOptions, buffer_pages)},
		{"buffer_percent", RELOPT_TYPE_INT, offsetof(FrOptions, buffer_percent)},
		{"partition_children", RELOPT_TYPE_INT, offsetof(FrOptions, partition_children)},
		{"fillfactor", RELOPT_TYPE_INT, offsetof(FrOptions, fillfactor)},
		{"compression", RELOPT_TYPE_ENUM, offsetof(FrOptions, compression)},
		{"compression_level", RELOPT_TYPE_INT, offsetof(FrOptions, compression_level)},
		{"filter_bytes", RELOPT_TYPE_INT, offsetof(FrOptions, filter_bytes)},
	};
	FrOptions  *opts;

	opts = (FrOptions *) build_reloptions(reloptions, validate, fr_relopt_kind,
										  sizeof(FrOptions), tab, lengthof(tab));
	if (validate && opts && opts->filter_bytes % FR_FILTER_BLOCK != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for fractal option \"filter_bytes\": %d",
						opts->filter_bytes),
				 errdetail("filter_bytes must be 0 or a multiple of %d between %d and %d.",
						   FR_FILTER_BLOCK, FR_FILTER_BLOCK, FR_MAX_FILTER_BYTES)));
	return (bytea *) opts;
}

/*
 * Cost estimate: btree's estimate (same strategies, same statistics, same
 * correlation logic; it reads no index pages) plus the CPU cost of looking
 * through the message buffers on the way down, which a btree does not pay.
 * Each descent compares the qualifying key against roughly one partition
 * chain per buffered level.
 */
/*
 * How many descents the '=' array keys of 'path' make: the product of
 * their arrays' estimated lengths, as btcostestimate counts them.
 */
static double
fr_array_scans(PlannerInfo *root, IndexPath *path)
{
	double		n = 1.0;
	ListCell   *lc;

	foreach(lc, path->indexclauses)
	{
		IndexClause *iclause = lfirst_node(IndexClause, lc);
		ListCell   *lc2;

		foreach(lc2, iclause->indexquals)
		{
			RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc2);

			if (IsA(rinfo->clause, ScalarArrayOpExpr))
			{
				ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) rinfo->clause;

				n *= Max(1, estimate_array_length(lsecond(saop->args)));
			}
		}
	}
	return n;
}

void
frcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				Cost *indexStartupCost, Cost *indexTotalCost,
				Selectivity *indexSelectivity, double *indexCorrelation,
				double *indexPages)
{
	IndexOptInfo *index = path->indexinfo;
	double		levels;
	double		descents;
	Cost		per_descent;

	btcostestimate(root, path, loop_count, indexStartupCost, indexTotalCost,
				   indexSelectivity, indexCorrelation, indexPages);

	/* buffered levels grow with the logarithm of the index size */
	levels = (index->pages > 1) ? Max(1.0, ceil(log(index->pages) / log(300.0))) : 0.0;
	per_descent = levels * 200.0 * cpu_operator_cost;
	descents = fr_array_scans(root, path) + Max(0.0, *indexPages * *indexSelectivity);
	*indexStartupCost += per_descent;
	*indexTotalCost += per_descent * descents;
}

char *
frbuildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case FR_PHASE_TABLESCAN:
			return "scanning table";
		case FR_PHASE_SORT:
			return "sorting tuples";
		case FR_PHASE_LOAD:
			return "loading tree";
		default:
			return NULL;
	}
}
