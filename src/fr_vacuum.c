/*-------------------------------------------------------------------------
 *
 * fr_vacuum.c
 *	  VACUUM support of the fractal index.
 *
 * ambulkdelete holds the flush lock exclusively for its whole scan, so no
 * other backend can move an entry from a page it has not scanned yet to one
 * it has; inserts keep appending to buffer chains meanwhile (their TIDs are
 * new, never in the dead set), and bulk delete itself flushes the root when
 * they push it over budget, dropping dead entries from everything it moves.
 * It visits every page in physical order and removes dead TIDs from leaves
 * and from every buffer page alike.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/rel.h"

#include "fractal.h"

/*
 * Remove dead entries from the compressed leaf in 'buf' (exclusively
 * locked) by rewriting it with the survivors.  Returns the entries left.
 * A subset of a page's entries practically always compresses into the page
 * again (pages are written 5% below full); should it not, with the
 * compression option since set to none or not, stronger zstd levels are
 * tried before giving up with an ERROR, which leaves the heap's dead
 * tuples in place for a later VACUUM (never a lost or wrong entry).
 */
static int
fr_vacuum_compressed_leaf(FrState *state, Buffer buf, BlockNumber blkno,
						  IndexBulkDeleteResult *stats)
{
	Relation	index = state->index;
	Page		page = BufferGetPage(buf);
	FrLeafView	view;
	IndexTuple *keep;
	int			nkeep = 0,
				i;
	static const int levels[] = {0, 9, FR_MAX_COMPRESSION_LEVEL};

	fr_leaf_view(index, page, blkno, &view);
	keep = palloc(sizeof(IndexTuple) * Max(view.n, 1));
	for (i = 0; i < view.n; i++)
		if (!state->vac_callback(&view.items[i]->t_tid, state->vac_callback_state))
			keep[nkeep++] = view.items[i];
	if (nkeep < view.n)
	{
		FrState		zstate = *state;
		int			attempt;

		for (attempt = 0; attempt < lengthof(levels); attempt++)
		{
			GenericXLogState *xs = GenericXLogStart(index);
			Page		p = fr_generic_register_whole(xs, buf);
			uint16		flags = FrPageGetOpaque(page)->flags & ~FR_COMPRESSED;

			if (attempt > 0)
			{
				zstate.compression = FR_COMPRESSION_ZSTD;
				zstate.compression_level = Max(levels[attempt], state->compression_level);
			}
			fr_init_page(p, flags, 0);
			if (fr_leaf_fill(&zstate, p, keep, nkeep, true))
			{
				fr_generic_finish(xs);
				break;
			}
			fr_generic_abort(xs);
			if (attempt == lengthof(levels) - 1)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("entries left in compressed leaf %u of index \"%s\" no longer fit in a page",
								blkno, RelationGetRelationName(index)),
						 errhint("REINDEX the index.")));
		}
		stats->tuples_removed += view.n - nkeep;
	}
	pfree(keep);
	fr_leaf_view_release(&view);
	return nkeep;
}

/*
 * Remove dead entries from the plain leaf or buffer page in 'buf'
 * (exclusively locked).  Returns the entries left.
 */
static int
fr_vacuum_plain_page(FrState *state, Buffer buf, IndexBulkDeleteResult *stats)
{
	Page		page = BufferGetPage(buf);
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page);
	OffsetNumber *dead = palloc(sizeof(OffsetNumber) * Max(maxoff, 1));
	int			ndead = 0;

	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		IndexTuple	it = (IndexTuple) PageGetItem(page, PageGetItemId(page, off));

		if (state->vac_callback(&it->t_tid, state->vac_callback_state))
			dead[ndead++] = off;
	}
	if (ndead > 0)
	{
		GenericXLogState *xs = GenericXLogStart(state->index);

		PageIndexMultiDelete(GenericXLogRegisterBuffer(xs, buf, 0), dead, ndead);
		fr_generic_finish(xs);
		stats->tuples_removed += ndead;
	}
	pfree(dead);
	return maxoff - ndead;
}

