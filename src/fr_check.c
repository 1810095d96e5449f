/*-------------------------------------------------------------------------
 *
 * fr_check.c
 *	  fractal_check(index regclass, heapallindexed boolean): verify the
 *	  structural invariants of a fractal index, in the spirit of
 *	  contrib/amcheck.
 *
 * The table is locked in ShareLock for the duration, which keeps inserts,
 * flushes, splits and VACUUM out, so the whole tree can be checked as one
 * consistent state.  The tree is walked top-down, each page with the key
 * range its parent assigns it:
 *
 *	- page headers, special areas, kinds and levels (fr_check_page, plus the
 *	  level each parent expects);
 *	- in nodes: item 1 is minus infinity and starts a partition, pivots are
 *	  strictly increasing and inside the node's range, only partition-start
 *	  items carry chains;
 *	- in buffer chains: every page is a buffer page of the owner's level,
 *	  the chain has the recorded number of pages, and every message lies in
 *	  the key range of its partition's children;
 *	- in leaves: entries strictly increasing by (key, TID), inside the range;
 *	- no page is reached twice, no free page is reachable, and every page
 *	  that is not free is reachable.
 *
 * Duplicates of a (key, TID) pair across levels are allowed (an interrupted
 * flush leaves them; see src/README.md).  With heapallindexed, every entry
 * (leaf or buffered) is fingerprinted into a Bloom filter and every heap
 * tuple that must be indexed is looked up in it.
 *
 * Every problem is reported as ERRCODE_INDEX_CORRUPTED naming the block.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/bloomfilter.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "fractal.h"

typedef struct FrCheckState
{
	FrState		state;
	Relation	index;
	Relation	heap;
	BlockNumber nblocks;
	bool	   *visited;
	bloom_filter *filter;		/* heapallindexed only */
	int64		entries;
	int64		heaptuples;
} FrCheckState;

static void
fr_check_fail(FrCheckState *cs, BlockNumber blkno, const char *fmt,...)
pg_attribute_printf(3, 4);

static void
fr_check_fail(FrCheckState *cs, BlockNumber blkno, const char *fmt,...)
{
	char		buf[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(ERRCODE_INDEX_CORRUPTED),
			 errmsg("index \"%s\" is corrupted at block %u: %s",
					RelationGetRelationName(cs->index), blkno, buf),
			 errhint("Please REINDEX it.")));
}

/*
 * Fingerprint of an entry that does not depend on how its values were
 * compressed: hash of the heap TID and of each key column's detoasted bytes.
 */
static uint64
fr_fingerprint(FrCheckState *cs, Datum *values, bool *isnull, ItemPointer tid)
{
	TupleDesc	desc = cs->state.tupdesc;
	uint64		h = hash_bytes_extended((const unsigned char *) tid,
										sizeof(ItemPointerData), 0);
	int			i;

	for (i = 0; i < cs->state.nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		uint64		hc;

		if (isnull[i])
			hc = 0x9e3779b97f4a7c15ULL;
		else if (att->attlen == -1)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(values[i]);

			hc = hash_bytes_extended((const unsigned char *) VARDATA_ANY(v),
									 VARSIZE_ANY_EXHDR(v), i + 1);
		}
		else if (att->attbyval)
		{
			Datum		d = values[i];

			hc = hash_bytes_extended((const unsigned char *) &d, att->attlen, i + 1);
		}
		else if (att->attlen == -2)
			hc = hash_bytes_extended((const unsigned char *) DatumGetPointer(values[i]),
									 strlen(DatumGetCString(values[i])), i + 1);
		else
			hc = hash_bytes_extended((const unsigned char *) DatumGetPointer(values[i]),
									 att->attlen, i + 1);
		h = hash_combine64(h, hc);
	}
	return h;
}

static void
fr_check_record_entry(FrCheckState *cs, IndexTuple itup)
{
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	uint64		fp;

	cs->entries++;
	if (cs->filter == NULL)
		return;
	index_deform_tuple(itup, cs->state.tupdesc, values, isnull);
	fp = fr_fingerprint(cs, values, isnull, &itup->t_tid);
	bloom_add_element(cs->filter, (unsigned char *) &fp, sizeof(fp));
}

