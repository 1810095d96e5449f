/*-------------------------------------------------------------------------
 *
 * fr_compare.c
 *	  Key order of the fractal index: per-index comparison state, tuple
 *	  comparison in index order (DESC and NULLS FIRST honoured, heap TID as
 *	  the final tiebreak), sorting and duplicate removal.
 *
 * Every entry of the index is a (key, heap TID) pair and the pair is unique
 * within the index at any moment; the total order on pairs is what leaves,
 * pivots and scans use.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "catalog/index.h"
#include "access/nbtree.h"
#include "access/stratnum.h"
#include "lib/qunique.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "fractal.h"

/*
 * Which sort support to use for key column i, looked up in the catalogs
 * once per index and backend: btree's sort support function (or, if its
 * family has none, its comparison function through the shim), when the
 * btree family that owns the column's '<' operator compares with exactly
 * our support function 1 (true of every operator class this extension
 * ships); InvalidOid in *cmpproc when it does not.
 */
static void
fr_lookup_sortsupport(Relation index, int i, Oid *ssupproc, Oid *cmpproc)
{
	Oid			opcintype = index->rd_opcintype[i];
	Oid			lt = get_opfamily_member(index->rd_opfamily[i], opcintype,
										 opcintype, BTLessStrategyNumber);
	Oid			btfamily,
				bttype;
	int16		strategy;

	*ssupproc = *cmpproc = InvalidOid;
	if (!OidIsValid(lt) ||
		!get_ordering_op_properties(lt, &btfamily, &bttype, &strategy) ||
		strategy != BTLessStrategyNumber ||
		get_opfamily_proc(btfamily, opcintype, opcintype, BTORDER_PROC) !=
		index_getprocid(index, i + 1, FR_CMP_PROC))
		return;
	*cmpproc = index_getprocid(index, i + 1, FR_CMP_PROC);
	*ssupproc = get_opfamily_proc(btfamily, opcintype, opcintype,
								  BTSORTSUPPORT_PROC);
}

/*
 * Use btree's sort support for key column i where fr_lookup_sortsupport
 * allows: a direct comparator call, with btree's fast paths, instead of an
 * fmgr call per comparison.  The catalog lookups are cached in rd_amcache;
 * only the sort support function itself runs per call.
 */
static void
fr_init_sortsupport(FrState *state, Relation index, int i)
{
	FrAmCache  *cache = fr_amcache(index);
	SortSupport ssup = &state->ssup[i];
	Oid			ssupproc,
				cmpproc;

	if (!cache->ssup_known)
	{
		Oid			ssupproc[INDEX_MAX_KEYS];
		Oid			cmpproc[INDEX_MAX_KEYS];
		int			k;

		for (k = 0; k < state->nkeys; k++)
			fr_lookup_sortsupport(index, k, &ssupproc[k], &cmpproc[k]);
		/* a catalog lookup may have rebuilt the relcache entry */
		cache = fr_amcache(index);
		memcpy(cache->ssup_proc, ssupproc, sizeof(Oid) * state->nkeys);
		memcpy(cache->ssup_cmp, cmpproc, sizeof(Oid) * state->nkeys);
		cache->ssup_known = true;
	}
	state->use_ssup[i] = false;
	if (!OidIsValid(cache->ssup_cmp[i]))
		return;
	memset(ssup, 0, sizeof(SortSupportData));
	ssup->ssup_cxt = CurrentMemoryContext;
	ssup->ssup_collation = state->collation[i];
	ssup->ssup_nulls_first = state->nulls_first[i];
	ssup->ssup_attno = i + 1;
	ssup->abbreviate = false;
	/*
	 * As FinishSortSupportFunction does.  The OIDs are copied first: the
	 * sort support function may look up catalogs, which can free rd_amcache.
	 */
	ssupproc = cache->ssup_proc[i];
	cmpproc = cache->ssup_cmp[i];
	if (OidIsValid(ssupproc))
		OidFunctionCall1(ssupproc, PointerGetDatum(ssup));
	if (ssup->comparator == NULL)
		PrepareSortSupportComparisonShim(cmpproc, ssup);
	ssup->ssup_reverse = state->desc[i];
	state->use_ssup[i] = true;
}

/*
 * Fill 'state' for 'index': comparison functions, collations, column
 * options and the tuning knobs from the reloptions.
 */
