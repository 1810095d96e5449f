/*-------------------------------------------------------------------------
 *
 * fr_rootflush.c
 *	  Flushing the root while inserts go on: the root held in share mode.
 *
 * Every insert appends to a root chain holding the root share-locked, and
 * a flush of any node holds that node exclusively while it copies a
 * partition's messages into the children (fr_flush.c).  At the root that
 * stops every insert into the index for the whole flush: in memory with
 * many single-row transactions, backends queued on the root a few percent
 * of the time, and the core the flusher did not use sat idle.
 *
 * So an in-memory root (fr_index_large false; its children are nodes, the
 * root is at level 2 or more) is flushed in three steps:
 *
 * 1. seal (root exclusive, short): pick the fullest partition; unless its
 *    tail page is empty and starts its filter segment, link an empty page
 *    in front of it that starts its own (fr_chain_seal_tail).  Inserts only
 *    ever append to a chain's tail, so from now on the pages behind this
 *    sealing page change only by flushes.
 * 2. copy (root share): find the sealing page again (fr_chain_find_seal:
 *    pages may have been linked in front of it, or items moved, while the
 *    root was released), read the pages behind it, sort, apply them to the
 *    children exactly as an exclusive flush would (child exclusive, logged
 *    as moves), then empty those pages in place (fr_chain_empty_pages).
 *    Inserts keep appending to the tail, lookups keep descending.
 *    Children short of room are not split here (that needs the root
 *    exclusively): they take the messages and are split afterwards
 *    (FrFlushResult.parent_shared).
 * 3. cut (root exclusive, short): free the emptied pages behind the sealing
 *    page (fr_chain_cut_behind; the first of them stays while pages in
 *    front of the sealing page may skip to it), split the partition if its
 *    chain is empty and it is too wide (flush it the exclusive way first
 *    when inserts refilled it), and ask for the root's split when it is
 *    short of room.
 *
 * Why nothing is lost or duplicated (src/README.md, sections 4 and 7):
 * while step 2 holds the root share-locked, no one can free, cut or flush
 * the root's chains (that needs the root exclusively), VACUUM cannot run
 * (it holds the flush lock exclusively, we hold it shared), and inserts
 * touch only tails; so the pages behind the sealing page (at or behind the
 * tail) are exactly what step 2 read.  Messages are copied into the children before they leave the
 * root's pages, so a lookup reads each at least once: it reads the root's
 * chain pages before it locks the child, and a page it finds emptied was
 * emptied after the copy had reached the child.  A message read in both
 * places is one (key, TID) pair twice, which scans drop.  A crash between
 * the steps leaves copies in both places, or empty pages in a chain; both
 * are valid states that the next flush of the partition cleans up (an
 * exclusive flush frees empty pages like any other, step 3 frees only
 * pages without messages, and keeps every page a filter may skip to).  One backend at a time runs the steps for an
 * index (the root flush lock); others go on inserting unless the root is
 * far over its budget, then they wait for it (the bound on root buffers).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/rel.h"

#include "fractal.h"

/* over this many times its budget, inserts wait for the root's flusher */
#define FR_ROOT_FLUSH_WAIT_FACTOR	2

/* what step 1 found */
typedef enum FrSeal
{
	FR_SEAL_NO,					/* not a root of level >= 2, or nothing
								 * behind the fullest partition's tail:
								 * flush it the exclusive way */
	FR_SEAL_DONE,				/* within budget, or nothing to flush */
	FR_SEAL_SEALED				/* a partition with pages behind its tail */
} FrSeal;

/*
 * Step 1: lock the root at 'blkno' exclusively, and when it is over budget
 * seal its fullest partition (*part): *seal gets the page that now ends it
 * (empty, starting its filter segment), behind which steps 2 and 3 work.
 */
