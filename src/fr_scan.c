/*-------------------------------------------------------------------------
 *
 * fr_scan.c
 *	  Index scans of the fractal index (amgettuple and amgetbitmap).
 *
 * A scan proceeds in chunks.  A chunk is one descent from the root to a
 * leaf under share-lock coupling (a node stays locked until its child is
 * locked).  On the way down it collects, from the buffer chain of the
 * partition it descends through, the messages that satisfy the scan keys;
 * at the leaf it collects the matching entries.  It keeps those inside the
 * leaf's key range [lo, hi) (known from the pivots on the path) and beyond
 * the scan position, sorts them, and drops duplicates (a message met both
 * in a buffer and, after a concurrent flush, in the level below).  No lock
 * or pin is held between calls.  The next chunk starts at hi (forward) or
 * ends at lo (backward), so every entry is returned once in each direction
 * even while other backends flush and split; src/README.md gives the
 * argument.
 *
 * Scan keys only position the first descent and stop the scan early;
 * every returned entry is checked against all keys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "fractal.h"

/* a positioning bound on the leading columns, in index order */
typedef struct FrBound
{
	int			ncols;			/* 0 = unbounded */
	bool		strict;			/* last column compared strictly */
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	FmgrInfo	cmp[INDEX_MAX_KEYS];
	Oid			collation[INDEX_MAX_KEYS];
	bool		same_as_index[INDEX_MAX_KEYS];	/* compares as the index
												 * does: its sort support
												 * may be used */
} FrBound;

/* the entries of one chunk */
typedef struct FrChunk
{
	IndexTuple *items;
	int			nitems;
	int			cur;			/* last returned, -1 / nitems = before/after */
	IndexTuple	lo;				/* NULL = minus infinity */
	IndexTuple	hi;				/* NULL = plus infinity */
	bool		end_fwd;		/* nothing qualifies at or after hi */
	bool		end_bwd;		/* nothing qualifies before lo */
} FrChunk;

typedef struct FrScanOpaqueData
{
	bool		unsatisfiable;	/* keys can never match */
	bool		started;
	FrChunk		chunk;
	FrChunk		mark;
	bool		marked;
	MemoryContext chunkcxt;
	MemoryContext markcxt;
	MemoryContext poscxt;
	MemoryContext parentcxt;	/* where markcxt and poscxt are made */
	bool		use_filter;		/* an '=' key on column 1 buffer page
								 * filters can rule pages out for */
	uint64		filter_hash;	/* its hash (fr_filter_key_hash) */
	bool		expect_hit;		/* a plain MVCC scan, whose point lookups
								 * mostly find their key (not a uniqueness
								 * check or pre-check) */
	ScanKey		origkeys;		/* the keys as amrescan got them (array
								 * keys are changed in scan->keyData) */
	FrArrayKeys *arrays;		/* '=' array keys, or NULL */
	MemoryContext arraycxt;		/* their elements */
	int		   *mark_arraypos;	/* the mark's combination of elements */
	bool		ios_locked;		/* index-only scan: holds the scan lock in
								 * share mode (fr_ios_interlock) */
	bool		internal;		/* a uniqueness check's lookup: not counted
								 * in the index's scan statistics */
	int			precheck;		/* slot of the pre-check this scan records
								 * (fr_unique_precheck_start), or -1 */
	uint64		precheck_id;
	FrHeapPrefetch hprefetch;	/* heap reads started ahead */

	/*
	 * The large members last: frbeginscan zeroes what comes before them;
	 * fr_init_state fills the state, and a bound's arrays are read only
	 * below its ncols.
	 */
	FrState		state;
	FrBound		lower;
	FrBound		upper;
} FrScanOpaqueData;

typedef FrScanOpaqueData *FrScanOpaque;

/*
 * The small context in *cxt, made on first use and reset after: a point
 * lookup never marks and never moves on to a second chunk, so it makes
 * neither.
 */