/* is itup inside [lo, hi)?  NULL bounds are infinite */
static bool
fr_in_range(FrCheckState *cs, IndexTuple itup, IndexTuple lo, IndexTuple hi)
{
	if (lo && fr_compare_tuples(&cs->state, itup, lo) < 0)
		return false;
	if (hi && fr_compare_tuples(&cs->state, itup, hi) >= 0)
		return false;
	return true;
}

static void
fr_check_visit(FrCheckState *cs, BlockNumber blkno, BlockNumber from)
{
	if (blkno == FR_META_BLKNO || blkno >= cs->nblocks)
		fr_check_fail(cs, from, "reference to invalid block %u", blkno);
	if (cs->visited[blkno])
		fr_check_fail(cs, blkno, "page reached twice (last from block %u)", from);
	cs->visited[blkno] = true;
}

/*
 * Check the buffer chain ending at 'tail' of a partition of the node at
 * 'nodeblk' (level 'level'), whose children cover [lo, hi).
 */
static void
fr_check_chain(FrCheckState *cs, BlockNumber nodeblk, uint16 level,
			   BlockNumber tail, uint32 npages, IndexTuple lo, IndexTuple hi)
{
	BlockNumber blkno = tail;
	BlockNumber from = nodeblk;
	uint32		count = 0;

	while (blkno != InvalidBlockNumber)
	{
		Buffer		buf;
		Page		page;
		OffsetNumber off,
					maxoff;

		CHECK_FOR_INTERRUPTS();
		fr_check_visit(cs, blkno, from);
		buf = fr_read_buffer(cs->index, blkno, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!FrPageIsChain(page))
			fr_check_fail(cs, blkno, "buffer chain of node %u leads to a page that is not a buffer page",
						  nodeblk);
		if (FrPageGetOpaque(page)->level != level)
			fr_check_fail(cs, blkno, "buffer page has level %u, its node has level %u",
						  FrPageGetOpaque(page)->level, level);
		maxoff = PageGetMaxOffsetNumber(page);
		for (off = FirstOffsetNumber; off <= maxoff; off++)
		{
			ItemId		iid = PageGetItemId(page, off);
			IndexTuple	it;

			if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) < sizeof(IndexTupleData))
				fr_check_fail(cs, blkno, "message %u has an invalid line pointer", off);
			it = (IndexTuple) PageGetItem(page, iid);
			if (IndexTupleSize(it) != ItemIdGetLength(iid))
				fr_check_fail(cs, blkno, "message %u has a wrong size", off);
			if (!fr_in_range(cs, it, lo, hi))
				fr_check_fail(cs, blkno, "message %u lies outside its partition's key range", off);
			fr_check_record_entry(cs, it);
		}
		count++;
		from = blkno;
		blkno = FrPageGetOpaque(page)->link;
		UnlockReleaseBuffer(buf);
	}
	if (count != npages)
		fr_check_fail(cs, nodeblk, "partition chain has %u pages, the node records %u",
					  count, npages);
}

static void
fr_check_leaf(FrCheckState *cs, BlockNumber blkno, Page page,
			  IndexTuple lo, IndexTuple hi)
{
	FrLeafView view;
	int			i;

	if (!FrPageIsCompressed(page))
	{
		OffsetNumber off,
					maxoff = PageGetMaxOffsetNumber(page);

		for (off = FirstOffsetNumber; off <= maxoff; off++)
		{
			ItemId		iid = PageGetItemId(page, off);

			if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) < sizeof(IndexTupleData))
				fr_check_fail(cs, blkno, "entry %u has an invalid line pointer", off);
			if (IndexTupleSize((IndexTuple) PageGetItem(page, iid)) != ItemIdGetLength(iid))
				fr_check_fail(cs, blkno, "entry %u has a wrong size", off);
		}
	}
	/* a compressed leaf is validated while it is decompressed */
	fr_leaf_view(cs->index, page, blkno, &view);
	for (i = 0; i < view.n; i++)
	{
		IndexTuple	it = view.items[i];

		if (i > 0 && fr_compare_tuples(&cs->state, view.items[i - 1], it) >= 0)
			fr_check_fail(cs, blkno, "entries %d and %d are out of order or duplicated",
						  i, i + 1);
		if (!fr_in_range(cs, it, lo, hi))
			fr_check_fail(cs, blkno, "entry %d lies outside the leaf's key range", i + 1);
		fr_check_record_entry(cs, it);
	}
	fr_leaf_view_release(&view);
}

