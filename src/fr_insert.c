/*-------------------------------------------------------------------------
 *
 * fr_insert.c
 *	  aminsert of the fractal index: an insert appends one message to the
 *	  buffer chain of the root partition that covers its key and returns.
 *	  Only while the whole tree is a single leaf does an insert go straight
 *	  to the leaf, and sequential keys go straight to the rightmost leaf.
 *	  Flushing (fr_flush.c) is started here when the root goes over its
 *	  buffer budget; a full root leaf is split by fr_split.c.
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
	FrUnique	unique;			/* UNIQUE indexes: set up on first check */
	MemoryContext tmpcxt;
	bool		heap_checked;	/* heap_may_speculate is set */
	bool		heap_may_speculate; /* see fr_pending_applies */
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
 * Does the plain leaf on 'page' hold 'itup' (a retried insert)?  *pos gets
 * its place there either way.
 */
static bool
fr_leaf_holds(FrState *state, Page page, IndexTuple itup, OffsetNumber *pos)
{
	*pos = fr_leaf_search_last_first(state, page, itup);
	return *pos <= PageGetMaxOffsetNumber(page) &&
		fr_compare_tuples(state, (IndexTuple) PageGetItem(page, PageGetItemId(page, *pos)),
						  itup) == 0;
}

/* what fr_insert_rightmost did */
typedef enum FrRightmost
{
	FR_RIGHTMOST_DONE,			/* the entry is in the rightmost leaf */
	FR_RIGHTMOST_FULL,			/* the rightmost leaf has no room for it */
	FR_RIGHTMOST_NO				/* not the rightmost leaf's, or compressed */
} FrRightmost;

/*
 * The first of sorted msgs[lo..n) that routes to the last child of the
 * node on 'page' (n if none): those from it on all do.
 */