static MemoryContext
fr_scan_cxt(FrScanOpaque so, MemoryContext *cxt)
{
	if (*cxt == NULL)
		*cxt = AllocSetContextCreate(so->parentcxt, "fractal scan position or mark",
									 ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(*cxt);
	return *cxt;
}

/* reset a context fr_scan_cxt may not have made yet */
static void
fr_scan_cxt_reset(MemoryContext cxt)
{
	if (cxt != NULL)
		MemoryContextReset(cxt);
}

IndexScanDesc
frbeginscan(Relation r, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(r, nkeys, norderbys);
	FrScanOpaque so = palloc(sizeof(FrScanOpaqueData));

	memset(so, 0, offsetof(FrScanOpaqueData, state));
	fr_init_state(&so->state, r);
	so->lower.ncols = so->upper.ncols = 0;
	so->lower.strict = so->upper.strict = false;
	so->chunkcxt = AllocSetContextCreate(CurrentMemoryContext,
										 "fractal scan chunk",
										 ALLOCSET_DEFAULT_SIZES);
	/* markcxt, poscxt and arraycxt are made on first use (fr_scan_cxt) */
	so->parentcxt = CurrentMemoryContext;
	if (nkeys > 0)
		so->origkeys = palloc(sizeof(ScanKeyData) * nkeys);
	so->precheck = -1;
	scan->opaque = so;
	return scan;
}

/*
 * Add scan key 'key' on column 'col' to bound 'b' as its next column.
 * Returns false if no comparison function for the key's type exists (the
 * key then only filters).
 */
static bool
fr_bound_add(Relation index, FrBound *b, ScanKey key, int col, bool isnull,
			 bool strict)
{
	int			i = b->ncols;

	if (!isnull)
	{
		Oid			lefttype = index->rd_opcintype[col];
		Oid			righttype = OidIsValid(key->sk_subtype) ? key->sk_subtype : lefttype;

		if (righttype == lefttype)
		{
			/* the column's own comparison, already looked up by the relcache */
			fmgr_info_copy(&b->cmp[i], index_getprocinfo(index, col + 1, FR_CMP_PROC),
						   CurrentMemoryContext);
		}
		else
		{
			/* a cross-type comparison from the operator family */
			Oid			proc = get_opfamily_proc(index->rd_opfamily[col], lefttype,
												 righttype, FR_CMP_PROC);

			if (!OidIsValid(proc))
				return false;
			fmgr_info_cxt(proc, &b->cmp[i], CurrentMemoryContext);
		}
		b->values[i] = key->sk_argument;
		b->collation[i] = key->sk_collation;
		b->same_as_index[i] = righttype == lefttype &&
			key->sk_collation == index->rd_indcollation[col];
	}
	b->isnull[i] = isnull;
	b->strict = strict;
	b->ncols = i + 1;
	return true;
}

/* the end of a column's range one scan key sets */
typedef struct FrKeyEnd
{
	ScanKey		key;			/* NULL = open */
	bool		strict;
	bool		isnull;			/* IS NOT NULL: the end is the NULLs */
} FrKeyEnd;

/* the keys on one column that can position a scan, in index order */
typedef struct FrColumnKeys
{
	ScanKey		eq;				/* '=' or IS NULL */
	FrKeyEnd	lo;
	FrKeyEnd	hi;
} FrColumnKeys;

/* the first key met for an end sets it */
static void
fr_key_end_set(FrKeyEnd *end, ScanKey key, bool strict, bool isnull)
{
	if (end->key != NULL)
		return;
	end->key = key;
	end->strict = strict;
	end->isnull = isnull;
}

/* does some key compare with NULL ("col op NULL" is never true)? */
static bool
fr_keys_unsatisfiable(IndexScanDesc scan)
{
	int			k;

	for (k = 0; k < scan->numberOfKeys; k++)
	{
		ScanKey		key = &scan->keyData[k];

		if ((key->sk_flags & SK_ISNULL) &&
			!(key->sk_flags & (SK_SEARCHNULL | SK_SEARCHNOTNULL)))
			return true;
	}
	return false;
}

/*
 * Sort the keys on column 'col' into '=' and the two ends of the column's
 * range in index order (a DESC column swaps < and >).
 */
static void
fr_classify_column(IndexScanDesc scan, FrState *state, int col,
				   FrColumnKeys *ck)
{
	bool		desc = state->desc[col];
	int			k;

	memset(ck, 0, sizeof(FrColumnKeys));
	for (k = 0; k < scan->numberOfKeys; k++)
	{
		ScanKey		key = &scan->keyData[k];
		StrategyNumber s = key->sk_strategy;

		if (key->sk_attno != col + 1)
			continue;
		if (key->sk_flags & SK_SEARCHNULL)
			ck->eq = key;
		else if (key->sk_flags & SK_SEARCHNOTNULL)
		{
			/* excludes the NULLs at one end of the column's order */
			fr_key_end_set(state->nulls_first[col] ? &ck->lo : &ck->hi,
						   key, true, true);
		}
		else if (s == BTEqualStrategyNumber)
		{
			if (ck->eq == NULL)
				ck->eq = key;
		}
		else if (s == BTLessStrategyNumber || s == BTLessEqualStrategyNumber)
			fr_key_end_set(desc ? &ck->lo : &ck->hi, key,
						   s == BTLessStrategyNumber, false);
		else if (s == BTGreaterStrategyNumber || s == BTGreaterEqualStrategyNumber)
			fr_key_end_set(desc ? &ck->hi : &ck->lo, key,
						   s == BTGreaterStrategyNumber, false);
	}
}

/*
 * Set up the buffer page filter test for 'eq', the '=' key (if any) on the
 * first column (fr_filter_key_hash decides whether the filters can serve it).
 */
static void
fr_make_filter_key(IndexScanDesc scan, ScanKey eq)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;

	if (eq == NULL || (eq->sk_flags & (SK_ISNULL | SK_SEARCHNULL | SK_ROW_HEADER)))
		return;
	so->use_filter = fr_filter_key_hash(index, eq->sk_subtype, eq->sk_argument,
										&so->filter_hash);
	so->expect_hit = !so->internal && scan->xs_snapshot != NULL &&
		IsMVCCSnapshot(scan->xs_snapshot);
}

/*
 * Derive the positioning bounds from the scan keys, nbtree-style: leading
 * columns with '=' (or IS NULL) extend both bounds; the first column
 * without one contributes its inequality (if any) and ends the bound.
 */
static void
fr_make_bounds(IndexScanDesc scan)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	bool		lower_done = false,
				upper_done = false;
	int			col;

	so->lower.ncols = 0;
	so->upper.ncols = 0;
	so->use_filter = false;
	so->unsatisfiable = fr_keys_unsatisfiable(scan);
	if (so->unsatisfiable)
		return;

	for (col = 0; col < so->state.nkeys && !(lower_done && upper_done); col++)
	{
		FrColumnKeys ck;

		fr_classify_column(scan, &so->state, col, &ck);
		if (col == 0)
			fr_make_filter_key(scan, ck.eq);

		/* '=' or IS NULL: both bounds go on to the next column */
		if (ck.eq)
		{
			bool		isnull = (ck.eq->sk_flags & SK_SEARCHNULL) != 0;

			if (!lower_done && !fr_bound_add(index, &so->lower, ck.eq, col, isnull, false))
				lower_done = true;
			if (!upper_done && !fr_bound_add(index, &so->upper, ck.eq, col, isnull, false))
				upper_done = true;
			continue;
		}

		/* otherwise the column's inequalities end the bounds */
		if (!lower_done && ck.lo.key)
			fr_bound_add(index, &so->lower, ck.lo.key, col, ck.lo.isnull, ck.lo.strict);
		if (!upper_done && ck.hi.key)
			fr_bound_add(index, &so->upper, ck.hi.key, col, ck.hi.isnull, ck.hi.strict);
		lower_done = upper_done = true;
	}
}

/*
 * Compare the leading columns of 'itup' with bound 'b', in index order.
 */