/*
 * Check the subtree at 'blkno', expected at 'level', covering [lo, hi).
 */
static void
fr_check_subtree(FrCheckState *cs, BlockNumber blkno, int level,
				 IndexTuple lo, IndexTuple hi, bool isroot)
{
	Buffer		buf;
	Page		page;
	FrPageOpaque opaque;
	OffsetNumber off,
				maxoff;
	int			nitems;
	FrNodeItem *items;
	IndexTuple *pivots;
	BlockNumber *children;

	CHECK_FOR_INTERRUPTS();
	check_stack_depth();
	buf = fr_read_buffer(cs->index, blkno, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	opaque = FrPageGetOpaque(page);

	if (opaque->level != level)
		fr_check_fail(cs, blkno, "page has level %u, its parent expects %d",
					  opaque->level, level);
	if (isroot != FrPageIsRoot(page))
		fr_check_fail(cs, blkno, isroot ? "root page lacks the root flag"
					  : "non-root page has the root flag");
	if (level == 0)
	{
		if (!FrPageIsLeaf(page))
			fr_check_fail(cs, blkno, "level 0 page is not a leaf");
		fr_check_leaf(cs, blkno, page, lo, hi);
		UnlockReleaseBuffer(buf);
		return;
	}
	if (!FrPageIsNode(page))
		fr_check_fail(cs, blkno, "level %d page is not an internal node", level);

	/* copy the node's items, then release it before descending */
	maxoff = PageGetMaxOffsetNumber(page);
	nitems = maxoff;
	items = palloc(sizeof(FrNodeItem) * (nitems + 1));
	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId		iid = PageGetItemId(page, off);
		FrNodeItem	item;

		if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) < FrNodeItemHeaderSize + sizeof(IndexTupleData))
			fr_check_fail(cs, blkno, "node item %u has an invalid line pointer", off);
		item = (FrNodeItem) PageGetItem(page, iid);
		if (FrNodeItemHeaderSize + MAXALIGN(IndexTupleSize(FrNodeItemGetPivot(item))) != MAXALIGN(ItemIdGetLength(iid)))
			fr_check_fail(cs, blkno, "node item %u has a wrong size", off);
		items[off] = palloc(ItemIdGetLength(iid));
		memcpy(items[off], item, ItemIdGetLength(iid));
	}
	UnlockReleaseBuffer(buf);

	if (!(items[1]->flags & FR_ITEM_MINUS_INF) || !(items[1]->flags & FR_ITEM_PART_START))
		fr_check_fail(cs, blkno, "first node item is not a minus-infinity partition start");
	pivots = palloc(sizeof(IndexTuple) * (nitems + 2));
	children = palloc(sizeof(BlockNumber) * (nitems + 1));
	pivots[1] = lo;
	pivots[nitems + 1] = hi;
	for (off = FirstOffsetNumber; off <= nitems; off++)
	{
		FrNodeItem	item = items[off];

		children[off] = item->child;
		if (off > FirstOffsetNumber)
		{
			IndexTuple	p = FrNodeItemGetPivot(item);

			if (item->flags & FR_ITEM_MINUS_INF)
				fr_check_fail(cs, blkno, "node item %u is a second minus-infinity item", off);
			if (!fr_in_range(cs, p, lo, hi))
				fr_check_fail(cs, blkno, "pivot %u lies outside the node's key range", off);
			if (off > FirstOffsetNumber + 1 &&
				fr_compare_tuples(&cs->state, pivots[off - 1], p) >= 0)
				fr_check_fail(cs, blkno, "pivots %u and %u are out of order", off - 1, off);
			pivots[off] = p;
		}
		if (!(item->flags & FR_ITEM_PART_START) &&
			(item->chain_tail != InvalidBlockNumber || item->chain_pages != 0))
			fr_check_fail(cs, blkno, "node item %u has a buffer chain but starts no partition", off);
		if ((item->chain_tail == InvalidBlockNumber) != (item->chain_pages == 0))
			fr_check_fail(cs, blkno, "node item %u: chain pointer and page count disagree", off);
	}

	/* each partition's chain */
	for (off = FirstOffsetNumber; off <= nitems; off++)
	{
		OffsetNumber end;

		if (!(items[off]->flags & FR_ITEM_PART_START))
			continue;
		end = off + 1;
		while (end <= nitems && !(items[end]->flags & FR_ITEM_PART_START))
			end++;
		fr_check_chain(cs, blkno, level, items[off]->chain_tail,
					   items[off]->chain_pages, pivots[off], pivots[end]);
	}

	/* children */
	for (off = FirstOffsetNumber; off <= nitems; off++)
	{
		fr_check_visit(cs, children[off], blkno);
		fr_check_subtree(cs, children[off], level - 1, pivots[off],
						 pivots[off + 1], false);
	}
}

