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
 * tuple that must be indexed is looked up in it; what fingerprinting one
 * entry allocates (detoasted copies, the heap side's index tuple) lives in
 * a memory context reset after each entry, so memory does not grow with
 * the index.
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
#include "catalog/pg_class.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/bloomfilter.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
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
	MemoryContext entrycxt;		/* heapallindexed only: reset per entry */
	int64		entries;
	int64		heaptuples;
	uint32		version;		/* the metapage's format version */
	FrFilter	leaf_filter;	/* the slot of the leaf being checked (a
								 * copy), or NULL */
} FrCheckState;

/* a buffer chain being checked (fr_check_chain_page's argument) */
typedef struct FrChainCheck
{
	FrCheckState *cs;
	uint16		level;			/* the level of the node owning the chain */
	IndexTuple	lo;				/* its partition's key range */
	IndexTuple	hi;
	BlockNumber from;			/* the block that led to the next page */
	uint32		count;			/* pages visited so far */
	FrFilter	chain_slot;		/* level 1: the partition's leaf filter
								 * chain slot, unless it passes all */
	/* filters of newer pages whose segment goes on below (copies) */
	FrFilter   *open;
	BlockNumber *open_blk;
	int			nopen;
	int			open_cap;
} FrChainCheck;

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
 * Detoasting allocates in CurrentMemoryContext: callers run this in
 * cs->entrycxt and reset it afterwards.
 */
static uint64
fr_fingerprint(FrCheckState *cs, IndexTuple itup)
{
	TupleDesc	desc = cs->state.tupdesc;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	uint64		h = hash_bytes_extended((const unsigned char *) &itup->t_tid,
										sizeof(ItemPointerData), 0);
	int			i;

	index_deform_tuple(itup, desc, values, isnull);
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

/* count an entry and, with heapallindexed, add it to the Bloom filter */
static void
fr_check_record_entry(FrCheckState *cs, IndexTuple itup)
{
	MemoryContext oldcxt;
	uint64		fp;

	cs->entries++;
	if (cs->filter == NULL)
		return;
	oldcxt = MemoryContextSwitchTo(cs->entrycxt);
	fp = fr_fingerprint(cs, itup);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(cs->entrycxt);
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

/* mark 'blkno' (reached from 'from') visited; it must be new and valid */
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
 * Item 'off' of a leaf or buffer page, checked to be a whole index tuple;
 * 'what' names it in messages ("entry", "message").
 */
static IndexTuple
fr_check_page_item(FrCheckState *cs, BlockNumber blkno, Page page,
				   OffsetNumber off, const char *what)
{
	ItemId		iid = PageGetItemId(page, off);
	IndexTuple	it;

	if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) < sizeof(IndexTupleData))
		fr_check_fail(cs, blkno, "%s %u has an invalid line pointer", what, off);
	it = (IndexTuple) PageGetItem(page, iid);
	if (IndexTupleSize(it) != ItemIdGetLength(iid))
		fr_check_fail(cs, blkno, "%s %u has a wrong size", what, off);
	return it;
}

/*
 * Check the key filter side of buffer page 'page': every message's key is
 * in its own filter and in the filters of the newer pages whose segment
 * reaches this page; a page starting a segment ends those segments, which
 * must all skip to its link; a continuing page's filter is remembered.
 */