/*
 * The relation's size.  Taken under the relation extension lock, as
 * nbtree's btvacuumscan does: a backend extending the index holds that
 * lock until it has the new page exclusively locked, so every page below
 * the size we see is either initialised or locked by its creator (and we
 * wait for it), never a new page we might wrongly record as free.
 */
static BlockNumber
fr_vacuum_nblocks(Relation index)
{
	bool		needLock = !RELATION_IS_LOCAL(index);
	BlockNumber nblocks;

	if (needLock)
		LockRelationForExtension(index, ExclusiveLock);
	nblocks = RelationGetNumberOfBlocks(index);
	if (needLock)
		UnlockRelationForExtension(index, ExclusiveLock);
	return nblocks;
}

/*
 * Flush the root on behalf of the inserts, if it went over budget while
 * bulk delete holds the flush lock (inserts skip flushing meanwhile).  The
 * flush runs with state->vac_callback set, so every entry it moves is
 * checked and dead ones are dropped on the way: an entry moved from a page
 * not yet scanned into one already scanned is clean, which is what the
 * physical scan's argument needs (src/README.md section 8).
 */
static void
fr_vacuum_flush_backlog(FrState *state, bool *flushed)
{
	Buffer		buf = fr_lock_root(state->index, BUFFER_LOCK_SHARE);
	BlockNumber root = BufferGetBlockNumber(buf);
	Page		page = BufferGetPage(buf);
	bool		over = FrPageIsNode(page) && fr_node_over_budget(state, page);

	UnlockReleaseBuffer(buf);
	if (over)
	{
		fr_maintain(state, root);
		*flushed = true;
	}
}

/*
 * Vacuum one page (exclusively locked in 'buf'): record a free page in
 * the FSM, or delete the dead entries of a leaf or buffer page, noting a
 * leaf left empty in *empty_leaves.
 */
static void
fr_vacuum_page(FrState *state, Buffer buf, BlockNumber blkno,
			   IndexBulkDeleteResult *stats, Bitmapset **empty_leaves)
{
	Page		page = BufferGetPage(buf);
	int			left = 0;

	if (PageIsNew(page) || FrPageIsFree(page))
	{
		/* never initialised (crash during extension) or recycled */
		if (!PageIsNew(page))
			fr_check_page(state->index, page, blkno);
		RecordFreeIndexPage(state->index, blkno);
		stats->pages_free++;
		stats->pages_deleted++;
		return;
	}
	fr_check_page(state->index, page, blkno);
	stats->num_pages++;
	if (FrPageIsLeaf(page) && FrPageIsCompressed(page))
		left = fr_vacuum_compressed_leaf(state, buf, blkno, stats);
	else if (FrPageIsLeaf(page) || FrPageIsChain(page))
		left = fr_vacuum_plain_page(state, buf, stats);
	else
		return;
	stats->num_index_tuples += left;
	if (FrPageIsLeaf(page) && !FrPageIsRoot(page) && left == 0)
		*empty_leaves = bms_add_member(*empty_leaves, (int) blkno);
}

/* blocks between two looks at the root's buffers during bulk delete */
#define FR_VACUUM_FLUSH_EVERY	16

/*
 * Pass 1 of bulk delete: visit every page in physical order and delete the
 * entries the callback reports dead.  Fills the whole-index fields of
 * 'stats' and adds to tuples_removed.
 */
static void
fr_vacuum_scan(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   FrState *state, Bitmapset **empty_leaves)
{
	Relation	index = info->index;
	BlockNumber blkno = FR_META_BLKNO + 1;
	BlockNumber nblocks;
	bool		flushed = false;

	stats->num_pages = 0;
	stats->num_index_tuples = 0;
	stats->pages_deleted = 0;
	stats->pages_free = 0;

	/* until the relation stops growing */
	while (blkno < (nblocks = fr_vacuum_nblocks(index)))
	{
		for (; blkno < nblocks; blkno++)
		{
			Buffer		buf;

			vacuum_delay_point();
			if (blkno % FR_VACUUM_FLUSH_EVERY == 0)
				fr_vacuum_flush_backlog(state, &flushed);
			buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
									 info->strategy);
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			fr_vacuum_page(state, buf, blkno, stats, empty_leaves);
			UnlockReleaseBuffer(buf);
		}
	}
	stats->num_pages += 1;		/* the metapage */
	stats->num_pages += stats->pages_free;
	/* entries moved by our flushes may be counted twice or not at all */
	stats->estimated_count = flushed;
	stats->tuples_removed += state->vac_removed;
	IndexFreeSpaceMapVacuum(index);
}