static int
fr_run_to_last_child(FrState *state, Page page, IndexTuple *msgs, int lo, int n)
{
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	IndexTuple	pivot;
	int			hi = n;

	/* (item 1's pivot is minus infinity: a lone child takes everything) */
	if (maxoff == FirstOffsetNumber)
		return lo;
	pivot = FrNodeItemGetPivot(fr_node_get_item(page, maxoff));
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (fr_compare_tuples(state, pivot, msgs[mid]) <= 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/*
 * Add the sorted msgs[0..n) that fit, in order, to the plain leaf in 'buf'
 * (exclusively locked) in one record, leaving out any the leaf holds
 * already (a retried insert).  Returns how many of msgs were dealt with, a
 * prefix: 0 when the first does not fit.
 */
static int
fr_leaf_add_run(FrState *state, Buffer buf, IndexTuple *msgs, int n)
{
	Page		page = BufferGetPage(buf);
	int			nold = PageGetMaxOffsetNumber(page);
	Size		avail = PageGetExactFreeSpace(page);
	IndexTuple *add = palloc(sizeof(IndexTuple) * n);
	OffsetNumber *offs = palloc(sizeof(OffsetNumber) * n);
	int			pos = 0,
				nadd = 0,
				j;

	/* keys past every entry (sequential inserts): one comparison */
	if (nold > 0 &&
		fr_compare_tuples(state, fr_page_entry(page, nold - 1), msgs[0]) < 0)
		pos = nold;
	for (j = 0; j < n; j++)
	{
		/* its place among the old entries; each is at or after the last */
		pos = fr_lower_bound_from(state, msgs[j], pos, nold, fr_page_entry, page);
		if (pos < nold &&
			fr_compare_tuples(state, fr_page_entry(page, pos), msgs[j]) == 0)
			continue;			/* held already */
		if (fr_item_space(msgs[j]) > avail)
			break;
		avail -= fr_item_space(msgs[j]);
		/* (the run's earlier entries, all before it, shift it by nadd) */
		offs[nadd] = (OffsetNumber) (pos + nadd + 1);
		add[nadd++] = msgs[j];
	}
	fr_page_add_items(state->index, buf, add, offs, nadd);
	fr_count(FR_CTR_RIGHTMOST_INSERTS, nadd);
	pfree(add);
	pfree(offs);
	return j;
}

/*
 * The sequential-insert fast path.  Entries are the only kind of message
 * and messages commute, so an entry may go straight into its leaf while
 * other messages for that leaf's range wait in ancestor buffers: readers
 * merge both, flushes skip what a leaf already holds.
 *
 * Called with the root node share-locked in 'rbuf' and sorted msgs[0..n)
 * all routing to its last child (one entry, or a batch's run from
 * fr_insert_batch); walks the right edge with share-lock coupling,
 * narrowing the run at each node to the entries that route to its last
 * child (a suffix), locks the rightmost leaf exclusively (no flush can
 * reach it: that needs its parent exclusively, which we hold shared) and
 * adds those that fit, when the leaf is plain, in one record.  On
 * FR_RIGHTMOST_DONE msgs[*first .. *first + *done) went in (or were there
 * already); on FR_RIGHTMOST_FULL msgs[*first] is the rightmost leaf's and
 * does not fit.  Releases rbuf in every case.
 */
static FrRightmost
fr_insert_rightmost_run(FrState *state, Buffer rbuf, IndexTuple *msgs, int n,
						int *first, int *done)
{
	Buffer		buf = rbuf;
	Page		page = BufferGetPage(buf);
	int			lo = 0;

	for (;;)
	{
		bool		leaf_next = FrPageGetOpaque(page)->level == 1;
		Buffer		cbuf;
		Page		cpage;

		/* the entries that go on down the right edge (at the root: all) */
		if (buf != rbuf)
			lo = fr_run_to_last_child(state, page, msgs, lo, n);
		if (lo == n)
			break;
		cbuf = fr_read_buffer(state->index,
							  fr_node_get_item(page, PageGetMaxOffsetNumber(page))->child,
							  leaf_next ? BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE);
		cpage = BufferGetPage(cbuf);
		if (leaf_next)
		{
			FrRightmost r = FR_RIGHTMOST_NO;

			if (FrPageIsLeaf(cpage) && !FrPageIsCompressed(cpage))
			{
				*first = lo;
				*done = fr_leaf_add_run(state, cbuf, msgs + lo, n - lo);
				r = (*done > 0) ? FR_RIGHTMOST_DONE : FR_RIGHTMOST_FULL;
			}
			else if (FrPageIsLeaf(cpage) &&
					 state->compression == FR_COMPRESSION_ZSTD &&
					 fr_leaf_past_end(state, cpage, BufferGetBlockNumber(cbuf),
									  msgs[lo]))
			{
				/*
				 * compressed, and the keys go past its end: full for appends
				 * (fr_split_rightmost moves it aside, fr_split.c)
				 */
				*first = lo;
				r = FR_RIGHTMOST_FULL;
			}
			UnlockReleaseBuffer(cbuf);
			UnlockReleaseBuffer(buf);
			return r;
		}
		UnlockReleaseBuffer(buf);
		buf = cbuf;
		page = cpage;
		if (!FrPageIsNode(page))
			break;
	}
	UnlockReleaseBuffer(buf);
	return FR_RIGHTMOST_NO;
}

/* fr_insert_rightmost_run for the single entry 'itup' */
static FrRightmost
fr_insert_rightmost(FrState *state, Buffer rbuf, IndexTuple itup)
{
	int			first,
				done;

	return fr_insert_rightmost_run(state, rbuf, &itup, 1, &first, &done);
}

/*
 * The whole tree is the leaf in 'rbuf' (share-locked, released here):
 * insert into it directly, or split it when full.  Returns false when the
 * caller must start over (the tree changed, or the leaf was split).
 */
static bool
fr_insert_root_leaf(FrState *state, Buffer rbuf, IndexTuple itup)
{
	Relation	index = state->index;
	Page		page = BufferGetPage(rbuf);
	OffsetNumber pos;

	LockBuffer(rbuf, BUFFER_LOCK_UNLOCK);
	LockBuffer(rbuf, BUFFER_LOCK_EXCLUSIVE);
	if (!FrPageIsRoot(page) || !FrPageIsLeaf(page))
	{
		UnlockReleaseBuffer(rbuf);
		return false;
	}
	if (FrPageIsCompressed(page))
		fr_report_corrupt(index, BufferGetBlockNumber(rbuf),
						  "the root leaf is compressed");
	if (PageGetFreeSpace(page) < MAXALIGN(IndexTupleSize(itup)))
	{
		UnlockReleaseBuffer(rbuf);
		fr_split_root_leaf(state, itup);
		return false;
	}
	pos = fr_leaf_search(state, page, itup);
	fr_page_add_items(index, rbuf, &itup, &pos, 1);
	UnlockReleaseBuffer(rbuf);
	return true;
}

/*
 * Count inserts that route to the root's last child; after a run of them,
 * try the rightmost leaf directly.  Returns true when the entry went there
 * (rbuf released); when the fast path was tried and failed, rbuf was
 * released too and *restart is set, and *full too when the leaf had no
 * room (the run then stays counted: the caller has the leaf split).
 */
static bool
fr_insert_try_rightmost(FrState *state, Buffer rbuf, OffsetNumber off,
						IndexTuple itup, bool *restart, bool *full)
{
	FrAmCache  *cache = fr_amcache(state->index);
	FrRightmost r;

	*restart = false;
	if (off != PageGetMaxOffsetNumber(BufferGetPage(rbuf)))
	{
		cache->rightmost_run = 0;
		return false;
	}
	if (cache->rightmost_run < FR_RIGHTMOST_RUN)
	{
		cache->rightmost_run++;
		return false;
	}
	r = fr_insert_rightmost(state, rbuf, itup);
	if (r == FR_RIGHTMOST_DONE)
		return true;
	/* (fr_insert_rightmost may have read catalogs: fetch the cache again) */
	if (r == FR_RIGHTMOST_FULL)
		*full = true;
	else
		fr_amcache(state->index)->rightmost_run = 0;
	*restart = true;
	return false;
}

/*
 * With compression on, move the rightmost leaf in 'lbuf' (child 'off' of
 * the level-1 node in 'nodebuf', both exclusively locked) aside for
 * 'itup': its entries into its left sibling, or else the leaf compressed
 * behind a new plain rightmost leaf holding 'itup' (fr_split.c), which
 * splits the partition when too wide.  Returns false, having changed
 * nothing, when neither applies.
 */
static bool
fr_rightmost_move_aside(FrState *state, Buffer nodebuf, OffsetNumber off,
						Buffer lbuf, IndexTuple itup)
{
	if (fr_leaf_spill_left(state, nodebuf, off, lbuf, itup))
		return true;
	if (!fr_leaf_close_right(state, nodebuf, off, lbuf, itup))
		return false;
	fr_partition_maybe_split(state, nodebuf,
							 fr_node_partition_start(BufferGetPage(nodebuf), off));
	return true;
}

/*
 * The rightmost leaf, child 'off' of the level-1 node in 'nodebuf' (both
 * exclusively locked), had no room for 'itup': rewrite it with 'itup'
 * merged in, splitting it (fill from the left for a key past its end), or
 * add 'itup' in place if it has room by now.  Returns false when the node
 * has no room for the new pivot.
 */
static bool
fr_rightmost_leaf_split(FrState *state, Buffer nodebuf, OffsetNumber off,
						Buffer lbuf, IndexTuple itup)
{
	Page		lpage = BufferGetPage(lbuf);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(lpage);
	OffsetNumber pos;
	IndexTuple *old;
	int			k;

	/*
	 * with compression on, keep appends going to a plain rightmost leaf: a
	 * compressed one, or a full plain one, moves aside (keys past its end)
	 */
	if (FrPageIsCompressed(lpage))
		return fr_rightmost_move_aside(state, nodebuf, off, lbuf, itup);

	/* already there (a retried insert), or room by now: in place */
	if (fr_leaf_holds(state, lpage, itup, &pos))
		return true;
	if (PageGetFreeSpace(lpage) >= MAXALIGN(IndexTupleSize(itup)))
	{
		fr_page_add_items(state->index, lbuf, &itup, &pos, 1);
		return true;
	}
	if (state->compression == FR_COMPRESSION_ZSTD &&
		fr_rightmost_move_aside(state, nodebuf, off, lbuf, itup))
		return true;
	old = palloc(sizeof(IndexTuple) * Max(maxoff, 1));
	for (k = 0; k < maxoff; k++)
		old[k] = CopyIndexTuple((IndexTuple) PageGetItem(lpage, PageGetItemId(lpage, k + 1)));
	if (fr_leaf_rewrite(state, nodebuf, off, lbuf, old, maxoff, &itup, 1) != 1)
		return false;

	/*
	 * The partition (whose chain is empty, see the caller) gained a leaf:
	 * split it when too wide, as a flush does after emptying it, so that
	 * the node keeps boundaries to split at
	 */
	fr_partition_maybe_split(state, nodebuf,
							 fr_node_partition_start(BufferGetPage(nodebuf), off));
	return true;
}

/*
 * The rightmost leaf had no room for 'itup' (fr_insert_rightmost): walk the
 * right edge again, this time taking the last level-1 node exclusively (as
 * a flush into the leaf does: share locks above it, the root exclusively
 * when it is that node), and split the leaf with 'itup' merged in.  Holds
 * the flush lock in share mode, as flushes do, so that VACUUM never sees
 * entries move.  Returns false, having done nothing, when the right edge is
 * no longer where 'itup' goes, the flush lock is taken, or the node has no
 * room for a pivot: the caller then queues the entry and pushes its path
 * down (fr_flush_toward), which splits nodes too.
 */
static bool
fr_split_rightmost(FrState *state, IndexTuple itup)
{
	Relation	index = state->index;
	uint32		height;
	Buffer		buf;
	bool		excl,
				done = false;
	MemoryContext cxt,
				oldcxt;

	(void) fr_get_root(index, &height, false);
	if (height == 0 || !fr_flush_lock(index, ShareLock, false))
		return false;
	fr_filter_prepare(index);	/* before any buffer lock */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "fractal rightmost split",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	/* down the right edge: share locks, the level-1 node exclusively */
	excl = (height == 1);
	buf = fr_lock_root(index, excl ? BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE);
	for (;;)
	{
		Page		page = BufferGetPage(buf);
		uint16		level = FrPageGetOpaque(page)->level;
		OffsetNumber off;
		Buffer		cbuf;

		if (!FrPageIsNode(page))
			break;
		off = fr_node_find_child_last_first(state, page, itup);
		if (off != PageGetMaxOffsetNumber(page))
			break;
		cbuf = fr_read_buffer(index, fr_node_get_item(page, off)->child,
							  level <= 2 ? BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE);
		if (level == 1)
		{
			/*
			 * Only while the leaf's partition queues nothing (else the push
			 * down flushes the partition first, and splits it if too wide);
			 * a stale cached height left the node share-locked: give up
			 */
			FrNodeItem	part = fr_node_get_item(page, fr_node_partition_start(page, off));

			if (excl && part->chain_tail == InvalidBlockNumber &&
				FrPageIsLeaf(BufferGetPage(cbuf)) &&
				(!FrPageIsCompressed(BufferGetPage(cbuf)) ||
				 state->compression == FR_COMPRESSION_ZSTD))
				done = fr_rightmost_leaf_split(state, buf, off, cbuf, itup);
			UnlockReleaseBuffer(cbuf);
			break;
		}
		UnlockReleaseBuffer(buf);
		buf = cbuf;
		excl = (level == 2);
	}
	UnlockReleaseBuffer(buf);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	fr_flush_unlock(index, ShareLock);
	return done;
}

/*
 * Append msgs[0..n) (sorted, all for the root partition starting at
 * 'pstart') to the tail page of its chain, as many as fit.  The root stays
 * share-locked.  Returns how many went in.
 */
static int
fr_insert_append_tail(FrState *state, Page rpage, OffsetNumber pstart,
					  IndexTuple *msgs, int n)
{
	FrNodeItem	pitem = fr_node_get_item(rpage, pstart);
	Buffer		tbuf;
	int			done;

	if (pitem->chain_tail == InvalidBlockNumber)
		return 0;
	tbuf = fr_read_chain_buffer(state->index, pitem->chain_tail,
								BUFFER_LOCK_EXCLUSIVE);
	done = fr_count_fitting(msgs, n, PageGetExactFreeSpace(BufferGetPage(tbuf)));
	fr_chain_tail_add(state, tbuf, msgs, done, NULL);
	UnlockReleaseBuffer(tbuf);
	return done;
}

/*
 * How many of sorted msgs[0..n) go, in the root node 'page', to the
 * partition of msgs[0]'s child (its start in *pstart)?  0 when msgs[0]
 * goes to the last child (or the tree is one leaf): that one takes the
 * per-entry path, with its rightmost-leaf shortcut.
 */
static int
fr_insert_group(FrState *state, Page page, IndexTuple *msgs, int n,
				OffsetNumber *pstart)
{
	OffsetNumber last = PageGetMaxOffsetNumber(page);
	OffsetNumber off;
	int			m = 1;

	if (!FrPageIsNode(page))
		return 0;
	off = fr_node_find_child(state, page, msgs[0]);
	if (off == last)
		return 0;
	*pstart = fr_node_partition_start(page, off);
	while (m < n)
	{
		off = fr_node_find_child(state, page, msgs[m]);
		if (off == last || fr_node_partition_start(page, off) != *pstart)
			break;
		m++;
	}
	return m;
}

/*
 * The tail page is full: relock the root in 'rbuf' exclusively, link new
 * chain pages holding the group of sorted msgs[0..n) that msgs[0] starts
 * (fr_insert_group), and flush when the root went over budget.  Releases
 * rbuf.  Returns how many entries went in: 0 when the root changed (start
 * over).
 */
static int
fr_insert_new_page(FrState *state, Buffer rbuf, IndexTuple *msgs, int n)
{
	Page		page = BufferGetPage(rbuf);
	BlockNumber root = BufferGetBlockNumber(rbuf);
	OffsetNumber pstart = InvalidOffsetNumber;
	bool		over_budget;
	int			m;

	LockBuffer(rbuf, BUFFER_LOCK_UNLOCK);
	LockBuffer(rbuf, BUFFER_LOCK_EXCLUSIVE);
	if (!FrPageIsRoot(page) || !FrPageIsNode(page))
	{
		UnlockReleaseBuffer(rbuf);
		return 0;
	}
	/* one entry may go to the last child: it was meant to be queued */
	m = fr_insert_group(state, page, msgs, n, &pstart);
	if (m == 0)
	{
		m = 1;
		pstart = fr_node_partition_start(page, fr_node_find_child(state, page, msgs[0]));
	}
	fr_chain_append(state, rbuf, pstart, msgs, m, true);
	over_budget = fr_node_over_budget(state, page);
	UnlockReleaseBuffer(rbuf);
	if (over_budget)
		fr_maintain(state, root);
	return m;
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
	bool		leaf_full = false;	/* the rightmost leaf had no room */

	for (;;)
	{
		Buffer		rbuf;
		Page		page;
		OffsetNumber off;
		bool		restart;
		bool		queued;

		/* lock the root (the cached metapage may be stale) */
		CHECK_FOR_INTERRUPTS();
		rbuf = fr_lock_root(state->index, BUFFER_LOCK_SHARE);
		page = BufferGetPage(rbuf);

		/* a one-leaf tree takes the entry directly */
		if (FrPageIsLeaf(page))
		{
			if (fr_insert_root_leaf(state, rbuf, itup))
				return;
			continue;
		}

		/*
		 * sequential keys: the rightmost leaf directly (not again once
		 * full); while keys keep routing to the last child, test that first
		 */
		off = fr_amcache(state->index)->rightmost_run > 0 ?
			fr_node_find_child_last_first(state, page, itup) :
			fr_node_find_child(state, page, itup);
		if (!leaf_full)
		{
			if (fr_insert_try_rightmost(state, rbuf, off, itup, &restart, &leaf_full))
				return;
			/* full: split it with the entry merged in, as a flush would */
			if (leaf_full && fr_split_rightmost(state, itup))
				return;
			if (restart)
				continue;		/* rbuf was released */
		}
		else if (off != PageGetMaxOffsetNumber(page))
			leaf_full = false;	/* the tree changed meanwhile: no push */

		/* buffered: the partition's tail page, or a new chain page */
		queued = fr_insert_append_tail(state, page,
									   fr_node_partition_start(page, off),
									   &itup, 1) == 1;
		if (queued)
			UnlockReleaseBuffer(rbuf);
		else
			queued = fr_insert_new_page(state, rbuf, &itup, 1) == 1;
		if (!queued)
			continue;

		/*
		 * The rightmost leaf was full and could not be split directly: push
		 * what queues for it (this entry included) into it now, splitting
		 * it, so the next sequential keys find room there instead of
		 * queueing too
		 */
		if (leaf_full)
			fr_flush_toward(state, itup);
		return;
	}
}

/*
 * Sorted msgs[0..n) all route to the root's last child, and inserts have
 * been going to the rightmost leaf (rbuf: the root, share-locked; released
 * here): add those of them that go to the rightmost leaf there at once
 * (fr_insert_rightmost_run), or, when it is full, the first of them by
 * fr_insert_tuple, which splits it; when none goes there, msgs[0] by
 * fr_insert_tuple.  The entries dealt with are removed from msgs (the
 * others keep their order); returns how many.
 */
static int
fr_insert_batch_rightmost(FrState *state, Buffer rbuf, IndexTuple *msgs, int n)
{
	int			first = 0,
				done = 1;

	switch (fr_insert_rightmost_run(state, rbuf, msgs, n, &first, &done))
	{
		case FR_RIGHTMOST_DONE:
			break;
		case FR_RIGHTMOST_FULL:
			done = 1;
			fr_insert_tuple(state, msgs[first]);
			break;
		case FR_RIGHTMOST_NO:
			/* as fr_insert_try_rightmost: the run is over */
			fr_amcache(state->index)->rightmost_run = 0;
			first = 0;
			done = 1;
			fr_insert_tuple(state, msgs[0]);
			break;
	}
	memmove(msgs + first, msgs + first + done,
			sizeof(IndexTuple) * (n - first - done));
	return done;
}

/*
 * Insert sorted entries msgs[0..n) (fr_pending.c's batches): each run of
 * them that goes to one root partition is appended to its chain with one
 * record per chain page, under one root lock.  Entries for the root's last
 * child go to the rightmost leaf together in one record while inserts have
 * been going there (sequential keys), else, like all of them while the
 * tree is one leaf, take fr_insert_tuple.
 */
void
fr_insert_batch(FrState *state, IndexTuple *msgs, int n)
{
	int			i = 0;

	while (i < n)
	{
		Buffer		rbuf;
		Page		page;
		OffsetNumber pstart = InvalidOffsetNumber;
		int			m,
					done;

		CHECK_FOR_INTERRUPTS();
		rbuf = fr_lock_root(state->index, BUFFER_LOCK_SHARE);
		page = BufferGetPage(rbuf);

		/* the run of entries that goes to msgs[i]'s partition */
		m = fr_insert_group(state, page, msgs + i, n - i, &pstart);
		if (m == 0 && FrPageIsNode(page) &&
			fr_amcache(state->index)->rightmost_run >= FR_RIGHTMOST_RUN)
		{
			/* the rest goes to the last child: sequential keys, at once */
			n -= fr_insert_batch_rightmost(state, rbuf, msgs + i, n - i);
			continue;
		}
		if (m == 0)
		{
			UnlockReleaseBuffer(rbuf);
			fr_insert_tuple(state, msgs[i++]);
			continue;
		}
		/* as fr_insert_try_rightmost would count them: not rightmost */
		fr_amcache(state->index)->rightmost_run = 0;

		/* the tail page takes what fits; new chain pages the rest */
		done = fr_insert_append_tail(state, page, pstart, msgs + i, m);
		i += done;
		if (done == m)
			UnlockReleaseBuffer(rbuf);
		else
			i += fr_insert_new_page(state, rbuf, msgs + i, m - done);
	}
}

/*
 * aminsert.  With checkUnique (a UNIQUE index), the key is checked and
 * inserted under its key lock (fr_unique.c); the result is false only for
 * UNIQUE_CHECK_PARTIAL when a conflict is possible.
 */
bool
frinsert(Relation index, Datum *values, bool *isnull, ItemPointer ht_ctid,
		  Relation heapRel, IndexUniqueCheck checkUnique, bool indexUnchanged,
		  IndexInfo *indexInfo)
{
	FrInsertCache *cache = (FrInsertCache *) indexInfo->ii_AmCache;
	MemoryContext oldcxt;
	IndexTuple	itup;
	bool		unique = true;

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
	fr_filter_prepare(index);	/* before any buffer lock */

	if (index->rd_index->indisunique && !cache->unique.ready)
	{
		oldcxt = MemoryContextSwitchTo(indexInfo->ii_Context);
		fr_unique_init(&cache->unique, index);
		MemoryContextSwitchTo(oldcxt);
	}

	oldcxt = MemoryContextSwitchTo(cache->tmpcxt);
	itup = fr_form_tuple(&cache->state, values, isnull, ht_ctid);
	/* every insert into a UNIQUE index takes the key lock (fr_unique.c) */
	if (index->rd_index->indisunique && fr_unique_applies(&cache->state, itup))
		unique = fr_unique_insert(&cache->unique, &cache->state, heapRel, itup,
								  checkUnique);
	else if (checkUnique == UNIQUE_CHECK_EXISTING)
		;
	else if (fr_pending_applies(index, checkUnique, heapRel, ht_ctid,
								&cache->heap_checked,
								&cache->heap_may_speculate) &&
			 fr_pending_add(index, itup))
		;						/* batched: appended later (fr_pending.c) */
	else
		fr_insert_tuple(&cache->state, itup);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(cache->tmpcxt);
	return unique;
}