static void
fr_check_filters(FrChainCheck *cc, Page page, BlockNumber blkno)
{
	FrCheckState *cs = cc->cs;
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page);
	FrFilter	f = FrPageIsFiltered(page) ? FrPageGetFilter(page) : NULL;
	int			j;

	if (f == NULL && cc->nopen > 0)
		fr_check_fail(cs, blkno, "the filter segment of buffer page %u reaches a page without a filter",
					  cc->open_blk[0]);
	if (f != NULL && f->typlen != TupleDescAttr(RelationGetDescr(cs->index), 0)->attlen)
		fr_check_fail(cs, blkno, "buffer page filter records attlen %d, the first key column has %d",
					  f->typlen, TupleDescAttr(RelationGetDescr(cs->index), 0)->attlen);
	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		IndexTuple	it = (IndexTuple) PageGetItem(page, PageGetItemId(page, off));

		if (f != NULL && !fr_filter_contains_tuple(f, it))
			fr_check_fail(cs, blkno, "buffer page filter lacks the key of message %u", off);
		for (j = 0; j < cc->nopen; j++)
		{
			if (!fr_filter_contains_tuple(cc->open[j], it))
				fr_check_fail(cs, cc->open_blk[j], "buffer page filter lacks the key of message %u of older page %u of its segment",
							  off, blkno);
		}
	}
	if (f == NULL)
		return;
	if (f->flags & FR_FILTER_SEG_START)
	{
		/* this page ends the open segments: they skip to its link */
		for (j = 0; j < cc->nopen; j++)
		{
			if (cc->open[j]->skip != FrPageGetOpaque(page)->link)
				fr_check_fail(cs, cc->open_blk[j], "buffer page filter skips to block %u, its segment ends before block %u",
							  cc->open[j]->skip, FrPageGetOpaque(page)->link);
			pfree(cc->open[j]);
		}
		cc->nopen = 0;
		return;
	}
	if (cc->nopen == cc->open_cap)
	{
		cc->open_cap = Max(8, cc->open_cap * 2);
		cc->open = repalloc(cc->open, sizeof(FrFilter) * cc->open_cap);
		cc->open_blk = repalloc(cc->open_blk, sizeof(BlockNumber) * cc->open_cap);
	}
	cc->open[cc->nopen] = palloc(sizeof(FrFilterData) + f->nbytes);
	memcpy(cc->open[cc->nopen], f, sizeof(FrFilterData) + f->nbytes);
	cc->open_blk[cc->nopen] = blkno;
	cc->nopen++;
}

/*
 * fr_chain_walk visitor: one page of a buffer chain, share-locked.  The
 * walk has checked that it is a buffer page, and errors out on more pages
 * than the node records.
 */
static bool
fr_check_chain_page(void *arg, Page page, BlockNumber blkno)
{
	FrChainCheck *cc = (FrChainCheck *) arg;
	FrCheckState *cs = cc->cs;
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page);

	fr_check_visit(cs, blkno, cc->from);
	if (FrPageGetOpaque(page)->level != cc->level)
		fr_check_fail(cs, blkno, "buffer page has level %u, its node has level %u",
					  FrPageGetOpaque(page)->level, cc->level);
	/* from format 2 on, only a chain's newest page is left unsorted */
	if (cc->count > 0 && cs->version >= 2 && !FrPageIsSorted(page))
		fr_check_fail(cs, blkno, "unsorted buffer page is not its chain's newest");
	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		IndexTuple	it = fr_check_page_item(cs, blkno, page, off, "message");

		/* a sorted page is in (key, TID) order; equal pairs may repeat */
		if (off > FirstOffsetNumber && FrPageIsSorted(page) &&
			fr_compare_tuples(&cs->state,
							  (IndexTuple) PageGetItem(page, PageGetItemId(page, off - 1)),
							  it) > 0)
			fr_check_fail(cs, blkno, "sorted buffer page has messages %u and %u out of order",
						  off - 1, off);
		if (!fr_in_range(cs, it, cc->lo, cc->hi))
			fr_check_fail(cs, blkno, "message %u lies outside its partition's key range", off);
		if (cc->chain_slot != NULL && !fr_filter_contains_tuple(cc->chain_slot, it))
			fr_check_fail(cs, blkno, "leaf filter chain slot lacks the key of message %u", off);
		fr_check_record_entry(cs, it);
	}
	fr_check_filters(cc, page, blkno);
	cc->count++;
	cc->from = blkno;
	return false;
}

/*
 * Check the buffer chain ending at 'tail' of a partition of the node at
 * 'nodeblk' (level 'level'), whose children cover [lo, hi).
 */
static void
fr_check_chain(FrCheckState *cs, BlockNumber nodeblk, uint16 level,
			   BlockNumber tail, uint32 npages, IndexTuple lo, IndexTuple hi,
			   FrFilter chain_slot)
{
	FrChainCheck cc = {cs, level, lo, hi, nodeblk, 0, chain_slot};

	cc.open_cap = 8;
	cc.open = palloc(sizeof(FrFilter) * cc.open_cap);
	cc.open_blk = palloc(sizeof(BlockNumber) * cc.open_cap);

	CHECK_FOR_INTERRUPTS();
	/* a chain longer than npages is reported by the walk itself */
	fr_chain_walk(cs->index, tail, npages, fr_check_chain_page, &cc);
	if (cc.nopen > 0)
		fr_check_fail(cs, cc.open_blk[0], "buffer page filter segment has no first page");
	if (cc.count != npages)
		fr_check_fail(cs, nodeblk, "partition chain has %u pages, the node records %u",
					  cc.count, npages);
}