void
fr_init_state(FrState *state, Relation index)
{
	int			i;
	FrOptions  *opts = (FrOptions *) index->rd_options;

	memset(state, 0, offsetof(FrState, cmp));
	state->index = index;
	state->tupdesc = RelationGetDescr(index);
	state->nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	for (i = 0; i < state->nkeys; i++)
	{
		int16		opt = index->rd_indoption[i];

		fmgr_info_copy(&state->cmp[i],
					   index_getprocinfo(index, i + 1, FR_CMP_PROC),
					   CurrentMemoryContext);
		state->collation[i] = index->rd_indcollation[i];
		state->desc[i] = (opt & INDOPTION_DESC) != 0;
		state->nulls_first[i] = (opt & INDOPTION_NULLS_FIRST) != 0;
		fr_init_sortsupport(state, index, i);
	}
	if (state->nkeys > 0 && state->use_ssup[0] &&
		TupleDescAttr(state->tupdesc, 0)->attbyval &&
		TupleDescAttr(state->tupdesc, 0)->attlen > 0)
		state->key1_len = TupleDescAttr(state->tupdesc, 0)->attlen;
	state->buffer_pages = opts ? opts->buffer_pages : FR_DEFAULT_BUFFER_PAGES;
	state->buffer_percent = opts ? opts->buffer_percent : FR_DEFAULT_BUFFER_PERCENT;
	state->partition_children = opts ? opts->partition_children :
		FR_DEFAULT_PARTITION_CHILDREN;
	state->fillfactor = opts ? opts->fillfactor : FR_DEFAULT_FILLFACTOR;
	state->compression = fr_compression_for(fr_compression_option(index),
											fr_index_blocks(index));
	state->compression_level = fr_zstd_level(state->tupdesc,
											 opts ? opts->compression_level :
											 FR_DEFAULT_COMPRESSION_LEVEL);
}

/* the compression option of 'index' (none, zstd or auto) */
int
fr_compression_option(Relation index)
{
	FrOptions  *opts = (FrOptions *) index->rd_options;

	return opts ? opts->compression : FR_DEFAULT_COMPRESSION;
}

/*
 * The compression (none or zstd) leaves are written with under the
 * compression option 'opt', for an index of 'blocks' blocks: auto
 * compresses once the index takes a quarter of shared_buffers or more (as
 * fr_index_large): a smaller one stays in memory, where plain leaves are
 * cheaper to rewrite and read, and a larger one gains from taking less of
 * memory and of the disk.  Leaves written before keep their format, so a
 * growing index has plain leaves from while it was small until they are
 * rewritten; both formats coexist as after any change of the option.
 */
int
fr_compression_for(int opt, BlockNumber blocks)
{
	if (opt != FR_COMPRESSION_AUTO)
		return opt;
	return fr_blocks_large(blocks) ? FR_COMPRESSION_ZSTD : FR_COMPRESSION_NONE;
}

/*
 * The zstd level leaves of an index with columns 'tupdesc' are written at
 * under the compression_level option 'level': FR_COMPRESSION_LEVEL_AUTO
 * (0) picks FR_Z_LEVEL_FIXED when every column has a fixed width
 * (integers, timestamps, uuids: entropy coding of literals, which zstd's
 * negative levels skip, barely shrinks them and cost most of the CPU) and
 * FR_Z_LEVEL_VARYING when one is variable-width (text, numeric: coding
 * the literals halves hex digits); any other value is the level.
 */
int
fr_zstd_level(TupleDesc tupdesc, int level)
{
	int			i;

	if (level != FR_COMPRESSION_LEVEL_AUTO)
		return level;
	for (i = 0; i < tupdesc->natts; i++)
		if (TupleDescAttr(tupdesc, i)->attlen < 0)
			return FR_Z_LEVEL_VARYING;
	return FR_Z_LEVEL_FIXED;
}

/*
 * Compare one column's values in index order.
 */
static inline int
fr_compare_column(FrState *state, int i, Datum a, bool anull, Datum b,
				  bool bnull)
{
	int32		r;

	if (state->use_ssup[i])
		return ApplySortComparator(a, anull, b, bnull, &state->ssup[i]);
	if (anull || bnull)
	{
		if (anull && bnull)
			return 0;
		if (anull)
			return state->nulls_first[i] ? -1 : 1;
		return state->nulls_first[i] ? 1 : -1;
	}
	r = DatumGetInt32(FunctionCall2Coll(&state->cmp[i], state->collation[i],
										a, b));
	if (state->desc[i])
		INVERT_COMPARE_RESULT(r);
	return r;
}

/*
 * Compare the key columns of two index tuples in index order.
 */
