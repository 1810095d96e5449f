/*-------------------------------------------------------------------------
 *
 * fr_flush.c
 *	  Moving messages down the fractal tree.
 *
 * A node whose buffer chains hold more than its budget (fr_node_budget)
 * flushes its fullest partition: the whole chain is read, sorted, and
 * applied to the partition's children in one batch (appended to the
 * children's chains, or merged into leaves), then the chain pages are
 * freed.  Children that went over budget are flushed in turn (one path per
 * cascade step).  Splits are done by fr_split.c.
 *
 * Every step is one WAL record and leaves a valid tree: messages are copied
 * into a child before they are removed from the parent, so a crash between
 * the two leaves a duplicate (key, TID), which leaf merges skip and scans
 * remove.  See src/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "fractal.h"

/*
 * The end of the run of sorted msgs[from..n) that lies below the pivot of
 * item 'next' of the node on 'page' (all of them when 'next' is past the
 * last item): the messages routing to the child or partition before it.
 */
static int
fr_run_end(FrState *state, Page page, OffsetNumber next, IndexTuple *msgs,
		   int from, int n)
{
	IndexTuple	hi;
	int			e = from + 1;

	if (next > PageGetMaxOffsetNumber(page))
		return n;
	hi = FrNodeItemGetPivot(fr_node_get_item(page, next));
	while (e < n && fr_compare_tuples(state, msgs[e], hi) < 0)
		e++;
	return e;
}

/*
 * The child of the node on 'page' that msgs[from] routes to (*off), and the
 * end of the run of sorted msgs[from..n) that goes to it.
 */
int
fr_child_run(FrState *state, Page page, IndexTuple *msgs, int from, int n,
			 OffsetNumber *off)
{
	*off = fr_node_find_child(state, page, msgs[from]);
	return fr_run_end(state, page, *off + 1, msgs, from, n);
}

/*
 * The same for the partition of the node on 'page' covering msgs[from]:
 * its start (*part), and the end of the run that goes to its chain.
 */
int
fr_partition_run(FrState *state, Page page, IndexTuple *msgs, int from, int n,
				 OffsetNumber *part)
{
	*part = fr_node_partition_start(page, fr_node_find_child(state, page, msgs[from]));
	return fr_run_end(state, page, fr_node_partition_end(page, *part), msgs,
					  from, n);
}

/*
 * While bulk delete flushes (state->vac_callback set, see fr_vacuum.c), drop
 * from items[0..n) the entries it reports dead, before they move.  Returns
 * how many are left.
 */
static int
fr_flush_drop_dead(FrState *state, IndexTuple *items, int n)
{
	int			i,
				k = 0;

	if (state->vac_callback == NULL)
		return n;
	for (i = 0; i < n; i++)
		if (!state->vac_callback(&items[i]->t_tid, state->vac_callback_state))
			items[k++] = items[i];
	state->vac_removed += n - k;
	return k;
}

/*
 * Apply sorted, duplicate-free messages msgs[0..n) to the leaf child at
 * 'off' of the level-1 node in 'nodebuf' (held exclusively).
 *
 * Messages already present in the leaf are skipped (this is what makes a
 * repeated flush harmless).  A plain leaf that takes them all, with
 * compression off, gets them inserted in place (one ADD_ITEMS record).
 * Otherwise fr_leaf_rewrite merges them in, splitting the leaf; if even
 * three pages cannot take them all, a prefix is merged and the caller comes
 * back for the rest, which then route through the new pivots.
 *
 * Returns how many messages were consumed (applied or found present), or -1
 * if the node has no room for the new pivots.
 */