static void
fr_check_leaf(FrCheckState *cs, BlockNumber blkno, Page page,
			  IndexTuple lo, IndexTuple hi)
{
	FrLeafView view;
	int			i;

	/* a compressed leaf is validated while it is decompressed */
	if (!FrPageIsCompressed(page))
	{
		OffsetNumber off,
					maxoff = PageGetMaxOffsetNumber(page);

		for (off = FirstOffsetNumber; off <= maxoff; off++)
			(void) fr_check_page_item(cs, blkno, page, off, "entry");
	}
	fr_leaf_view(cs->index, page, blkno, &view);
	for (i = 0; i < view.n; i++)
	{
		IndexTuple	it = view.items[i];

		if (i > 0 && fr_compare_tuples(&cs->state, view.items[i - 1], it) >= 0)
			fr_check_fail(cs, blkno, "entries %d and %d are out of order or duplicated",
						  i, i + 1);
		if (!fr_in_range(cs, it, lo, hi))
			fr_check_fail(cs, blkno, "entry %d lies outside the leaf's key range", i + 1);
		if (cs->leaf_filter != NULL &&
			!fr_filter_contains_tuple(cs->leaf_filter, it))
			fr_check_fail(cs, blkno, "leaf filter lacks the key of entry %d", i + 1);
		fr_check_record_entry(cs, it);
	}
	fr_leaf_view_release(&view);
}

/*
 * Copies of the leaf filter slots of the children of the level-1 node
 * whose partitions are items[1..nitems] (slots[off], NULL for a child
 * without one, and always for the node's last child, whose slot readers
 * ignore), and of each partition's chain slot (*chain_slots[partoff],
 * NULL when it passes every key); the filter pages are checked and marked
 * visited.  The root's chain slots must pass every key.
 */
static FrFilter *
fr_check_leaf_filters(FrCheckState *cs, BlockNumber blkno, FrNodeItem *items,
					  int nitems, bool isroot, FrFilter **chain_slots)
{
	FrFilter   *slots = palloc0(sizeof(FrFilter) * (nitems + 2));
	OffsetNumber off,
				c;

	*chain_slots = palloc0(sizeof(FrFilter) * (nitems + 2));

	for (off = FirstOffsetNumber; off <= nitems; off++)
	{
		BlockNumber fblk = FrItemGetFilter(items[off]);
		Buffer		fbuf;
		FrLeafFilters lf;
		int			i;

		if (fblk == 0)
			continue;
		if (!(items[off]->flags & FR_ITEM_PART_START))
			fr_check_fail(cs, blkno, "item %d names a leaf filter page but starts no partition",
						  off);
		fr_check_visit(cs, fblk, blkno);
		fbuf = fr_read_buffer(cs->index, fblk, BUFFER_LOCK_SHARE);
		if (!FrPageIsLeafFilters(BufferGetPage(fbuf)))
			fr_check_fail(cs, fblk, "page named as a leaf filter page is not one");
		if (!fr_lfilter_slots_valid(BufferGetPage(fbuf)))
			fr_check_fail(cs, fblk, "leaf filter page has an invalid slot");
		lf = FrPageGetLeafFilters(BufferGetPage(fbuf));
		if (!(FrLeafFilterSlot(lf, 0)->flags & FR_FILTER_ALL))
		{
			if (isroot)
				fr_check_fail(cs, fblk, "the root's leaf filter chain slot does not pass every key");
			(*chain_slots)[off] = palloc(FrLeafFilterSlotSize(lf, 0));
			memcpy((*chain_slots)[off], FrLeafFilterSlot(lf, 0), FrLeafFilterSlotSize(lf, 0));
		}
		for (c = off; c < nitems && (c == off || !(items[c]->flags & FR_ITEM_PART_START)); c++)
			for (i = 1; i < lf->nslots; i++)
			{
				FrFilter	f = FrLeafFilterSlot(lf, i);

				if (f->skip == items[c]->child)
				{
					slots[c] = palloc(FrLeafFilterSlotSize(lf, i));
					memcpy(slots[c], f, FrLeafFilterSlotSize(lf, i));
				}
			}
		UnlockReleaseBuffer(fbuf);
	}
	return slots;
}

/*
 * Copies of the items of the node on 'page' (items[1..*nitems]), each
 * checked to be a whole node item, so the node can be released before its
 * partitions and children are checked.
 */
static FrNodeItem *
fr_check_copy_node(FrCheckState *cs, BlockNumber blkno, Page page,
				   int *nitems)
{
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page);
	FrNodeItem *items = palloc(sizeof(FrNodeItem) * (maxoff + 1));

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
	*nitems = maxoff;
	return items;
}