static int
fr_bound_compare(FrState *state, FrBound *b, IndexTuple itup)
{
	int			i;

	for (i = 0; i < b->ncols; i++)
	{
		bool		isnull;
		Datum		v = index_getattr(itup, i + 1, state->tupdesc, &isnull);
		int32		r;

		if (!b->isnull[i] && b->same_as_index[i] && state->use_ssup[i])
			r = ApplySortComparator(v, isnull, b->values[i], false, &state->ssup[i]);
		else if (isnull || b->isnull[i])
		{
			if (isnull && b->isnull[i])
				r = 0;
			else if (isnull)
				r = state->nulls_first[i] ? -1 : 1;
			else
				r = state->nulls_first[i] ? 1 : -1;
		}
		else
		{
			r = DatumGetInt32(FunctionCall2Coll(&b->cmp[i], b->collation[i],
												v, b->values[i]));
			if (state->desc[i])
				INVERT_COMPARE_RESULT(r);
		}
		if (r != 0)
			return r;
	}
	return 0;
}

/*
 * Does 'itup' satisfy every scan key?
 */
static bool
fr_tuple_matches(IndexScanDesc scan, IndexTuple itup)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	int			k;

	for (k = 0; k < scan->numberOfKeys; k++)
	{
		ScanKey		key = &scan->keyData[k];
		bool		isnull;
		Datum		v = index_getattr(itup, key->sk_attno, so->state.tupdesc, &isnull);

		if (key->sk_flags & SK_ISNULL)
		{
			if ((key->sk_flags & SK_SEARCHNULL) && !isnull)
				return false;
			if ((key->sk_flags & SK_SEARCHNOTNULL) && isnull)
				return false;
			continue;
		}
		if (isnull)
			return false;
		if (!DatumGetBool(FunctionCall2Coll(&key->sk_func, key->sk_collation,
											v, key->sk_argument)))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Windows of sorted entries
 *
 * Leaves and sorted buffer pages (FR_SORTED) hold their entries in (key,
 * TID) order, so a descent looks only at the window of them that lies in
 * the child's range [lo, hi) and inside the scan's positioning bounds,
 * found by binary search.  Nothing outside the window can be wanted: the
 * bounds are implied by the scan keys, and entries outside [lo, hi) belong
 * to another chunk.  Entries in the window are still checked against every
 * key.
 * ------------------------------------------------------------------------
 */

/* does 'itup' come before the window: below lo, or below the lower bound? */
static bool
fr_before_window(FrScanOpaque so, IndexTuple lo, IndexTuple itup)
{
	int			r;

	if (lo && fr_compare_tuples(&so->state, itup, lo) < 0)
		return true;
	if (so->lower.ncols == 0)
		return false;
	r = fr_bound_compare(&so->state, &so->lower, itup);
	return so->lower.strict ? r <= 0 : r < 0;
}

/* does 'itup' come after the window: at or above hi, or past the upper bound? */
static bool
fr_after_window(FrScanOpaque so, IndexTuple hi, IndexTuple itup)
{
	int			r;

	if (hi && fr_compare_tuples(&so->state, itup, hi) >= 0)
		return true;
	if (so->upper.ncols == 0)
		return false;
	r = fr_bound_compare(&so->state, &so->upper, itup);
	return so->upper.strict ? r >= 0 : r > 0;
}

/*
 * Does the lower bound alone keep the window at or above lo?  It does when
 * lo's leading columns lie below the bound (or at it, for a strict bound):
 * every entry the bound admits is then above lo, and the window need not
 * compare with lo.  Saves a full comparison per binary-search step of a
 * point lookup.
 */
static bool
fr_lo_implied(FrScanOpaque so, IndexTuple lo)
{
	int			r;

	if (lo == NULL)
		return true;
	if (so->lower.ncols == 0)
		return false;
	r = fr_bound_compare(&so->state, &so->lower, lo);
	return r < 0 || (r == 0 && so->lower.strict);
}

/* Does the upper bound alone keep the window below hi?  (as above) */
static bool
fr_hi_implied(FrScanOpaque so, IndexTuple hi)
{
	int			r;

	if (hi == NULL)
		return true;
	if (so->upper.ncols == 0)
		return false;
	r = fr_bound_compare(&so->state, &so->upper, hi);
	return r > 0 || (r == 0 && so->upper.strict);
}

/*
 * The window [*start, *end) of the n sorted entries get(arg, i) that lie in
 * [lo, hi) (NULL: unbounded) and inside the scan's bounds.
 */
static void
fr_scan_window(FrScanOpaque so, IndexTuple lo, IndexTuple hi, int n,
			   FrEntryGetter get, void *arg, int *start, int *end)
{
	int			a = 0,
				b = n,
				step;

	/* the first entry not before the window */
	while (a < b)
	{
		int			mid = a + (b - a) / 2;

		if (fr_before_window(so, lo, get(arg, mid)))
			a = mid + 1;
		else
			b = mid;
	}
	*start = a;

	/*
	 * The first entry after it.  Unbounded above: the end.  Otherwise
	 * gallop from the start (probe at start, then 2, 4, 8, ... entries past
	 * the last probe still in the window), so an empty or short window -- a
	 * point lookup -- costs one or two comparisons; then binary-search the
	 * last gap.
	 */
	if (hi == NULL && so->upper.ncols == 0)
	{
		*end = n;
		return;
	}
	b = n;
	for (step = 1; a < n; step *= 2)
	{
		int			probe = Min(a + step - 1, n - 1);

		if (fr_after_window(so, hi, get(arg, probe)))
		{
			b = probe;
			break;
		}
		a = probe + 1;
	}
	while (a < b)
	{
		int			mid = a + (b - a) / 2;

		if (fr_after_window(so, hi, get(arg, mid)))
			b = mid;
		else
			a = mid + 1;
	}
	*end = a;
}

/* kinds of child choice in a node */
typedef enum FrTarget
{
	FR_TARGET_FIRST,			/* first child */
	FR_TARGET_LAST,				/* last child */
	FR_TARGET_LE_POS,			/* last child with pivot <= pos */
	FR_TARGET_LT_POS,			/* last child with pivot < pos */
	FR_TARGET_LOWER,			/* child holding the first entry >= lower */
	FR_TARGET_UPPER				/* child holding the last entry <= upper */
} FrTarget;

/* is the pivot before-or-at the target?  (monotone over pivots) */
static bool
fr_pivot_precedes(FrScanOpaque so, FrTarget t, IndexTuple pos, IndexTuple pivot)
{
	int			r;

	switch (t)
	{
		case FR_TARGET_LE_POS:
			return fr_compare_tuples(&so->state, pivot, pos) <= 0;
		case FR_TARGET_LT_POS:
			return fr_compare_tuples(&so->state, pivot, pos) < 0;
		case FR_TARGET_LOWER:
			r = fr_bound_compare(&so->state, &so->lower, pivot);
			return so->lower.strict ? r <= 0 : r < 0;
		case FR_TARGET_UPPER:
			r = fr_bound_compare(&so->state, &so->upper, pivot);
			return so->upper.strict ? r < 0 : r <= 0;
		case FR_TARGET_FIRST:
			return false;
		case FR_TARGET_LAST:
			return true;
	}
	return false;
}

/* the arguments of fr_pivot_precedes, as an FrPivotTest */
typedef struct FrChooseArg
{
	FrScanOpaque so;
	FrTarget	target;
	IndexTuple	pos;
} FrChooseArg;

static bool
fr_scan_pivot_test(void *arg, IndexTuple pivot)
{
	FrChooseArg *a = (FrChooseArg *) arg;

	return fr_pivot_precedes(a->so, a->target, a->pos, pivot);
}

static OffsetNumber
fr_scan_choose_child(FrScanOpaque so, Page page, FrTarget t, IndexTuple pos)
{
	FrChooseArg a = {so, t, pos};

	return fr_node_search(page, fr_scan_pivot_test, &a);
}

/* growable array of collected entries */
typedef struct FrCollect
{
	IndexTuple *items;
	int			n;
	int			cap;
} FrCollect;

/* add 'itup' itself (it must live as long as the chunk) */
static void
fr_collect_ref(FrCollect *c, IndexTuple itup)
{
	if (c->n >= c->cap)
	{
		c->cap = Max(64, c->cap * 2);
		c->items = c->items ? repalloc(c->items, sizeof(IndexTuple) * c->cap)
			: palloc(sizeof(IndexTuple) * c->cap);
	}
	c->items[c->n++] = itup;
}

/* add a copy of 'itup' (which lives in a locked buffer) */
static void
fr_collect_add(FrCollect *c, IndexTuple itup)
{
	fr_collect_ref(c, CopyIndexTuple(itup));
}

/* what one descent collects, and the key range [lo, hi) of its leaf */
typedef struct FrDescent
{
	FrCollect	col;			/* messages first, then leaf entries */
	int			nmsgs;			/* how many of col are messages */
	IndexTuple	lo;				/* NULL = minus infinity */
	IndexTuple	hi;				/* NULL = plus infinity */
} FrDescent;

/* fr_chain_walk visitor: collect the matching messages of a chain page */
typedef struct FrChainScan
{
	IndexScanDesc scan;
	FrDescent  *d;
	IndexTuple	wlo;			/* the window's lo: d->lo, or NULL where */
	IndexTuple	whi;			/* the bounds imply it; likewise hi */
} FrChainScan;

static bool
fr_scan_chain_page(void *arg, Page page, BlockNumber blkno)
{
	FrChainScan *cs = (FrChainScan *) arg;
	FrScanOpaque so = (FrScanOpaque) cs->scan->opaque;
	FrDescent  *d = cs->d;
	int			i,
				start,
				end;

	/*
	 * Every match has the '=' key's value in column 1: when the page's
	 * filter rules that out, no page of the filter's segment holds one.
	 */
	if (so->use_filter && !fr_filter_may_contain(page, so->filter_hash))
		return true;

	/* a sorted page: only its window; a format-1 page: all of it */
	if (FrPageIsSorted(page))
		fr_scan_window(so, cs->wlo, cs->whi, PageGetMaxOffsetNumber(page),
					   fr_page_entry, page, &start, &end);
	else
	{
		start = 0;
		end = PageGetMaxOffsetNumber(page);
	}
	for (i = start; i < end; i++)
	{
		IndexTuple	m = fr_page_entry(page, i);

		/*
		 * Keys first (they reject most messages of a selective scan), then
		 * this child's range (the window's already), before anything is
		 * copied; the leaf's narrower range is applied by fr_filter_chunk.
		 */
		if (fr_tuple_matches(cs->scan, m) &&
			(FrPageIsSorted(page) ||
			 ((d->lo == NULL || fr_compare_tuples(&so->state, m, d->lo) >= 0) &&
			  (d->hi == NULL || fr_compare_tuples(&so->state, m, d->hi) < 0))))
			fr_collect_add(&d->col, m);
	}
	return false;
}

/*
 * Start the read of the leaf under item 'off' of the level-1 node 'page'
 * (a hint: nothing when it is in shared buffers), once per descent.  An
 * out-of-memory descent reads the partition's filter page and chain before
 * the leaf, one block after another; with the leaf's read started first,
 * they overlap.  Not when fractal.scan_prefetch is off (to measure).
 */
static void
fr_scan_prefetch_leaf(Relation index, Page page, OffsetNumber off,
					  bool *prefetched)
{
	*prefetched = true;
	if (fr_scan_prefetch &&
		fr_prefetch_buffer(index, fr_node_get_item(page, off)->child))
		fr_count(FR_CTR_SCAN_LEAF_PREFETCHES, 1);
}

/*
 * Descend from the root to the leaf of 'target', narrowing d->lo and d->hi
 * to the child's range at each node and collecting the matching messages
 * of the partition's chain.  Returns the leaf, share-locked, or
 * InvalidBuffer when its leaf filter proved it holds no match.
 */
static Buffer
fr_descend(IndexScanDesc scan, FrTarget target, IndexTuple pos, FrDescent *d)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	Buffer		buf = fr_lock_root(index, BUFFER_LOCK_SHARE);

	for (;;)
	{
		Page		page = BufferGetPage(buf);
		OffsetNumber off;
		FrNodeItem	pitem;
		FrChainScan cs;
		Buffer		cbuf;
		int			level;
		bool		chain_may,
					leaf_may,
					filter_cold,
					prefetched;

		if (FrPageIsLeaf(page))
			return buf;
		if (!FrPageIsNode(page))
			fr_report_corrupt(index, BufferGetBlockNumber(buf),
							  "descent reached a page that is neither node nor leaf");
		level = FrPageGetOpaque(page)->level;

		/* the child, and its range */
		off = fr_scan_choose_child(so, page, target, pos);
		if (off > FirstOffsetNumber)
			d->lo = CopyIndexTuple(FrNodeItemGetPivot(fr_node_get_item(page, off)));
		if (off < PageGetMaxOffsetNumber(page))
			d->hi = CopyIndexTuple(FrNodeItemGetPivot(fr_node_get_item(page, off + 1)));

		/*
		 * A point lookup at level 1 asks the leaf filter page whether the
		 * partition's chain and the leaf may hold its key (fr_leaffilter.c);
		 * one that expects a hit, only when that may save a read, and
		 * starts the leaf's read first when the page is to be read from
		 * disk (it reads the leaf anyway for a hit)
		 */
		chain_may = leaf_may = true;
		prefetched = filter_cold = false;
		if (so->use_filter && level == 1 &&
			(!so->expect_hit ||
			 fr_lfilter_worth_reading(index, page, off, &filter_cold)))
		{
			if (filter_cold)	/* only ever set for a lookup expecting a hit */
				fr_scan_prefetch_leaf(index, page, off, &prefetched);
			fr_lfilter_probe(index, page, off, so->filter_hash,
							 &chain_may, &leaf_may);
		}

		/*
		 * matching messages of the partition's chain; when its pages are
		 * to be read from disk, and the leaf after them, the leaf's read is
		 * started first so that they overlap
		 */
		cs.scan = scan;
		cs.d = d;
		cs.wlo = fr_lo_implied(so, d->lo) ? NULL : d->lo;
		cs.whi = fr_hi_implied(so, d->hi) ? NULL : d->hi;
		pitem = fr_node_get_item(page, fr_node_partition_start(page, off));
		if (level == 1 && chain_may && leaf_may && !prefetched &&
			fr_index_large(index) && fr_chain_costs_read(index, pitem))
			fr_scan_prefetch_leaf(index, page, off, &prefetched);
		if (chain_may)
			fr_chain_walk(index, pitem->chain_tail, pitem->chain_pages,
						  fr_scan_chain_page, &cs);

		/* a leaf ruled out is not read: the chunk is the messages alone */
		if (!leaf_may)
		{
			UnlockReleaseBuffer(buf);
			return InvalidBuffer;
		}

		/* lock coupling: the child before releasing the node */
		cbuf = fr_read_buffer(index, fr_node_get_item(page, off)->child,
							  BUFFER_LOCK_SHARE);
		UnlockReleaseBuffer(buf);
		buf = cbuf;
	}
}