static int
fr_leaf_apply(FrState *state, Buffer nodebuf, OffsetNumber off,
			  IndexTuple *msgs, int n)
{
	Relation	index = state->index;
	BlockNumber leafblk = fr_node_get_item(BufferGetPage(nodebuf), off)->child;
	Buffer		lbuf = fr_read_buffer(index, leafblk, BUFFER_LOCK_EXCLUSIVE);
	Page		lpage = BufferGetPage(lbuf);
	IndexTuple *newi = palloc(sizeof(IndexTuple) * n);
	int		   *newidx = palloc(sizeof(int) * n);
	OffsetNumber *offs = palloc(sizeof(OffsetNumber) * n);
	int			nn = 0,
				consumed = n,
				merged = 0,
				k,
				p;
	Size		need = 0;
	FrLeafView	view;

	if (!FrPageIsLeaf(lpage))
		fr_report_corrupt(index, leafblk,
						  "level-1 node points to a page that is not a leaf");
	fr_leaf_view(index, lpage, leafblk, &view);

	/*
	 * Skip what the leaf holds (the messages are sorted, so each search
	 * starts where the previous one ended).  New entry k lands after the k
	 * new entries before it, so its final offset is its position among the
	 * old entries plus k (plus one: offsets start at 1).
	 */
	for (k = 0, p = 0; k < n; k++)
	{
		p = fr_lower_bound_from(state, msgs[k], p, view.n, fr_array_entry,
								view.items);

		if (p < view.n && fr_compare_tuples(state, view.items[p], msgs[k]) == 0)
			continue;
		offs[nn] = (OffsetNumber) (p + nn + 1);
		newidx[nn] = k;
		newi[nn++] = msgs[k];
		need += fr_item_space(msgs[k]);
	}

	if (nn == 0)
		fr_leaf_view_release(&view);
	else if (!view.compressed && state->compression == FR_COMPRESSION_NONE &&
			 need <= PageGetExactFreeSpace(lpage))
	{
		/* in place, the keys added to the leaf's filter first (or with it) */
		FrSlotAdd	slot;

		fr_lfilter_before_add(state, nodebuf, off, view.items, view.n, newi, nn,
							  &slot);
		fr_leaf_view_release(&view);
		if (!fr_move_items(state, lbuf, newi, offs, nn, &slot))
			fr_leaf_add_items(index, lbuf, newi, offs, nn, &slot);
		if (BufferIsValid(slot.fbuf))
			UnlockReleaseBuffer(slot.fbuf);
		merged = nn;
	}
	else
	{
		/*
		 * rewrite, splitting when needed: a plain leaf's entries are copied
		 * off the page first; a compressed leaf's decompressed copy lies
		 * apart from the page already and is used as it is
		 */
		IndexTuple *old = view.items;
		int			nold = view.n,
					take;

		if (!view.compressed)
		{
			old = palloc(sizeof(IndexTuple) * Max(view.n, 1));
			for (k = 0; k < nold; k++)
				old[k] = CopyIndexTuple(view.items[k]);
			fr_leaf_view_release(&view);
		}
		nold = fr_flush_drop_dead(state, old, nold);
		take = fr_leaf_rewrite(state, nodebuf, off, lbuf, old, nold, newi, nn);
		fr_leaf_view_release(&view);	/* (compressed) */
		consumed = (take < 0) ? -1 : (take == nn) ? n : newidx[take];
		merged = Max(take, 0);
	}
	UnlockReleaseBuffer(lbuf);

	/* one leaf write carrying 'merged' messages (fractal_counters) */
	if (merged > 0)
	{
		fr_count(FR_CTR_LEAF_WRITES, 1);
		fr_count(FR_CTR_LEAF_MESSAGES, merged);
	}
	return consumed;
}

/*
 * Apply sorted messages msgs[0..n) to the node child at 'off' of the node
 * in 'nodebuf' (held exclusively): append each run to the chain of the
 * child's partition covering it.  A child short of room is split first,
 * while we hold its parent; then 0 is returned and the caller re-routes.
 * A child that the parent has no room to split takes the messages all the
 * same, and res->node_full asks for the parent to be split.
 */