int
fr_compare_keys(FrState *state, IndexTuple a, IndexTuple b)
{
	int			i = 0;

	/*
	 * Fast path: a fixed-length by-value first column in two tuples without
	 * NULLs sits right after the tuple header, so read it there and call its
	 * comparator directly.
	 */
	if (state->key1_len > 0 && !IndexTupleHasNulls(a) && !IndexTupleHasNulls(b))
	{
		Datum		av = fetch_att((char *) a + IndexInfoFindDataOffset(a->t_info),
								   true, state->key1_len);
		Datum		bv = fetch_att((char *) b + IndexInfoFindDataOffset(b->t_info),
								   true, state->key1_len);
		int			r = ApplySortComparator(av, false, bv, false, &state->ssup[0]);

		if (r != 0)
			return r;
		i = 1;
	}

	for (; i < state->nkeys; i++)
	{
		bool		anull,
					bnull;
		Datum		av = index_getattr(a, i + 1, state->tupdesc, &anull);
		Datum		bv = index_getattr(b, i + 1, state->tupdesc, &bnull);
		int			r = fr_compare_column(state, i, av, anull, bv, bnull);

		if (r != 0)
			return r;
	}
	return 0;
}

/*
 * Total order on (key, heap TID) pairs.
 */
int
fr_compare_tuples(FrState *state, IndexTuple a, IndexTuple b)
{
	int			r = fr_compare_keys(state, a, b);

	if (r != 0)
		return r;
	return ItemPointerCompare(&a->t_tid, &b->t_tid);
}

/* qsort_arg comparator over an array of IndexTuple */
static int
fr_compare_tuple_entries(const void *a, const void *b, void *arg)
{
	return fr_compare_tuples((FrState *) arg, *(IndexTuple *) a,
							 *(IndexTuple *) b);
}

/*
 * Merge the sorted runs src[a..b) and src[b..c) into dst[a..c).
 */
static void
fr_merge_runs(FrState *state, IndexTuple *src, IndexTuple *dst, int a, int b,
			  int c)
{
	int			i = a,
				j = b,
				k = a;

	while (i < b && j < c)
		dst[k++] = (fr_compare_tuples(state, src[j], src[i]) < 0) ? src[j++] : src[i++];
	while (i < b)
		dst[k++] = src[i++];
	while (j < c)
		dst[k++] = src[j++];
}

/*
 * Sort entries in (key, TID) order.  What gets sorted is mostly a few
 * sorted runs laid end to end (a chain's sorted buffer pages, a scan's
 * windows of sorted pages), so this is a natural merge sort: find the
 * ascending runs, then merge neighbours pairwise until one is left.  R runs
 * of N entries in all cost about N * (1 + log2 R) comparisons (qsort: about
 * 1.2 N log2 N); input with no order (pages left unsorted by format version
 * 1) still sorts in N log2 N.
 */
void
fr_sort_entries(FrState *state, IndexTuple *items, int nitems)
{
	int		   *starts;
	int			nruns = 1,
				i;
	IndexTuple *src = items,
			   *dst;

	if (nitems < 2)
		return;

	/* 1. the ascending runs: starts[r] is where run r begins */
	starts = palloc(sizeof(int) * (nitems + 1));
	starts[0] = 0;
	for (i = 1; i < nitems; i++)
		if (fr_compare_tuples(state, items[i - 1], items[i]) > 0)
			starts[nruns++] = i;
	if (nruns == 1)
	{
		pfree(starts);
		return;
	}
	starts[nruns] = nitems;

	/* 2. merge runs 2r and 2r+1 into r, alternating between two arrays */
	dst = palloc(sizeof(IndexTuple) * nitems);
	while (nruns > 1)
	{
		int			r,
					out = 0;
		IndexTuple *t;

		for (r = 0; r < nruns; r += 2)
		{
			if (r + 1 < nruns)
				fr_merge_runs(state, src, dst, starts[r], starts[r + 1],
							  starts[r + 2]);
			else
				memcpy(dst + starts[r], src + starts[r],
					   sizeof(IndexTuple) * (starts[r + 1] - starts[r]));
			starts[out++] = starts[r];
		}
		starts[out] = nitems;
		nruns = out;
		t = src;
		src = dst;
		dst = t;
	}

	/* 3. the result is in src; copy it back if that is the scratch array */
	if (src != items)
	{
		memcpy(items, src, sizeof(IndexTuple) * nitems);
		pfree(src);
	}
	else
		pfree(dst);
	pfree(starts);
}

/*
 * Remove adjacent duplicates from a sorted array; returns the new count.
 * Duplicates are the same (key, TID) pair seen twice, which happens when a
 * flush was interrupted between copying messages into a child and removing
 * them from the parent, or when a scan meets a message in two places.
 */
int
fr_dedup_sorted(FrState *state, IndexTuple *items, int nitems)
{
	if (nitems <= 1)
		return nitems;
	return (int) qunique_arg(items, nitems, sizeof(IndexTuple),
							 fr_compare_tuple_entries, state);
}