/* windows of at most this many leaf entries are copied entry by entry */
#define FR_LEAF_COPY_ENTRIES	32

/* a scan decompresses at most this many blocks of a leaf per chunk */
#define FR_SCAN_BLOCKS			2

/*
 * Which blocks first..last of the compressed leaf 'page' a chunk reads: the
 * blocks whose entries can lie in the scan's window (past 'pos' in the
 * scan's direction), at most FR_SCAN_BLOCKS of them, taken from where the
 * scan enters the window.  Block b holds the entries from its fence on,
 * below fence b + 1, so the blocks are the one before the first fence in
 * the window through the one of the last fence in it.  When the chunk
 * stops at a block boundary inside the leaf, its range is narrowed to the
 * blocks read: d->lo to the first block's fence, d->hi to the next block's,
 * and the next chunk starts there.  Messages outside the narrowed range
 * are left to that chunk (fr_filter_chunk).
 */
static void
fr_choose_blocks(IndexScanDesc scan, Page page, BlockNumber blkno,
				 FrDescent *d, bool fwd, IndexTuple pos, int *first, int *last)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	IndexTuple	fences[FR_Z_MAX_BLOCKS];
	int			nb = fr_leaf_fences(scan->indexRelation, page, blkno, fences),
				s,
				e;

	*first = *last = 0;
	if (nb <= 1)
	{
		fr_count(FR_CTR_ZBLOCKS_READ, 1);
		return;
	}
	fr_scan_window(so, fwd ? pos : NULL, fwd ? NULL : pos, nb,
				   fr_array_entry, fences, &s, &e);
	if (fwd && pos != NULL && s < nb &&
		fr_compare_tuples(&so->state, fences[s], pos) == 0)
		*first = s;				/* a chunk that stopped at this fence */
	else
		*first = Max(s - 1, 0);
	*last = Max(e - 1, *first);
	if (*last - *first >= FR_SCAN_BLOCKS)
	{
		if (fwd)
			*last = *first + FR_SCAN_BLOCKS - 1;
		else
			*first = *last - FR_SCAN_BLOCKS + 1;
	}
	if (*first > 0)
		d->lo = CopyIndexTuple(fences[*first]);
	if (*last + 1 < nb)
		d->hi = CopyIndexTuple(fences[*last + 1]);
	fr_count(FR_CTR_ZBLOCKS_READ, *last - *first + 1);
	fr_count(FR_CTR_ZBLOCKS_SKIPPED, nb - (*last - *first + 1));
}