/*
 * Unlink the empty leaves of the level-1 node in 'buf' (held exclusively)
 * that pass 1 found, freeing their pages.  A leaf's key range is merged
 * into a neighbour inside the same partition, so every buffered message
 * stays within its partition's range:
 *
 *	- a leaf that does not start its partition is removed with its pivot;
 *	  its left neighbour's range grows over it;
 *	- a leaf that starts its partition takes over its right neighbour's
 *	  page (same partition) and that neighbour's item is removed;
 *	- a partition's only leaf is removed only when the partition's chain is
 *	  empty and it is not the node's first item (its range then joins the
 *	  previous partition).
 *
 * Each removal is one record: node + freed leaf.  No scan can reach the
 * leaf afterwards (every descent goes through this node), and no flush or
 * split runs, since bulk delete holds the flush lock exclusively.
 */
static void
fr_vacuum_unlink_leaves(Relation index, Buffer buf, Bitmapset *empty,
						IndexBulkDeleteResult *stats)
{
	Page		page = BufferGetPage(buf);
	OffsetNumber off = FirstOffsetNumber;

	while (off <= PageGetMaxOffsetNumber(page) && PageGetMaxOffsetNumber(page) > 1)
	{
		FrNodeItem	item = fr_node_get_item(page, off);
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
		bool		partstart = (item->flags & FR_ITEM_PART_START) != 0;
		bool		next_same = off < maxoff &&
			!(fr_node_get_item(page, off + 1)->flags & FR_ITEM_PART_START);
		BlockNumber leafblk = item->child;
		BlockNumber fblk = 0;
		Buffer		lbuf,
					fbuf = InvalidBuffer;
		GenericXLogState *xs;
		Page		np;

		/*
		 * A partition whose chain VACUUM emptied of every message gives its
		 * chain pages back, so that its last empty leaf can go too.
		 */
		if (partstart && !next_same && item->chain_tail != InvalidBlockNumber &&
			bms_is_member((int) leafblk, empty))
		{
			BlockNumber *blocks;
			int			nblocks,
						nmsgs;

			(void) fr_read_chain(index, item, &nmsgs, &blocks, &nblocks, NULL);
			if (nmsgs == 0)
			{
				fr_chain_release(index, buf, off, blocks, nblocks);
				stats->pages_newly_deleted += nblocks;
				stats->pages_deleted += nblocks;
				stats->pages_free += nblocks;
				item = fr_node_get_item(page, off);
			}
		}

		if (!bms_is_member((int) leafblk, empty) ||
			(partstart && !next_same &&
			 (off == FirstOffsetNumber || item->chain_tail != InvalidBlockNumber)))
		{
			off++;
			continue;
		}
		lbuf = fr_read_buffer(index, leafblk, BUFFER_LOCK_EXCLUSIVE);
		if (!FrPageIsLeaf(BufferGetPage(lbuf)) ||
			PageGetMaxOffsetNumber(BufferGetPage(lbuf)) != 0)
		{
			UnlockReleaseBuffer(lbuf);
			off++;
			continue;
		}
		xs = GenericXLogStart(index);
		np = GenericXLogRegisterBuffer(xs, buf, 0);
		if (partstart && next_same)
		{
			/* take over the right neighbour's page, drop its item */
			fr_node_get_item(np, off)->child = fr_node_get_item(np, off + 1)->child;
			PageIndexTupleDelete(np, off + 1);
		}
		else
		{
			/* a partition's only leaf: its leaf filter page goes too */
			if (partstart && FrItemGetFilter(item) != 0)
			{
				fblk = FrItemGetFilter(item);
				fbuf = fr_lfilter_read(index, fblk, BUFFER_LOCK_EXCLUSIVE);
				fr_free_page_in_place(GenericXLogRegisterBuffer(xs, fbuf, 0));
			}
			PageIndexTupleDelete(np, off);
		}
		fr_free_page_in_place(GenericXLogRegisterBuffer(xs, lbuf, 0));
		fr_generic_finish(xs);
		UnlockReleaseBuffer(lbuf);
		fr_record_free_page(index, leafblk);
		if (BufferIsValid(fbuf))
		{
			UnlockReleaseBuffer(fbuf);
			fr_record_free_page(index, fblk);
			stats->pages_newly_deleted++;
			stats->pages_deleted++;
			stats->pages_free++;
		}
		stats->pages_newly_deleted++;
		stats->pages_deleted++;
		stats->pages_free++;
		/* stay at 'off': it now holds the next candidate */
	}
}