static int
fr_node_apply(FrState *state, Buffer nodebuf, OffsetNumber off,
			  IndexTuple *msgs, int n, FrFlushResult *res)
{
	Relation	index = state->index;
	BlockNumber cblk = fr_node_get_item(BufferGetPage(nodebuf), off)->child;
	Buffer		cbuf = fr_read_buffer(index, cblk, BUFFER_LOCK_EXCLUSIVE);
	Page		cpage = BufferGetPage(cbuf);
	int			k = 0;

	if (!FrPageIsNode(cpage))
		fr_report_corrupt(index, cblk,
						  "internal node points to a page that is not a node");

	/*
	 * split a child short of room first; under a share-locked parent
	 * (fr_rootflush.c) it takes the messages and is split afterwards
	 */
	if (PageGetExactFreeSpace(cpage) < FR_NODE_SPLIT_FREE && res->parent_shared)
	{
		FrSplitRequest *req = fr_split_request(cpage);

		if (req)
			res->splits = lappend(res->splits, req);
	}
	else if (PageGetExactFreeSpace(cpage) < FR_NODE_SPLIT_FREE)
	{
		if (fr_split_node(state, nodebuf, off, cbuf, InvalidBuffer))
		{
			UnlockReleaseBuffer(cbuf);
			return 0;
		}
		if (PageGetExactFreeSpace(BufferGetPage(nodebuf)) < FR_NODE_SPLIT_FREE)
			res->node_full = true;
	}

	/* append each partition's run to its chain */
	while (k < n)
	{
		OffsetNumber cpart;
		int			e = fr_partition_run(state, cpage, msgs, k, n, &cpart);

		/*
		 * a level-1 chain's keys go to its leaf filter chain slot first, or
		 * with the messages into the tail page when they fit there
		 */
		if (!fr_lfilter_chain_append(state, cbuf, cpart, msgs + k, e - k))
		{
			fr_lfilter_chain_add(state, cbuf, cpart, msgs + k, e - k);
			fr_chain_append(state, cbuf, cpart, msgs + k, e - k,
							fr_index_large(state->index));
		}
		k = e;
	}
	fr_count(FR_CTR_CHAIN_MESSAGES, n);
	if (fr_node_over_budget(state, cpage))
		res->overfull = lappend_int(res->overfull, (int) cblk);
	UnlockReleaseBuffer(cbuf);
	return n;
}

/*
 * A flush of the partition at 'partoff' stopped because the node has no
 * room for more pivots, after applying a prefix of its sorted messages; the
 * rest, rest[0..nrest), route to the child 'at' and those after it.  Shrink
 * the chain (blocks[0..nblocks)) to just the rest, and when 'at' is not the
 * partition's first child move the partition start (and chain) to 'at':
 * the children before it are fully flushed, so they form a partition with
 * an empty chain, which may then be split further.  This way a flush always
 * makes progress and always leaves a partition boundary at which the full
 * node can be split, whatever the key width.
 */
static void
fr_flush_partial(FrState *state, Buffer nodebuf, OffsetNumber partoff,
				 BlockNumber *blocks, int nblocks, IndexTuple *rest, int nrest)
{
	OffsetNumber at = fr_node_find_child(state, BufferGetPage(nodebuf), rest[0]);

	fr_chain_replace(state, nodebuf, partoff, blocks, nblocks,
					 rest, nrest);
	if (at > partoff)
	{
		fr_partition_split_at(state, nodebuf, partoff, at);
		fr_lfilter_chain_reset(state, nodebuf, partoff);
		fr_partition_maybe_split(state, nodebuf, partoff);
	}
}

/*
 * Route sorted msgs[0..n) of a flushed partition of the node in 'nodebuf'
 * (held exclusively) to its children, each child's run to it.  Returns how
 * many were applied: all of them, or, when the node has no room for the
 * pivots of a leaf split, the prefix applied before.
 */
int
fr_flush_apply(FrState *state, Buffer nodebuf, IndexTuple *msgs, int n,
			   FrFlushResult *res)
{
	Page		page = BufferGetPage(nodebuf);
	bool		leaves = FrPageGetOpaque(page)->level == 1;
	int			i = 0;

	while (i < n)
	{
		OffsetNumber off;
		int			j = fr_child_run(state, page, msgs, i, n, &off);
		int			consumed;

		if (leaves)
			consumed = fr_leaf_apply(state, nodebuf, off, msgs + i, j - i);
		else
			consumed = fr_node_apply(state, nodebuf, off, msgs + i, j - i, res);
		if (consumed < 0)
			return i;
		i += consumed;
	}
	return n;
}

/*
 * Flush the chain of the partition starting at 'partoff' of the node in
 * 'nodebuf' (held exclusively) into its children.
 */