static FrSeal
fr_root_seal(FrState *state, BlockNumber blkno, OffsetNumber *part,
			 BlockNumber *seal)
{
	Buffer		buf = fr_read_buffer(state->index, blkno, BUFFER_LOCK_EXCLUSIVE);
	Page		page = BufferGetPage(buf);
	FrSeal		res = FR_SEAL_DONE;

	if (!FrPageIsNode(page) || !FrPageIsRoot(page) ||
		FrPageGetOpaque(page)->level < 2)
		res = FR_SEAL_NO;
	else if (fr_node_over_budget(state, page))
	{
		/*
		 * a fullest partition of one empty page has nothing to copy: the
		 * exclusive flush frees such pages
		 */
		*part = fr_fullest_partition(page);
		if (*part == InvalidOffsetNumber)
			res = FR_SEAL_DONE;
		else if (fr_chain_seal_tail(state, buf, *part))
		{
			*seal = fr_node_get_item(page, *part)->chain_tail;
			res = FR_SEAL_SEALED;
		}
		else
			res = FR_SEAL_NO;
	}
	UnlockReleaseBuffer(buf);
	return res;
}

/*
 * The partition of the node on 'page' (locked) whose chain holds 'seal' as
 * the start of a filter segment, trying 'part' first (another backend may
 * have moved items since: a split, an exclusive flush); *pos and *behind as
 * fr_chain_find_seal.  InvalidOffsetNumber when there is none.
 */
static OffsetNumber
fr_root_find_seal(Relation index, Page page, OffsetNumber part,
				  BlockNumber seal, int *pos, BlockNumber *behind)
{
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page);

	if (part <= maxoff &&
		(fr_node_get_item(page, part)->flags & FR_ITEM_PART_START) &&
		(*pos = fr_chain_find_seal(index, fr_node_get_item(page, part),
								   seal, behind)) > 0)
		return part;
	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		FrNodeItem	item = fr_node_get_item(page, off);

		if (off != part && (item->flags & FR_ITEM_PART_START) &&
			item->chain_tail != InvalidBlockNumber &&
			(*pos = fr_chain_find_seal(index, item, seal, behind)) > 0)
			return off;
	}
	return InvalidOffsetNumber;
}

/*
 * Step 2: with the node at 'blkno' share-locked, apply the messages of the
 * pages behind 'seal' in its partition to the children, then empty those
 * pages.  Children pushed over budget go to *todo, children short of room
 * to *splits.
 */
static void
fr_root_copy(FrState *state, BlockNumber blkno, OffsetNumber part,
			 BlockNumber seal, List **todo, List **splits)
{
	Relation	index = state->index;
	Buffer		buf = fr_read_buffer(index, blkno, BUFFER_LOCK_SHARE);
	Page		page = BufferGetPage(buf);
	FrFlushResult res = {NIL, false, true, NIL};
	FrNodeItemData behind;
	FrMoveMap	moves;
	BlockNumber *blocks;
	IndexTuple *msgs;
	int			pos = 0,
				nblocks,
				nmsgs;

	/*
	 * the pages behind 'seal', which no insert touches (they are behind the
	 * tail); the node may have changed between the steps: then nothing
	 */
	memset(&behind, 0, sizeof(behind));
	if (!FrPageIsNode(page) || FrPageGetOpaque(page)->level < 2 ||
		(part = fr_root_find_seal(index, page, part, seal, &pos,
								  &behind.chain_tail)) == InvalidOffsetNumber ||
		behind.chain_tail == InvalidBlockNumber)
	{
		UnlockReleaseBuffer(buf);
		return;
	}
	behind.chain_pages = fr_node_get_item(page, part)->chain_pages - pos;

	/* read, sort and dedup them, noting sources for moves (fr_flush.c) */
	memset(&moves, 0, sizeof(moves));
	msgs = fr_read_chain(index, &behind, &nmsgs, &blocks, &nblocks,
						 (!fr_custom_wal || !RelationNeedsWAL(index)) ?
						 NULL : &moves);
	fr_sort_entries(state, msgs, nmsgs);
	nmsgs = fr_dedup_sorted(state, msgs, nmsgs);
	fr_count(FR_CTR_FLUSHES, 1);
	fr_count(FR_CTR_FLUSHED_MESSAGES, nmsgs);
	fr_count(FR_CTR_ROOT_SHARED_FLUSHES, 1);

	/* copy into the children, then empty the pages */
	state->moves = (moves.n > 0) ? &moves : NULL;
	PG_TRY();
	{
		if (fr_flush_apply(state, buf, msgs, nmsgs, &res) != nmsgs)
			elog(ERROR, "fractal root flush applied only part of its messages");
	}
	PG_FINALLY();
	{
		state->moves = NULL;
	}
	PG_END_TRY();
	fr_chain_empty_pages(index, blocks, nblocks);
	UnlockReleaseBuffer(buf);
	*todo = list_concat(*todo, res.overfull);
	*splits = list_concat(*splits, res.splits);
}