/*
 * Collect the matching entries of the leaf in 'buf' (none when it is
 * InvalidBuffer), then release it.
 * Only the window is looked at.  A small window's entries are copied one
 * by one; a larger one's are referenced in a copy of the whole page (one
 * memcpy); a compressed leaf's in its decompressed copy of the blocks the
 * window needs (fr_choose_blocks).  Either way they live as long as the
 * chunk.
 */
static void
fr_collect_leaf(IndexScanDesc scan, Buffer buf, FrDescent *d, bool fwd,
				IndexTuple pos)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	Page		page;
	FrEntryGetter get = fr_page_entry;
	void	   *arg;
	bool		copy_each;
	int			n,
				i,
				start,
				end;

	d->nmsgs = d->col.n;		/* what came before are messages */
	if (!BufferIsValid(buf))
		return;					/* the leaf holds no match */
	page = BufferGetPage(buf);
	arg = page;
	n = PageGetMaxOffsetNumber(page);
	TestForOldSnapshot(scan->xs_snapshot, scan->indexRelation, page);
	if (FrPageIsCompressed(page))
	{
		FrLeafView	view;
		BlockNumber blkno = BufferGetBlockNumber(buf);
		int			first,
					last;

		fr_choose_blocks(scan, page, blkno, d, fwd, pos, &first, &last);
		fr_leaf_view_part(scan->indexRelation, page, blkno, first, last, &view);
		get = fr_array_entry;
		arg = view.items;
		n = view.n;
	}
	fr_scan_window(so, NULL, NULL, n, get, arg, &start, &end);
	copy_each = (get == fr_page_entry && end - start <= FR_LEAF_COPY_ENTRIES);
	if (get == fr_page_entry && !copy_each)
	{
		arg = palloc(BLCKSZ);
		memcpy(arg, page, BLCKSZ);
	}
	if (!copy_each)
		UnlockReleaseBuffer(buf);	/* what follows reads private copies */

	for (i = start; i < end; i++)
	{
		IndexTuple	it = get(arg, i);

		if (!fr_tuple_matches(scan, it))
			continue;
		if (copy_each)
			fr_collect_add(&d->col, it);
		else
			fr_collect_ref(&d->col, it);
	}
	if (copy_each)
		UnlockReleaseBuffer(buf);
}