/*
 * Pass 2 of bulk delete: walk the internal levels top-down (share locks
 * above level 1, the level-1 node exclusively) and unlink the empty
 * leaves.
 */
static void
fr_vacuum_pass2(Relation index, BlockNumber blkno, Bitmapset *empty,
				IndexBulkDeleteResult *stats)
{
	Buffer		buf;
	Page		page;

	CHECK_FOR_INTERRUPTS();
	check_stack_depth();
	buf = fr_read_buffer(index, blkno, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (!FrPageIsNode(page))
	{
		UnlockReleaseBuffer(buf);
		return;
	}
	if (FrPageGetOpaque(page)->level == 1)
	{
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		fr_vacuum_unlink_leaves(index, buf, empty, stats);
		UnlockReleaseBuffer(buf);
	}
	else
	{
		OffsetNumber off,
					maxoff = PageGetMaxOffsetNumber(page);
		BlockNumber *children = palloc(sizeof(BlockNumber) * maxoff);
		int			n = 0,
					i;

		for (off = FirstOffsetNumber; off <= maxoff; off++)
			children[n++] = fr_node_get_item(page, off)->child;
		UnlockReleaseBuffer(buf);
		for (i = 0; i < n; i++)
			fr_vacuum_pass2(index, children[i], empty, stats);
		pfree(children);
	}
}

IndexBulkDeleteResult *
frbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			 IndexBulkDeleteCallback callback, void *callback_state)
{
	Bitmapset  *empty = NULL;
	FrState		state;

	if (stats == NULL)
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
	fr_init_state(&state, info->index);
	state.vac_callback = callback;
	state.vac_callback_state = callback_state;

	/*
	 * the scan lock (no index-only scan returns entries unchecked while
	 * entries are removed), then the flush lock; on ERROR, transaction
	 * abort releases both
	 */
	fr_scan_lock(info->index, ExclusiveLock, true);
	fr_flush_lock(info->index, ExclusiveLock, true);
	fr_filter_prepare(info->index); /* before any buffer lock */
	fr_vacuum_scan(info, stats, &state, &empty);
	if (empty != NULL)
	{
		fr_vacuum_pass2(info->index, fr_get_root(info->index, NULL, true),
						empty, stats);
		IndexFreeSpaceMapVacuum(info->index);
	}
	fr_flush_unlock(info->index, ExclusiveLock);
	fr_scan_unlock(info->index, ExclusiveLock);
	return stats;
}

/*
 * amvacuumcleanup.  After a bulk delete the statistics are exact (the scan
 * counted every leaf entry and buffered message).  When VACUUM deleted
 * nothing, no scan is made: the page count is the relation size and the
 * entry count the heap's, flagged as estimates, so cleanup stays cheap.
 */
IndexBulkDeleteResult *
frvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	if (info->analyze_only)
		return stats;
	if (stats == NULL)
	{
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
		stats->num_pages = RelationGetNumberOfBlocks(info->index);
		stats->num_index_tuples = info->num_heap_tuples;
		stats->estimated_count = true;
		return stats;
	}
	/* a duplicate left by an interrupted flush is counted twice; clamp */
	if (!info->estimated_count &&
		stats->num_index_tuples > info->num_heap_tuples)
		stats->num_index_tuples = info->num_heap_tuples;
	return stats;
}
