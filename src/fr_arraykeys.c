/*-------------------------------------------------------------------------
 *
 * fr_arraykeys.c
 *	  Array scan keys (amsearcharray): "col = ANY(array)" and "col IN (...)"
 *	  as ordered index scans.
 *
 * At rescan every '=' array key is expanded into its elements, sorted in
 * the column's index order (a DESC column's order reversed) with NULLs and
 * duplicates dropped.  The scan then runs as a series of sub-scans, one per
 * combination of elements, each with the array keys set to that
 * combination's elements as ordinary '=' keys: forward scans take the
 * combinations in increasing index order (the highest column's array
 * varies fastest), backward scans in decreasing order.  Sub-scans match
 * disjoint sets of entries (an entry has one value per column), so nothing
 * is returned twice, and when the only array is on the first column (the
 * only case the planner treats as ordered) their concatenation is in index
 * order.  Inequality keys over an array ("col < ANY(array)") reduce to one
 * element, the array's largest for < and <=, its smallest for > and >=,
 * as nbtree does.  src/README.md section 9 has the argument.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relscan.h"
#include "access/stratnum.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "fractal.h"

/* the arguments of fr_array_cmp (qsort_arg) */
typedef struct FrArraySortArg
{
	FmgrInfo	cmp;
	Oid			collation;
	bool		desc;
} FrArraySortArg;

static int
fr_array_cmp(const void *a, const void *b, void *arg)
{
	FrArraySortArg *s = (FrArraySortArg *) arg;
	int32		r = DatumGetInt32(FunctionCall2Coll(&s->cmp, s->collation,
													*(const Datum *) a,
													*(const Datum *) b));

	if (s->desc)
		INVERT_COMPARE_RESULT(r);
	return r;
}

/*
 * The non-NULL elements of the array of 'key' (on column 'col'), sorted in
 * the column's index order; with 'dedup', equal elements kept once.
 */
static Datum *
fr_array_elements(Relation index, FrState *state, ScanKey key, int col,
				  bool dedup, int *nelems)
{
	ArrayType  *arr = DatumGetArrayTypeP(key->sk_argument);
	Oid			elemtype = ARR_ELEMTYPE(arr);
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i,
				kept = 0;
	Oid			proc;
	FrArraySortArg s;

	/* 1. the elements, NULLs dropped ('=' never matches NULL) */
	get_typlenbyvalalign(elemtype, &elmlen, &elmbyval, &elmalign);
	deconstruct_array(arr, elemtype, elmlen, elmbyval, elmalign,
					  &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i])
			elems[kept++] = elems[i];
	n = kept;

	/* 2. sorted by the family's comparison for the element type */
	proc = get_opfamily_proc(index->rd_opfamily[col], elemtype, elemtype,
							 FR_CMP_PROC);
	if (!OidIsValid(proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("missing support function %d(%s,%s) in operator family of index \"%s\"",
						FR_CMP_PROC, format_type_be(elemtype),
						format_type_be(elemtype), RelationGetRelationName(index))));
	fmgr_info(proc, &s.cmp);
	s.collation = key->sk_collation;
	s.desc = state->desc[col];
	qsort_arg(elems, n, sizeof(Datum), fr_array_cmp, &s);

	/* 3. duplicates dropped */
	if (dedup && n > 1)
	{
		kept = 1;
		for (i = 1; i < n; i++)
			if (fr_array_cmp(&elems[kept - 1], &elems[i], &s) != 0)
				elems[kept++] = elems[i];
		n = kept;
	}
	*nelems = n;
	return elems;
}

/*
 * An inequality over an array: the one element that decides it (in the
 * column's sort order, not index order: the operator is the type's own).
 * Returns false when the array has no non-NULL element.
 */
static bool
fr_array_reduce(Relation index, FrState *state, ScanKey key, int col)
{
	bool		desc = state->desc[col];
	Datum	   *elems;
	int			n;
	bool		want_max;

	/* sorted in index order: undo a DESC column's reversal below */
	elems = fr_array_elements(index, state, key, col, false, &n);
	if (n == 0)
		return false;
	want_max = (key->sk_strategy == BTLessStrategyNumber ||
				key->sk_strategy == BTLessEqualStrategyNumber);
	key->sk_argument = (want_max != desc) ? elems[n - 1] : elems[0];
	key->sk_flags &= ~SK_SEARCHARRAY;
	return true;
}