/*
 * Check the items of the node at 'blkno', covering [lo, hi): item 1 is a
 * minus-infinity partition start, pivots are strictly increasing inside the
 * range, only partition starts carry chains.  Returns the bounds of each
 * child: child 'off' covers [pivots[off], pivots[off + 1]).
 */
static IndexTuple *
fr_check_pivots(FrCheckState *cs, BlockNumber blkno, FrNodeItem *items,
				int nitems, IndexTuple lo, IndexTuple hi)
{
	IndexTuple *pivots = palloc(sizeof(IndexTuple) * (nitems + 2));
	OffsetNumber off;

	if (!(items[1]->flags & FR_ITEM_MINUS_INF) || !(items[1]->flags & FR_ITEM_PART_START))
		fr_check_fail(cs, blkno, "first node item is not a minus-infinity partition start");
	pivots[1] = lo;
	pivots[nitems + 1] = hi;
	for (off = FirstOffsetNumber; off <= nitems; off++)
	{
		FrNodeItem	item = items[off];

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
	return pivots;
}

static void fr_check_subtree(FrCheckState *cs, BlockNumber blkno, int level,
							 IndexTuple lo, IndexTuple hi, bool isroot);

/*
 * Check the node at 'blkno' (level 'level', covering [lo, hi)) from the
 * copies of its items: pivots, each partition's chain, then each child.
 */
static void
fr_check_node(FrCheckState *cs, BlockNumber blkno, int level,
			  FrNodeItem *items, int nitems, IndexTuple lo, IndexTuple hi,
			  bool isroot)
{
	IndexTuple *pivots = fr_check_pivots(cs, blkno, items, nitems, lo, hi);
	FrFilter   *slots = NULL,
			   *chain_slots = NULL;
	OffsetNumber off;

	/* level 1: the leaf filter pages */
	if (level == 1)
		slots = fr_check_leaf_filters(cs, blkno, items, nitems, isroot,
									  &chain_slots);

	/* each partition's chain, against the key range of its children */
	for (off = FirstOffsetNumber; off <= nitems; off++)
	{
		OffsetNumber end;

		if (!(items[off]->flags & FR_ITEM_PART_START))
			continue;
		end = off + 1;
		while (end <= nitems && !(items[end]->flags & FR_ITEM_PART_START))
			end++;
		fr_check_chain(cs, blkno, level, items[off]->chain_tail,
					   items[off]->chain_pages, pivots[off], pivots[end],
					   chain_slots ? chain_slots[off] : NULL);
	}

	/* the children, each with its own key range (and a leaf its filter) */
	for (off = FirstOffsetNumber; off <= nitems; off++)
	{
		fr_check_visit(cs, items[off]->child, blkno);
		cs->leaf_filter = slots ? slots[off] : NULL;
		fr_check_subtree(cs, items[off]->child, level - 1, pivots[off],
						 pivots[off + 1], false);
		cs->leaf_filter = NULL;
	}

	/* the pivots point into the copies: free both only now */
	for (off = FirstOffsetNumber; off <= nitems; off++)
		pfree(items[off]);
	pfree(items);
	pfree(pivots);
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
	int			nitems;
	FrNodeItem *items;

	CHECK_FOR_INTERRUPTS();
	check_stack_depth();
	buf = fr_read_buffer(cs->index, blkno, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);

	/* the level and root flag the parent (or the metapage) expects */
	if (FrPageGetOpaque(page)->level != level)
		fr_check_fail(cs, blkno, "page has level %u, its parent expects %d",
					  FrPageGetOpaque(page)->level, level);
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
	items = fr_check_copy_node(cs, blkno, page, &nitems);
	UnlockReleaseBuffer(buf);
	fr_check_node(cs, blkno, level, items, nitems, lo, hi, isroot);
}

/* every page that is not free must have been reached from the root */
static void
fr_check_unreachable(FrCheckState *cs)
{
	BlockNumber blkno;

	for (blkno = FR_META_BLKNO + 1; blkno < cs->nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;

		if (cs->visited[blkno])
			continue;
		CHECK_FOR_INTERRUPTS();
		buf = ReadBuffer(cs->index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			fr_check_page(cs->index, page, blkno);
			if (!FrPageIsFree(page))
				fr_check_fail(cs, blkno, "page is not free but is not reachable from the root");
		}
		UnlockReleaseBuffer(buf);
	}
}

/* heapallindexed: look each heap tuple's entry up in the Bloom filter */
static void
fr_check_heap_callback(Relation index, ItemPointer tid, Datum *values,
					   bool *isnull, bool tupleIsAlive, void *state)
{
	FrCheckState *cs = (FrCheckState *) state;
	MemoryContext oldcxt;
	uint64		fp;

	cs->heaptuples++;
	/* the index tuple and what fingerprinting detoasts die with entrycxt */
	oldcxt = MemoryContextSwitchTo(cs->entrycxt);
	fp = fr_fingerprint(cs, fr_form_tuple(&cs->state, values, isnull, tid));
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(cs->entrycxt);
	if (bloom_lacks_element(cs->filter, (unsigned char *) &fp, sizeof(fp)))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("heap tuple (%u,%u) from table \"%s\" lacks a matching entry in index \"%s\"",
						ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid),
						RelationGetRelationName(cs->heap),
						RelationGetRelationName(cs->index)),
				 errhint("Please REINDEX it.")));
}

