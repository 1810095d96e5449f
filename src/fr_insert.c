/*-------------------------------------------------------------------------
 *
 * fr_insert.c
 *	  aminsert of the fractal index: an insert appends one message to the
 *	  buffer chain of the root partition that covers its key and returns.
 *	  Only while the whole tree is a single leaf does an insert go straight
 *	  to the leaf.  Flushing is started here when the root goes over its
 *	  buffer budget (see fr_flush.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "fractal.h"

/* per-statement insert state kept in IndexInfo->ii_AmCache */
typedef struct FrInsertCache
{
	FrState		state;
	MemoryContext tmpcxt;
} FrInsertCache;

/*
 * Form the index tuple for (values, isnull) pointing at 'tid', refusing keys
 * too large for the tree.
 */
IndexTuple
fr_form_tuple(FrState *state, Datum *values, bool *isnull, ItemPointer tid)
{
	IndexTuple	itup = index_form_tuple(state->tupdesc, values, isnull);
	Size		sz = IndexTupleSize(itup);

	if (MAXALIGN(sz) > FR_MAX_ITEM_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("index row size %zu exceeds fractal maximum %zu for index \"%s\"",
						sz, (Size) FR_MAX_ITEM_SIZE,
						RelationGetRelationName(state->index)),
				 errhint("Values larger than 1/8 of a buffer page cannot be indexed by a fractal index.")));
	itup->t_tid = *tid;
	return itup;
}

/*
 * In an internal node, the item whose child covers 'key': the last item
 * whose pivot is <= key (item 1 is minus infinity).
 */
OffsetNumber
fr_node_find_child(FrState *state, Page page, IndexTuple key)
{
	OffsetNumber lo = FirstOffsetNumber + 1;
	OffsetNumber hi = PageGetMaxOffsetNumber(page);
	OffsetNumber result = FirstOffsetNumber;

	while (lo <= hi)
	{
		OffsetNumber mid = lo + (hi - lo) / 2;
		IndexTuple	pivot = FrNodeItemGetPivot(fr_node_get_item(page, mid));

		if (fr_compare_tuples(state, pivot, key) <= 0)
		{
			result = mid;
			lo = mid + 1;
		}
		else
			hi = mid - 1;
	}
	return result;
}

/*
 * In a leaf, the first offset whose entry is >= key (maxoff + 1 if none).
 */