/* set every array key's argument to its current element */
static void
fr_array_keys_apply(IndexScanDesc scan, FrArrayKeys *ak)
{
	int			i;

	for (i = 0; i < ak->n; i++)
		scan->keyData[ak->keys[i].keyno].sk_argument =
			ak->keys[i].elems[ak->keys[i].cur];
}

/*
 * Order the arrays by column (insertion sort: a handful), so that the last
 * one varies fastest and the combinations follow index order.
 */
static void
fr_array_keys_sort(IndexScanDesc scan, FrArrayKeys *ak)
{
	int			i,
				j;

	for (i = 1; i < ak->n; i++)
	{
		FrArrayKey	a = ak->keys[i];

		for (j = i; j > 0 &&
			 scan->keyData[ak->keys[j - 1].keyno].sk_attno >
			 scan->keyData[a.keyno].sk_attno; j--)
			ak->keys[j] = ak->keys[j - 1];
		ak->keys[j] = a;
	}
}

/*
 * Expand the array keys of scan->keyData (just set by amrescan), in 'cxt'.
 * Returns NULL when there are no '=' arrays; *empty says that an array
 * has no element at all, so nothing can match.
 */
FrArrayKeys *
fr_array_keys_prepare(IndexScanDesc scan, FrState *state, MemoryContext cxt,
					  bool *empty)
{
	Relation	index = scan->indexRelation;
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	FrArrayKeys *ak = NULL;
	int			k;

	*empty = false;
	for (k = 0; k < scan->numberOfKeys && !*empty; k++)
	{
		ScanKey		key = &scan->keyData[k];
		int			col = key->sk_attno - 1;
		FrArrayKey *a;

		/* a NULL array: fr_keys_unsatisfiable reports it */
		if (!(key->sk_flags & SK_SEARCHARRAY) || (key->sk_flags & SK_ISNULL))
			continue;
		if (key->sk_strategy != BTEqualStrategyNumber)
		{
			*empty = !fr_array_reduce(index, state, key, col);
			continue;
		}
		if (ak == NULL)
		{
			ak = palloc0(offsetof(FrArrayKeys, keys) +
						 sizeof(FrArrayKey) * scan->numberOfKeys);
		}
		a = &ak->keys[ak->n++];
		a->keyno = k;
		a->elems = fr_array_elements(index, state, key, col, true, &a->nelems);
		a->cur = 0;
		*empty = (a->nelems == 0);
	}
	MemoryContextSwitchTo(oldcxt);
	if (ak == NULL || *empty)
		return ak;
	fr_array_keys_sort(scan, ak);
	fr_array_keys_apply(scan, ak);
	return ak;
}

/* the first combination of 'dir': the smallest elements, or the largest */
void
fr_array_keys_start(IndexScanDesc scan, FrArrayKeys *ak, ScanDirection dir)
{
	int			i;

	for (i = 0; i < ak->n; i++)
		ak->keys[i].cur = ScanDirectionIsForward(dir) ? 0 : ak->keys[i].nelems - 1;
	fr_array_keys_apply(scan, ak);
}

/*
 * Step to the next combination in 'dir', like an odometer.  Returns false,
 * changing nothing, when this was the last one.
 */
bool
fr_array_keys_advance(IndexScanDesc scan, FrArrayKeys *ak, ScanDirection dir)
{
	bool		fwd = ScanDirectionIsForward(dir);
	int			i,
				j;

	/* the fastest-varying array that can still move */
	for (i = ak->n - 1; i >= 0; i--)
		if (fwd ? ak->keys[i].cur < ak->keys[i].nelems - 1 : ak->keys[i].cur > 0)
			break;
	if (i < 0)
		return false;

	/* move it; the faster ones start over */
	ak->keys[i].cur += fwd ? 1 : -1;
	for (j = i + 1; j < ak->n; j++)
		ak->keys[j].cur = fwd ? 0 : ak->keys[j].nelems - 1;
	fr_array_keys_apply(scan, ak);
	return true;
}

/* the current combination, for a mark (ak->n ints) */
void
fr_array_keys_save(FrArrayKeys *ak, int *pos)
{
	int			i;

	for (i = 0; i < ak->n; i++)
		pos[i] = ak->keys[i].cur;
}

/* back to a saved combination */
void
fr_array_keys_restore(IndexScanDesc scan, FrArrayKeys *ak, const int *pos)
{
	int			i;

	for (i = 0; i < ak->n; i++)
		ak->keys[i].cur = pos[i];
	fr_array_keys_apply(scan, ak);
}