/*
 * Lock the table, then the index (as everywhere else), and make sure the
 * index is a checkable fractal index of that table.  As in amcheck, the
 * table is looked up before any lock is held; if 'indexoid' is no index,
 * the complaint comes once it is open.
 */
static void
fr_check_open(FrCheckState *cs, Oid indexoid)
{
	Oid			heapoid = IndexGetRelation(indexoid, true);

	/* ShareLock keeps all writers, flushes, splits and VACUUM out */
	if (OidIsValid(heapoid))
		cs->heap = table_open(heapoid, ShareLock);
	cs->index = relation_open(indexoid, AccessShareLock);
	if (!fr_is_fractal_index(cs->index))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a fractal index",
						RelationGetRelationName(cs->index))));

	/* the unlocked lookup may have raced with a drop and re-creation */
	if (cs->heap == NULL || heapoid != IndexGetRelation(indexoid, false))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("could not open parent table of index \"%s\"",
						RelationGetRelationName(cs->index))));
	if (RELATION_IS_OTHER_TEMP(cs->index))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot check temporary indexes of other sessions")));
	if (!cs->index->rd_index->indisvalid)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot check index \"%s\": it is not valid",
						RelationGetRelationName(cs->index))));
	/* this backend's batched inserts are checked too */
	fr_pending_flush_index(cs->index);
}

PG_FUNCTION_INFO_V1(fractal_check);

Datum
fractal_check(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	bool		heapallindexed = PG_GETARG_BOOL(1);
	FrCheckState cs;
	FrMetaPageData meta;
	Oid			save_userid;
	int			save_sec_context,
				save_nestlevel;

	memset(&cs, 0, sizeof(cs));
	fr_check_open(&cs, indexoid);

	/*
	 * As amcheck does: index expressions and predicates run as the table's
	 * owner, in a restricted security context, with GUC changes undone.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(cs.heap->rd_rel->relowner,
						   save_sec_context | SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();

	fr_init_state(&cs.state, cs.index);
	cs.nblocks = RelationGetNumberOfBlocks(cs.index);
	cs.visited = palloc0(sizeof(bool) * Max(cs.nblocks, 1));
	if (heapallindexed)
	{
		double		reltuples = Max(cs.heap->rd_rel->reltuples, 0);

		cs.filter = bloom_create((int64) Max(reltuples, 1000.0) * 2,
								 maintenance_work_mem, 0);
		cs.entrycxt = AllocSetContextCreate(CurrentMemoryContext,
											"fractal_check entry",
											ALLOCSET_DEFAULT_SIZES);
	}

	/* the tree, top-down from the root the metapage names */
	meta = fr_get_meta(cs.index);
	cs.version = meta.version;
	cs.visited[FR_META_BLKNO] = true;
	fr_check_visit(&cs, meta.root, FR_META_BLKNO);
	fr_check_subtree(&cs, meta.root, (int) meta.height, NULL, NULL, true);

	/* the pages the walk did not reach */
	fr_check_unreachable(&cs);

	/* every heap tuple that must be indexed has its entry */
	if (heapallindexed)
	{
		IndexInfo  *indexInfo = BuildIndexInfo(cs.index);

		table_index_build_scan(cs.heap, cs.index, indexInfo, true, false,
							   fr_check_heap_callback, (void *) &cs, NULL);
		bloom_free(cs.filter);
		MemoryContextDelete(cs.entrycxt);
	}

	pfree(cs.visited);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	relation_close(cs.index, AccessShareLock);
	table_close(cs.heap, ShareLock);
	PG_RETURN_VOID();
}