OffsetNumber
fr_leaf_search(FrState *state, Page page, IndexTuple key)
{
	OffsetNumber lo = FirstOffsetNumber;
	OffsetNumber hi = PageGetMaxOffsetNumber(page) + 1;

	while (lo < hi)
	{
		OffsetNumber mid = lo + (hi - lo) / 2;
		IndexTuple	it = (IndexTuple) PageGetItem(page, PageGetItemId(page, mid));

		if (fr_compare_tuples(state, it, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Append messages to the chain of the partition starting at 'partoff' of
 * the node in 'nodebuf', which the caller holds exclusively locked.  The
 * current tail page is filled first; then new chain pages are allocated,
 * each logged together with the node page that now points at it.
 */
void
fr_chain_append(Relation index, Buffer nodebuf, OffsetNumber partoff,
				IndexTuple *msgs, int nmsgs)
{
	Page		npage = BufferGetPage(nodebuf);
	uint16		level = FrPageGetOpaque(npage)->level;
	BlockNumber tail = fr_node_get_item(npage, partoff)->chain_tail;
	int			i = 0;

	if (tail != InvalidBlockNumber)
	{
		Buffer		tbuf = fr_read_chain_buffer(index, tail, BUFFER_LOCK_EXCLUSIVE);

		{
			Page		tpage = BufferGetPage(tbuf);
			Size		avail = PageGetExactFreeSpace(tpage);

			while (i < nmsgs &&
				   MAXALIGN(IndexTupleSize(msgs[i])) + sizeof(ItemIdData) <= avail)
			{
				avail -= MAXALIGN(IndexTupleSize(msgs[i])) + sizeof(ItemIdData);
				i++;
			}
			fr_page_add_items(index, tbuf, msgs, NULL, i);
		}
		UnlockReleaseBuffer(tbuf);
	}

	while (i < nmsgs)
	{
		Buffer		nbuf = fr_new_buffer(index);
		GenericXLogState *xs = GenericXLogStart(index);
		Page		np = GenericXLogRegisterBuffer(xs, nodebuf, 0);
		Page		cp = GenericXLogRegisterBuffer(xs, nbuf, GENERIC_XLOG_FULL_IMAGE);
		FrNodeItem	pitem = fr_node_get_item(np, partoff);

		fr_init_page(cp, FR_CHAIN, level);
		FrPageGetOpaque(cp)->link = pitem->chain_tail;
		while (i < nmsgs &&
			   PageGetFreeSpace(cp) >= MAXALIGN(IndexTupleSize(msgs[i])))
		{
			if (PageAddItem(cp, (Item) msgs[i], IndexTupleSize(msgs[i]),
							InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
				elog(ERROR, "failed to add message to fractal buffer page");
			i++;
		}
		pitem->chain_tail = BufferGetBlockNumber(nbuf);
		pitem->chain_pages++;
		GenericXLogFinish(xs);
		UnlockReleaseBuffer(nbuf);
	}
}

/*
 * The sequential-insert fast path.  Entries are the only kind of message
 * and messages commute, so an entry may go straight into its leaf while
 * other messages for that leaf's range wait in ancestor buffers: readers
 * merge both, flushes skip what a leaf already holds.
 *
 * Called with the root node share-locked in 'rbuf' and 'itup' routing to
 * its last child; walks the right edge with share-lock coupling, locks the
 * rightmost leaf exclusively (no flush can reach it: that needs its parent
 * exclusively, which we hold shared) and appends when the leaf is plain and
 * has room.  Returns true when done.  Releases rbuf in every case.
 */
static bool
fr_insert_rightmost(FrState *state, Buffer rbuf, IndexTuple itup)
{
	Relation	index = state->index;
	Buffer		buf = rbuf;
	Page		page = BufferGetPage(buf);

	for (;;)
	{
		OffsetNumber off = fr_node_find_child(state, page, itup);
		BlockNumber child;
		bool		leaf_next = FrPageGetOpaque(page)->level == 1;
		Buffer		cbuf;
		Page		cpage;

		if (off != PageGetMaxOffsetNumber(page))
			break;
		child = fr_node_get_item(page, off)->child;
		cbuf = fr_read_buffer(index, child,
							  leaf_next ? BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE);
		cpage = BufferGetPage(cbuf);
		if (leaf_next)
		{
			bool		done = false;

			if (FrPageIsLeaf(cpage) &&
				!(FrPageGetOpaque(cpage)->flags & FR_COMPRESSED) &&
				PageGetFreeSpace(cpage) >= MAXALIGN(IndexTupleSize(itup)))
			{
				OffsetNumber pos = fr_leaf_search(state, cpage, itup);

				if (pos > PageGetMaxOffsetNumber(cpage) ||
					fr_compare_tuples(state,
									  (IndexTuple) PageGetItem(cpage, PageGetItemId(cpage, pos)),
									  itup) != 0)
					fr_page_add_items(index, cbuf, &itup, &pos, 1);
				done = true;
			}
			UnlockReleaseBuffer(cbuf);
			UnlockReleaseBuffer(buf);
			return done;
		}
		UnlockReleaseBuffer(buf);
		buf = cbuf;
		page = cpage;
		if (!FrPageIsNode(page))
			break;
	}
	UnlockReleaseBuffer(buf);
	return false;
}

/*
 * Insert one (key, TID) entry.
 *
 * Locking: the root (from the cached metapage) share, then the chain
 * tail page exclusive.  Holding the root while appending keeps a flush,
 * which needs the root exclusively, from detaching the chain under us.
 * When the tail page is full, the root is relocked exclusively to link a new
 * chain page.
 */
void
fr_insert_tuple(FrState *state, IndexTuple itup)
{
	Relation	index = state->index;
	Size		itemsz = MAXALIGN(IndexTupleSize(itup));
	bool		refresh = false;

	for (;;)
	{
		BlockNumber root = fr_get_root(index, NULL, refresh);
		Buffer		rbuf;
		Page		page;
		OffsetNumber off,
					part;
		FrNodeItem	pitem;
		bool		over_budget;

		CHECK_FOR_INTERRUPTS();
		rbuf = fr_read_buffer(index, root, BUFFER_LOCK_SHARE);
		page = BufferGetPage(rbuf);
		refresh = true;			/* if we come round again */
		if (!FrPageIsRoot(page))
		{
			/* the tree grew since the metapage was cached */
			UnlockReleaseBuffer(rbuf);
			continue;
		}

		if (FrPageIsLeaf(page))
		{
			/* the whole tree is one leaf: insert into it directly */
			LockBuffer(rbuf, BUFFER_LOCK_UNLOCK);
			LockBuffer(rbuf, BUFFER_LOCK_EXCLUSIVE);
			if (!FrPageIsRoot(page) || !FrPageIsLeaf(page))
			{
				UnlockReleaseBuffer(rbuf);
				continue;
			}
			if (FrPageGetOpaque(page)->flags & FR_COMPRESSED)
				fr_report_corrupt(index, root, "the root leaf is compressed");
			if (PageGetFreeSpace(page) >= itemsz)
			{
				OffsetNumber pos = fr_leaf_search(state, page, itup);

				fr_page_add_items(index, rbuf, &itup, &pos, 1);
				UnlockReleaseBuffer(rbuf);
				return;
			}
			UnlockReleaseBuffer(rbuf);
			fr_split_root_leaf(state, itup);
			continue;
		}

		off = fr_node_find_child(state, page, itup);

		/* appending at the right end, again and again: try the leaf */
		if (off == PageGetMaxOffsetNumber(page))
		{
			FrAmCache  *cache = fr_amcache(index);

			if (cache->rightmost_run < FR_RIGHTMOST_RUN)
				cache->rightmost_run++;
			else if (fr_insert_rightmost(state, rbuf, itup))
				return;			/* fr_insert_rightmost released rbuf */
			else
			{
				/* rbuf was released: start over on the buffered path */
				cache->rightmost_run = 0;
				continue;
			}
		}
		else
			fr_amcache(index)->rightmost_run = 0;

		/* buffered insert into the root's partition chain */
		part = fr_node_partition_start(page, off);
		pitem = fr_node_get_item(page, part);
		if (pitem->chain_tail != InvalidBlockNumber)
		{
			Buffer		tbuf = fr_read_chain_buffer(index, pitem->chain_tail,
													BUFFER_LOCK_EXCLUSIVE);
			Page		tpage = BufferGetPage(tbuf);

			if (PageGetFreeSpace(tpage) >= itemsz)
			{
				fr_page_add_items(index, tbuf, &itup, NULL, 1);
				UnlockReleaseBuffer(tbuf);
				UnlockReleaseBuffer(rbuf);
				return;
			}
			UnlockReleaseBuffer(tbuf);
		}

		/* a new chain page is needed: relock the root exclusively */
		LockBuffer(rbuf, BUFFER_LOCK_UNLOCK);
		LockBuffer(rbuf, BUFFER_LOCK_EXCLUSIVE);
		if (!FrPageIsRoot(page))
		{
			UnlockReleaseBuffer(rbuf);
			continue;
		}
		off = fr_node_find_child(state, page, itup);
		part = fr_node_partition_start(page, off);
		fr_chain_append(index, rbuf, part, &itup, 1);
		over_budget = fr_node_buffer_pages(page) > fr_node_budget(state, page);
		UnlockReleaseBuffer(rbuf);
		if (over_budget)
			fr_maintain(state, root);
		return;
	}
}

/*
 * aminsert
 */
bool
fr_insert(Relation index, Datum *values, bool *isnull, ItemPointer ht_ctid,
		  Relation heapRel, IndexUniqueCheck checkUnique, bool indexUnchanged,
		  IndexInfo *indexInfo)
{
	FrInsertCache *cache = (FrInsertCache *) indexInfo->ii_AmCache;
	MemoryContext oldcxt;

	if (cache == NULL)
	{
		oldcxt = MemoryContextSwitchTo(indexInfo->ii_Context);
		cache = palloc0(sizeof(FrInsertCache));
		fr_init_state(&cache->state, index);
		cache->tmpcxt = AllocSetContextCreate(indexInfo->ii_Context,
											  "fractal insert",
											  ALLOCSET_DEFAULT_SIZES);
		indexInfo->ii_AmCache = cache;
		MemoryContextSwitchTo(oldcxt);
	}
	/* the relation pointer can change between statements sharing IndexInfo */
	cache->state.index = index;

	oldcxt = MemoryContextSwitchTo(cache->tmpcxt);
	fr_insert_tuple(&cache->state,
					fr_form_tuple(&cache->state, values, isnull, ht_ctid));
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(cache->tmpcxt);
	return false;
}