/*
 * Step 3: with the node at 'blkno' exclusively locked, free the emptied
 * pages behind 'seal' (fr_chain_cut_behind), and ask for the node's split
 * when it is short of room.  A partition may split only with an empty
 * chain, and inserts refilled this one meanwhile: when it has grown too
 * wide, it is flushed here the exclusive way (the few messages that came
 * in during step 2), which splits it.
 */
static void
fr_root_cut(FrState *state, BlockNumber blkno, OffsetNumber part,
			BlockNumber seal, List **todo, List **splits)
{
	Buffer		buf = fr_read_buffer(state->index, blkno, BUFFER_LOCK_EXCLUSIVE);
	Page		page = BufferGetPage(buf);
	BlockNumber behind;
	int			pos;

	if (FrPageIsNode(page) &&
		(part = fr_root_find_seal(state->index, page, part, seal, &pos,
								  &behind)) != InvalidOffsetNumber)
	{
		if (fr_chain_cut_behind(state->index, buf, part, seal))
			fr_partition_maybe_split(state, buf, part);
		else if (fr_partition_too_wide(state, page, part))
		{
			FrFlushResult res = {NIL, false, false, NIL};

			fr_flush_partition(state, buf, part, &res);
			*todo = list_concat(*todo, res.overfull);
		}
	}
	if (FrPageIsNode(page) && PageGetExactFreeSpace(page) < FR_NODE_SPLIT_FREE)
	{
		FrSplitRequest *req = fr_split_request(page);

		if (req)
			*splits = lappend(*splits, req);
	}
	UnlockReleaseBuffer(buf);
}

/* is the node at 'blkno' more than FR_ROOT_FLUSH_WAIT_FACTOR over budget? */
static bool
fr_root_far_over_budget(FrState *state, BlockNumber blkno)
{
	Buffer		buf = fr_read_buffer(state->index, blkno, BUFFER_LOCK_SHARE);
	Page		page = BufferGetPage(buf);
	bool		far;

	far = FrPageIsNode(page) &&
		fr_node_buffer_pages(page) >
		FR_ROOT_FLUSH_WAIT_FACTOR * fr_node_budget(state, page);
	UnlockReleaseBuffer(buf);
	return far;
}

/*
 * Flush the root at 'blkno' (the caller holds the flush lock, no buffer
 * lock) in the three steps above while it is over budget, at most four
 * partitions.  Returns false when the root is not one this applies to (a
 * leaf or level-1 root, or no longer the root) or its fullest partition
 * has nothing behind its tail: the caller then flushes it the exclusive
 * way.  Children pushed over budget go to *todo, nodes
 * short of room to *splits, as fr_flush_node would add them.
 */
bool
fr_root_flush_shared(FrState *state, BlockNumber blkno, List **todo,
					 List **splits)
{
	int			rounds;

	/* one flusher at a time; the others go on, unless far over budget */
	if (!fr_root_flush_lock(state->index, false))
	{
		if (!fr_root_far_over_budget(state, blkno))
			return true;
		(void) fr_root_flush_lock(state->index, true);
	}
	for (rounds = 0; rounds < 4; rounds++)
	{
		OffsetNumber part = InvalidOffsetNumber;
		BlockNumber seal = InvalidBlockNumber;
		FrSeal		res;

		CHECK_FOR_INTERRUPTS();
		res = fr_root_seal(state, blkno, &part, &seal);
		if (res == FR_SEAL_NO)
		{
			fr_root_flush_unlock(state->index);
			return false;
		}
		if (res == FR_SEAL_DONE)
			break;
		fr_root_copy(state, blkno, part, seal, todo, splits);
		fr_root_cut(state, blkno, part, seal, todo, splits);
	}
	fr_root_flush_unlock(state->index);
	return true;
}