void
fr_flush_partition(FrState *state, Buffer nodebuf, OffsetNumber partoff,
				   FrFlushResult *res)
{
	Relation	index = state->index;
	Page		page = BufferGetPage(nodebuf);
	BlockNumber *blocks;
	int			nblocks,
				nmsgs,
				applied;
	IndexTuple *msgs;
	FrMoveMap	moves;

	if (fr_node_get_item(page, partoff)->chain_tail == InvalidBlockNumber)
		return;

	/*
	 * read, sort and dedup the whole chain, noting where each message came
	 * from, so that adding it to a child can be logged as a move
	 * (fr_move_items)
	 */
	memset(&moves, 0, sizeof(moves));
	msgs = fr_read_chain(index, fr_node_get_item(page, partoff), &nmsgs,
						 &blocks, &nblocks,
						 (!fr_custom_wal || !RelationNeedsWAL(index)) ?
						 NULL : &moves);
	nmsgs = fr_flush_drop_dead(state, msgs, nmsgs);
	fr_sort_entries(state, msgs, nmsgs);
	nmsgs = fr_dedup_sorted(state, msgs, nmsgs);
	fr_count(FR_CTR_FLUSHES, 1);
	fr_count(FR_CTR_FLUSHED_MESSAGES, nmsgs);
	fr_flush_prefetch(state, nodebuf, partoff, msgs, nmsgs);

	/* route each child's run to it */
	state->moves = (moves.n > 0) ? &moves : NULL;
	PG_TRY();
	{
		applied = fr_flush_apply(state, nodebuf, msgs, nmsgs, res);
	}
	PG_FINALLY();
	{
		state->moves = NULL;
	}
	PG_END_TRY();
	if (applied < nmsgs)
	{
		/* the node is full: keep what is left, and have it split */
		res->node_full = true;
		if (applied > 0)
			fr_flush_partial(state, nodebuf, partoff, blocks, nblocks,
							 msgs + applied, nmsgs - applied);
		return;
	}

	/*
	 * Free the chain (and empty its leaf filter chain slot), then split the
	 * now empty partition if it is too wide
	 */
	fr_chain_release(index, nodebuf, partoff, blocks, nblocks);
	fr_lfilter_chain_reset(state, nodebuf, partoff);
	fr_partition_maybe_split(state, nodebuf, partoff);
}

/*
 * A request to split the node on 'page', routed by a key reaching it from
 * its parent (its first real pivot).  NULL for a node with a single child
 * (nothing to split).
 */
FrSplitRequest *
fr_split_request(Page page)
{
	FrSplitRequest *req;

	if (PageGetMaxOffsetNumber(page) < FirstOffsetNumber + 1)
		return NULL;
	req = palloc(sizeof(FrSplitRequest));
	req->key = CopyIndexTuple(FrNodeItemGetPivot(fr_node_get_item(page, FirstOffsetNumber + 1)));
	req->level = FrPageGetOpaque(page)->level;
	return req;
}

/*
 * Lock the node at 'blkno' exclusively for a flush of its partition
 * routing 'key' (or of its fullest partition), after reading what that
 * flush will touch with the node not held exclusively (fr_flush_warm).
 * Returns InvalidBuffer when the page is not a node.
 */
static Buffer
fr_flush_lock_node(FrState *state, BlockNumber blkno, IndexTuple key)
{
	Buffer		buf;

	fr_flush_warm(state, blkno, key);
	buf = fr_read_buffer(state->index, blkno, BUFFER_LOCK_EXCLUSIVE);
	if (!FrPageIsNode(BufferGetPage(buf)))
	{
		UnlockReleaseBuffer(buf);
		return InvalidBuffer;
	}
	return buf;
}

/*
 * Flush the node at 'blkno' while it is over budget (at most four rounds),
 * adding children pushed over budget to *todo and, when the node is short
 * of room afterwards, a split request to *splits.  With 'key', first flush
 * the partition routing 'key' whatever the budget, and return the child
 * 'key' routes to when that is a node (else InvalidBlockNumber).  For a
 * large index the node is released between rounds, so each round's pages
 * are read (fr_flush_warm) while lookups can pass; the node stays a node
 * meanwhile (nodes are never freed), possibly narrowed by a split.
 */