/*
 * Keep the messages inside the leaf's range, and everything beyond the scan
 * position (the leaf may have gained a lower bound below pos through a
 * concurrent change; those entries were already returned).  Returns how
 * many entries remain, at the front of d->col.items.
 */
static int
fr_filter_chunk(FrState *state, FrDescent *d, bool fwd, IndexTuple pos)
{
	bool		need_pos_check;
	int			i,
				n = 0,
				kept_msgs = 0;

	need_pos_check = (pos != NULL) &&
		(fwd ? (d->lo == NULL || fr_compare_tuples(state, d->lo, pos) < 0)
		 : (d->hi == NULL || fr_compare_tuples(state, d->hi, pos) > 0));
	for (i = 0; i < d->col.n; i++)
	{
		IndexTuple	it = d->col.items[i];

		if (i < d->nmsgs)
		{
			if (d->lo && fr_compare_tuples(state, it, d->lo) < 0)
				continue;
			if (d->hi && fr_compare_tuples(state, it, d->hi) >= 0)
				continue;
		}
		if (need_pos_check &&
			(fwd ? fr_compare_tuples(state, it, pos) < 0
			 : fr_compare_tuples(state, it, pos) >= 0))
			continue;
		if (i < d->nmsgs)
			kept_msgs++;
		d->col.items[n++] = it;
	}
	d->nmsgs = kept_msgs;
	return n;
}

/*
 * Put the chunk's n entries in order, without duplicates.  The messages
 * (the first d->nmsgs) are sorted and deduplicated, then merged with the
 * leaf's entries, which are in order already; a message equal to a leaf
 * entry (met in a buffer and, after a concurrent flush, in the leaf too)
 * is kept once.  Returns the count; the entries are in d->col.items.
 */
static int
fr_order_chunk(FrState *state, FrDescent *d, int n)
{
	IndexTuple *msgs = d->col.items;
	IndexTuple *leaf = d->col.items + d->nmsgs;
	IndexTuple *out;
	int			nm = d->nmsgs,
				nl = n - d->nmsgs,
				i = 0,
				j = 0,
				k = 0;

	if (nm == 0)
		return n;
	fr_sort_entries(state, msgs, nm);
	nm = fr_dedup_sorted(state, msgs, nm);
	out = palloc(sizeof(IndexTuple) * (nm + nl));
	while (i < nm || j < nl)
	{
		int			r = (i >= nm) ? 1 : (j >= nl) ? -1 :
			fr_compare_tuples(state, msgs[i], leaf[j]);

		if (r == 0)
			j++;				/* the same entry twice */
		out[k++] = (r <= 0) ? msgs[i++] : leaf[j++];
	}
	d->col.items = out;
	return k;
}

/* Can anything qualify after the chunk's hi / before its lo? */
static void
fr_chunk_set_ends(FrScanOpaque so)
{
	FrChunk    *chunk = &so->chunk;
	int			r;

	if (chunk->hi == NULL)
		chunk->end_fwd = true;
	else if (so->upper.ncols > 0)
	{
		r = fr_bound_compare(&so->state, &so->upper, chunk->hi);
		chunk->end_fwd = (r > 0 || (r == 0 && so->upper.strict));
	}
	else
		chunk->end_fwd = false;

	if (chunk->lo == NULL)
		chunk->end_bwd = true;
	else if (so->lower.ncols > 0)
	{
		r = fr_bound_compare(&so->state, &so->lower, chunk->lo);
		chunk->end_bwd = (r < 0 || (r == 0 && so->lower.strict));
	}
	else
		chunk->end_bwd = false;
}

/* ------------------------------------------------------------------------
 * Index-only scans and VACUUM
 *
 * An index-only scan returns an entry's values without visiting the heap
 * when the visibility map says the heap page is all-visible.  An entry
 * collected into a chunk before VACUUM removed it (its heap tuple dead),
 * and returned after VACUUM set the page all-visible, would return a
 * deleted row.  nbtree prevents that with the leaf pin; here a chunk's
 * entries come from several pages and may move between them, so the
 * interlock is the scan lock (fr_scan_lock), which bulk delete holds
 * exclusively: an index-only scan holds it in share mode from its first
 * chunk to amrescan or amendscan, so no bulk delete runs while it may
 * return entries.  When the lock is not free at once (a bulk delete runs or
 * waits for it), the scan does not wait: it collects the chunk anyway and
 * keeps only entries whose heap tuple its MVCC snapshot sees, which VACUUM
 * cannot remove while the snapshot lives.  On a standby, where the
 * primary's VACUUM is replayed without any lock of ours, every chunk is
 * checked that way.  src/README.md section 9 has the argument.
 * ------------------------------------------------------------------------
 */

/*
 * Before an index-only scan collects a chunk: take the scan lock if it is
 * free.  Returns true when the chunk's entries must be checked against the
 * heap instead.
 */