static void
fr_check_heap_callback(Relation index, ItemPointer tid, Datum *values,
					   bool *isnull, bool tupleIsAlive, void *state)
{
	FrCheckState *cs = (FrCheckState *) state;
	IndexTuple	itup = fr_form_tuple(&cs->state, values, isnull, tid);
	Datum		v[INDEX_MAX_KEYS];
	bool		n[INDEX_MAX_KEYS];
	uint64		fp;

	cs->heaptuples++;
	index_deform_tuple(itup, cs->state.tupdesc, v, n);
	fp = fr_fingerprint(cs, v, n, tid);
	if (bloom_lacks_element(cs->filter, (unsigned char *) &fp, sizeof(fp)))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("heap tuple (%u,%u) from table \"%s\" lacks a matching entry in index \"%s\"",
						ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid),
						RelationGetRelationName(cs->heap),
						RelationGetRelationName(cs->index)),
				 errhint("Please REINDEX it.")));
	pfree(itup);
}

PG_FUNCTION_INFO_V1(fractal_check);

Datum
fractal_check(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	bool		heapallindexed = PG_GETARG_BOOL(1);
	Oid			heapoid = IndexGetRelation(indexoid, true);
	FrCheckState cs;
	FrMetaPageData meta;
	BlockNumber blkno;

	memset(&cs, 0, sizeof(cs));
	if (!OidIsValid(heapoid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an index", format_type_be(indexoid))));
	/* table first, as everywhere else; ShareLock keeps all writers out */
	cs.heap = table_open(heapoid, ShareLock);
	cs.index = index_open(indexoid, AccessShareLock);
	if (cs.index->rd_indam->ambuild != frbuild)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a fractal index",
						RelationGetRelationName(cs.index))));
	if (RELATION_IS_OTHER_TEMP(cs.index))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot check temporary indexes of other sessions")));
	if (!cs.index->rd_index->indisvalid)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot check index \"%s\": it is not valid",
						RelationGetRelationName(cs.index))));

	fr_init_state(&cs.state, cs.index);
	cs.nblocks = RelationGetNumberOfBlocks(cs.index);
	cs.visited = palloc0(sizeof(bool) * Max(cs.nblocks, 1));
	if (heapallindexed)
	{
		double		reltuples = Max(cs.heap->rd_rel->reltuples, 0);

		cs.filter = bloom_create((int64) Max(reltuples, 1000.0) * 2,
								 maintenance_work_mem, 0);
	}

	meta = fr_get_meta(cs.index);
	cs.visited[FR_META_BLKNO] = true;
	fr_check_visit(&cs, meta.root, FR_META_BLKNO);
	fr_check_subtree(&cs, meta.root, (int) meta.height, NULL, NULL, true);

	/* every page that is not free is reachable */
	for (blkno = FR_META_BLKNO + 1; blkno < cs.nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;

		if (cs.visited[blkno])
			continue;
		CHECK_FOR_INTERRUPTS();
		buf = ReadBuffer(cs.index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			fr_check_page(cs.index, page, blkno);
			if (!FrPageIsFree(page))
				fr_check_fail(&cs, blkno, "page is not free but is not reachable from the root");
		}
		UnlockReleaseBuffer(buf);
	}

	if (heapallindexed)
	{
		IndexInfo  *indexInfo = BuildIndexInfo(cs.index);

		table_index_build_scan(cs.heap, cs.index, indexInfo, true, false,
							   fr_check_heap_callback, (void *) &cs, NULL);
		bloom_free(cs.filter);
	}

	index_close(cs.index, AccessShareLock);
	table_close(cs.heap, ShareLock);
	PG_RETURN_VOID();
}