static BlockNumber
fr_flush_node(FrState *state, BlockNumber blkno, List **todo, List **splits,
			  IndexTuple key)
{
	bool		relock = fr_index_large(state->index);
	Buffer		buf = fr_flush_lock_node(state, blkno, key);
	Page		page;
	BlockNumber next = InvalidBlockNumber;
	bool		full = false;
	int			rounds;

	if (!BufferIsValid(buf))
		return InvalidBlockNumber;
	page = BufferGetPage(buf);

	/* first the partition routing 'key', whatever the budget says */
	if (key != NULL)
	{
		FrFlushResult res = {NIL, false, false, NIL};
		OffsetNumber off = fr_node_find_child(state, page, key);

		fr_flush_partition(state, buf, fr_node_partition_start(page, off), &res);
		*todo = list_concat(*todo, res.overfull);
		full = res.node_full;
		if (FrPageGetOpaque(page)->level > 1)
			next = fr_node_get_item(page, fr_node_find_child(state, page, key))->child;
	}
	for (rounds = 0; !full && rounds < 4 && fr_node_over_budget(state, page); rounds++)
	{
		FrFlushResult res = {NIL, false, false, NIL};
		OffsetNumber part;

		/* out of memory, read the next round's pages with the node released */
		if (relock && (key != NULL || rounds > 0))
		{
			UnlockReleaseBuffer(buf);
			buf = fr_flush_lock_node(state, blkno, NULL);
			if (!BufferIsValid(buf))
				return next;
			page = BufferGetPage(buf);
			if (!fr_node_over_budget(state, page))
				break;
		}
		part = fr_fullest_partition(page);
		if (part == InvalidOffsetNumber)
			break;
		fr_flush_partition(state, buf, part, &res);
		*todo = list_concat(*todo, res.overfull);
		if (res.node_full)
			break;
	}
	if (PageGetExactFreeSpace(page) < FR_NODE_SPLIT_FREE)
	{
		FrSplitRequest *req = fr_split_request(page);

		if (req)
			*splits = lappend(*splits, req);
	}
	UnlockReleaseBuffer(buf);
	return next;
}

/*
 * Flush over-budget nodes, starting at 'start' and cascading into children
 * that a flush pushed over budget; then split nodes that ran short of room.
 * With 'key', first flush the partition routing 'key' at every level from
 * 'start' down (fr_flush_toward).  Called with no buffer locks held.  Does
 * nothing while VACUUM holds the flush lock: budgets are soft and the next
 * insert retries.
 */
static void
fr_maintain_from(FrState *state, BlockNumber start, IndexTuple key)
{
	Relation	index = state->index;
	List	   *todo = NIL;
	List	   *splits = NIL;
	ListCell   *lc;
	MemoryContext cxt,
				oldcxt;
	uint64		blocks_read = fr_blocks_read_so_far();	/* for fractal_counters */
	BlockNumber blkno;

	if (!fr_flush_lock(index, ShareLock, false))
		return;
	fr_filter_prepare(index);	/* before any buffer lock */

	cxt = AllocSetContextCreate(CurrentMemoryContext, "fractal flush",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	/* the path of 'key', top-down: its partition at each level */
	for (blkno = start; key != NULL && blkno != InvalidBlockNumber;)
	{
		CHECK_FOR_INTERRUPTS();
		blkno = fr_flush_node(state, blkno, &todo, &splits, key);
	}

	/*
	 * flush over-budget nodes, cascading down; an in-memory root first
	 * under a share lock, so that inserts go on meanwhile (fr_rootflush.c)
	 */
	if (key == NULL &&
		!(state->vac_callback == NULL && !fr_index_large(index) &&
		  fr_root_flush_shared(state, start, &todo, &splits)))
		todo = lcons_int((int) start, todo);
	while (todo != NIL)
	{
		blkno = (BlockNumber) linitial_int(todo);
		CHECK_FOR_INTERRUPTS();
		todo = list_delete_first(todo);
		fr_flush_node(state, blkno, &todo, &splits, NULL);
	}

	/* split, top-down, the nodes that ran short of room */
	foreach(lc, splits)
	{
		FrSplitRequest *req = (FrSplitRequest *) lfirst(lc);

		fr_split_descend(state, req->key, req->level);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	fr_flush_unlock(index, ShareLock);
	fr_count(FR_CTR_FLUSH_BLOCKS_READ, fr_blocks_read_so_far() - blocks_read);
}

void
fr_maintain(FrState *state, BlockNumber start)
{
	fr_maintain_from(state, start, NULL);
}

/*
 * Push the messages routing to 'key' from the root down into the leaves:
 * at every level flush the partition covering 'key', then whatever that
 * put over budget.  Used when the rightmost leaf was too full for a
 * sequential insert (fr_insert.c): the flush merges the messages queued
 * behind it into it, splitting it, so the next sequential keys go to the
 * new rightmost leaf directly instead of queueing in buffers until budgets
 * force a flush.  Called with no buffer locks held.
 */
void
fr_flush_toward(FrState *state, IndexTuple key)
{
	uint32		height;
	BlockNumber root = fr_get_root(state->index, &height, false);

	if (height > 0)
		fr_maintain_from(state, root, key);
}