static bool
fr_ios_interlock(IndexScanDesc scan)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;

	if (!scan->xs_want_itup || so->ios_locked)
		return false;
	if (RecoveryInProgress())
	{
		/*
		 * A standby replays the primary's VACUUM without any lock of ours,
		 * so every chunk is checked; replay never removes a tuple a live
		 * MVCC snapshot sees (it cancels the query instead).
		 */
		if (!IsMVCCSnapshot(scan->xs_snapshot) || scan->heapRelation == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("index-only scans of fractal index \"%s\" need an MVCC snapshot during recovery",
							RelationGetRelationName(scan->indexRelation))));
		return true;
	}
	if (fr_scan_lock(scan->indexRelation, ShareLock, false))
	{
		so->ios_locked = true;
		return false;
	}
	if (IsMVCCSnapshot(scan->xs_snapshot) && scan->heapRelation != NULL)
		return true;
	/* no snapshot to check against: wait for the bulk delete */
	fr_scan_lock(scan->indexRelation, ShareLock, true);
	so->ios_locked = true;
	return false;
}

/* drop the scan lock an index-only scan holds */
static void
fr_ios_release(IndexScanDesc scan)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;

	if (so->ios_locked)
		fr_scan_unlock(scan->indexRelation, ShareLock);
	so->ios_locked = false;
}

/*
 * Keep the entries of items[0..n) whose heap tuple (or a HOT successor)
 * the scan's snapshot sees; returns how many, in order, at the front.
 */
static int
fr_ios_keep_visible(IndexScanDesc scan, IndexTuple *items, int n)
{
	int			i,
				kept = 0;

	for (i = 0; i < n; i++)
	{
		ItemPointerData tid = items[i]->t_tid;
		bool		all_dead = false;

		if (table_index_fetch_tuple_check(scan->heapRelation, &tid,
										  scan->xs_snapshot, &all_dead))
			items[kept++] = items[i];
	}
	return kept;
}

/*
 * Load the chunk for direction 'dir'.  'pos' is the previous chunk's hi
 * (forward) or lo (backward); NULL for the first chunk, which is positioned
 * by the bounds.
 */
static void
fr_load_chunk(IndexScanDesc scan, ScanDirection dir, IndexTuple pos)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	bool		fwd = ScanDirectionIsForward(dir);
	FrTarget	target;
	FrDescent	d = {{NULL, 0, 0}, 0, NULL, NULL};
	MemoryContext oldcxt;
	int			n;
	bool		check_heap;

	/* no buffer lock is held here, so a long scan can be cancelled */
	CHECK_FOR_INTERRUPTS();
	check_heap = fr_ios_interlock(scan);

	if (pos == NULL)
		target = fwd ? (so->lower.ncols > 0 ? FR_TARGET_LOWER : FR_TARGET_FIRST)
			: (so->upper.ncols > 0 ? FR_TARGET_UPPER : FR_TARGET_LAST);
	else
		target = fwd ? FR_TARGET_LE_POS : FR_TARGET_LT_POS;

	MemoryContextReset(so->chunkcxt);
	oldcxt = MemoryContextSwitchTo(so->chunkcxt);

	/* messages on the path, then the leaf's entries */
	fr_collect_leaf(scan, fr_descend(scan, target, pos, &d), &d, fwd, pos);

	/* keep the chunk's own entries, in order and without duplicates */
	n = fr_filter_chunk(&so->state, &d, fwd, pos);
	n = fr_order_chunk(&so->state, &d, n);
	if (check_heap)
		n = fr_ios_keep_visible(scan, d.col.items, n);

	so->chunk.items = d.col.items;
	so->chunk.nitems = n;
	so->chunk.lo = d.lo;
	so->chunk.hi = d.hi;
	fr_chunk_set_ends(so);
	fr_heap_prefetch_chunk(&so->hprefetch);

	MemoryContextSwitchTo(oldcxt);
}

/*
 * Move to the next chunk in 'dir'.  Returns false at the end of the scan.
 */
static bool
fr_next_chunk(IndexScanDesc scan, ScanDirection dir)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	bool		fwd = ScanDirectionIsForward(dir);
	IndexTuple	pos;

	if (fwd ? so->chunk.end_fwd : so->chunk.end_bwd)
		return false;
	pos = (IndexTuple) MemoryContextAlloc(fr_scan_cxt(so, &so->poscxt),
										  IndexTupleSize(fwd ? so->chunk.hi : so->chunk.lo));
	memcpy(pos, fwd ? so->chunk.hi : so->chunk.lo,
		   IndexTupleSize(fwd ? so->chunk.hi : so->chunk.lo));
	fr_load_chunk(scan, dir, pos);
	return true;
}

/* does some scan key search an array? */
static bool
fr_has_array_keys(IndexScanDesc scan)
{
	int			k;

	for (k = 0; k < scan->numberOfKeys; k++)
		if (scan->keyData[k].sk_flags & SK_SEARCHARRAY)
			return true;
	return false;
}

void
frrescan(IndexScanDesc scan, ScanKey scankey, int nscankeys,
		  ScanKey orderbys, int norderbys)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	bool		empty = false;

	/* this backend's batched inserts into the index go in first */
	fr_pending_flush_index(scan->indexRelation);

	/* the keys; array keys get their elements in scan->keyData */
	if (scankey && scan->numberOfKeys > 0)
		memmove(so->origkeys, scankey, scan->numberOfKeys * sizeof(ScanKeyData));
	if (scan->numberOfKeys > 0)
		memcpy(scan->keyData, so->origkeys, scan->numberOfKeys * sizeof(ScanKeyData));
	fr_ios_release(scan);
	MemoryContextReset(so->chunkcxt);
	fr_scan_cxt_reset(so->markcxt);
	fr_scan_cxt_reset(so->poscxt);
	memset(&so->chunk, 0, sizeof(FrChunk));
	so->marked = false;
	so->started = false;
	so->precheck = -1;
	fr_heap_prefetch_rescan(&so->hprefetch);
	so->arrays = NULL;
	if (fr_has_array_keys(scan))
		so->arrays = fr_array_keys_prepare(scan, &so->state,
										   fr_scan_cxt(so, &so->arraycxt),
										   &empty);
	fr_make_bounds(scan);
	if (empty)
		so->unsatisfiable = true;
}

/*
 * Start the scan in 'dir': with array keys, at the first combination of
 * elements in that direction.
 */
static void
fr_scan_start(IndexScanDesc scan, ScanDirection dir)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;

	if (!so->internal)
		pgstat_count_index_scan(scan->indexRelation);
	so->started = true;
	if (so->arrays)
	{
		fr_array_keys_start(scan, so->arrays, dir);
		fr_make_bounds(scan);
	}
	fr_load_chunk(scan, dir, NULL);
}

/*
 * Past the end of the current chunk in 'dir': the next chunk, or with
 * array keys the first chunk of the next combination of elements.  Returns
 * false at the end of the scan.
 */
static bool
fr_scan_advance(IndexScanDesc scan, ScanDirection dir)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;

	if (fr_next_chunk(scan, dir))
		return true;
	if (so->arrays == NULL || !fr_array_keys_advance(scan, so->arrays, dir))
		return false;
	fr_make_bounds(scan);
	fr_load_chunk(scan, dir, NULL);
	return true;
}

/* the pre-check this scan records found an entry, or ended without one */
static void
fr_scan_precheck_end(FrScanOpaque so, bool found)
{
	if (so->precheck >= 0)
		fr_unique_precheck_end(so->precheck, so->precheck_id, found);
	so->precheck = -1;
}

bool
frgettuple(IndexScanDesc scan, ScanDirection dir)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	bool		fwd = ScanDirectionIsForward(dir);

	if (so->unsatisfiable)
		return false;
	if (!so->started)
	{
		/* an ON CONFLICT pre-check records its key before reading a page */
		if (!so->internal)
			so->precheck = fr_unique_precheck_start(scan, &so->state,
													&so->precheck_id);
		fr_scan_start(scan, dir);
		so->chunk.cur = fwd ? -1 : so->chunk.nitems;
	}

	for (;;)
	{
		so->chunk.cur += fwd ? 1 : -1;
		if (so->chunk.cur >= 0 && so->chunk.cur < so->chunk.nitems)
		{
			IndexTuple	itup = so->chunk.items[so->chunk.cur];

			fr_scan_precheck_end(so, true);
			scan->xs_heaptid = itup->t_tid;
			scan->xs_recheck = false;
			if (!so->internal)
				fr_heap_prefetch(scan, &so->hprefetch, so->chunk.items,
								 so->chunk.nitems, so->chunk.cur, fwd);
			if (scan->xs_want_itup)
			{
				/* valid until the next chunk: the executor copies it first */
				scan->xs_itup = itup;
				scan->xs_itupdesc = RelationGetDescr(scan->indexRelation);
			}
			return true;
		}
		if (!fr_scan_advance(scan, dir))
		{
			fr_scan_precheck_end(so, false);
			so->chunk.cur = fwd ? so->chunk.nitems : -1;
			return false;
		}
		so->chunk.cur = fwd ? -1 : so->chunk.nitems;
	}
}

int64
frgetbitmap(IndexScanDesc scan, TIDBitmap *tbm)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;
	int64		ntids = 0;

	if (so->unsatisfiable)
		return 0;
	fr_scan_start(scan, ForwardScanDirection);
	for (;;)
	{
		int			i;

		for (i = 0; i < so->chunk.nitems; i++)
			tbm_add_tuples(tbm, &so->chunk.items[i]->t_tid, 1, false);
		ntids += so->chunk.nitems;
		CHECK_FOR_INTERRUPTS();
		if (!fr_scan_advance(scan, ForwardScanDirection))
			break;
	}
	return ntids;
}

void
frendscan(IndexScanDesc scan)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;

	fr_ios_release(scan);
	fr_heap_prefetch_end(&so->hprefetch);
	MemoryContextDelete(so->chunkcxt);
	if (so->markcxt)
		MemoryContextDelete(so->markcxt);
	if (so->poscxt)
		MemoryContextDelete(so->poscxt);
	if (so->arraycxt)
		MemoryContextDelete(so->arraycxt);
	pfree(so);
	scan->opaque = NULL;
}

/* mark a scan the index AM runs for itself (fr_unique.c) */
void
fr_scan_set_internal(IndexScanDesc scan)
{
	((FrScanOpaque) scan->opaque)->internal = true;
}

/*
 * Index-only scans: every column, key or INCLUDE, is stored as the value
 * itself (no opclass of this AM has a storage type of its own).
 */
bool
frcanreturn(Relation index, int attno)
{
	return true;
}

/* deep copy of a chunk into 'cxt' */
static void
fr_copy_chunk(FrChunk *dst, FrChunk *src, MemoryContext cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	int			i;

	*dst = *src;
	dst->items = palloc(sizeof(IndexTuple) * Max(src->nitems, 1));
	for (i = 0; i < src->nitems; i++)
		dst->items[i] = CopyIndexTuple(src->items[i]);
	dst->lo = src->lo ? CopyIndexTuple(src->lo) : NULL;
	dst->hi = src->hi ? CopyIndexTuple(src->hi) : NULL;
	MemoryContextSwitchTo(oldcxt);
}

void
frmarkpos(IndexScanDesc scan)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;

	so->marked = so->started;
	if (!so->started)
	{
		fr_scan_cxt_reset(so->markcxt);
		return;
	}
	fr_copy_chunk(&so->mark, &so->chunk, fr_scan_cxt(so, &so->markcxt));
	if (so->arrays)
	{
		so->mark_arraypos = MemoryContextAlloc(so->markcxt,
											   sizeof(int) * so->arrays->n);
		fr_array_keys_save(so->arrays, so->mark_arraypos);
	}
}

void
frrestrpos(IndexScanDesc scan)
{
	FrScanOpaque so = (FrScanOpaque) scan->opaque;

	if (!so->marked)
	{
		/* marked before the first fetch: start over */
		MemoryContextReset(so->chunkcxt);
		memset(&so->chunk, 0, sizeof(FrChunk));
		so->started = false;
		return;
	}
	MemoryContextReset(so->chunkcxt);
	fr_copy_chunk(&so->chunk, &so->mark, so->chunkcxt);
	fr_heap_prefetch_chunk(&so->hprefetch);
	so->started = true;
	if (so->arrays)
	{
		/* the mark's elements, and the bounds they give */
		fr_array_keys_restore(scan, so->arrays, so->mark_arraypos);
		fr_make_bounds(scan);
	}
}
