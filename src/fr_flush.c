/*-------------------------------------------------------------------------
 *
 * fr_flush.c
 *	  Moving messages down the fractal tree, and splitting.
 *
 * A node whose buffer chains hold more than its budget (fr_node_budget) flushes its
 * fullest partition: the whole chain is read, sorted, and applied to the
 * partition's children in one batch (appended to the children's chains, or
 * merged into leaves), then the chain pages are freed.  Children that went
 * over budget are flushed in turn (one path per cascade step).
 *
 * Every step is one generic WAL record of at most four pages and leaves a
 * valid tree: messages are copied into a child before they are removed from
 * the parent, so a crash between the two leaves a duplicate (key, TID), which
 * leaf merges skip and scans remove.  See src/README.md.
 *
 * Structural changes are top-down: a child is split while its parent is held
 * exclusively; the root grows under the metapage lock.  A node that runs
 * short of room for new pivots is split by fr_split_descend, which walks
 * down from the root with exclusive lock coupling.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "fractal.h"

/* objsubid of the heavyweight "flush lock" (see fr_acquire_flush_lock) */
#define FR_FLUSH_LOCK_SUBID 0x4652	/* "FR"; the field is 16 bits */

/* result of flushing one partition */
typedef struct FrFlushResult
{
	List	   *overfull;		/* child node blocks now over budget */
	bool		node_full;		/* the node ran out of room for pivots */
} FrFlushResult;

/* a request to split the node at 'level' covering 'key' */
typedef struct FrSplitRequest
{
	IndexTuple	key;
	int			level;
} FrSplitRequest;

static void fr_split_descend(FrState *state, IndexTuple key, int level);

/* ------------------------------------------------------------------------
 * The flush lock
 *
 * Anything that moves entries between pages (flushes, leaf splits) holds
 * this heavyweight lock in share mode; VACUUM's bulk delete holds it in
 * exclusive mode for its whole physical scan, so no entry can move from a
 * page it has not yet scanned to one it has.  Inserts that only append to a
 * buffer chain do not take it.  It is a LOCKTAG_OBJECT lock keyed by the
 * index OID, a tag no other code uses; it is always acquired before any
 * buffer lock.
 * ------------------------------------------------------------------------
 */
static void
fr_flush_locktag(LOCKTAG *tag, Relation index)
{
	SET_LOCKTAG_OBJECT(*tag, MyDatabaseId, RelationRelationId,
					   RelationGetRelid(index), FR_FLUSH_LOCK_SUBID);
}

bool
fr_acquire_flush_lock(Relation index, bool wait)
{
	LOCKTAG		tag;

	fr_flush_locktag(&tag, index);
	return LockAcquire(&tag, ShareLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

void
fr_release_flush_lock(Relation index)
{
	LOCKTAG		tag;

	fr_flush_locktag(&tag, index);
	LockRelease(&tag, ShareLock, false);
}

void
fr_lock_flush_exclusive(Relation index)
{
	LOCKTAG		tag;

	fr_flush_locktag(&tag, index);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

void
fr_unlock_flush_exclusive(Relation index)
{
	LOCKTAG		tag;

	fr_flush_locktag(&tag, index);
	LockRelease(&tag, ExclusiveLock, false);
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------
 */

/* total chain pages of a node */
int
fr_node_buffer_pages(Page page)
{
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page);
	int			total = 0;

	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		FrNodeItem	item = fr_node_get_item(page, off);

		if (item->flags & FR_ITEM_PART_START)
			total += item->chain_pages;
	}
	return total;
}

/*
 * The buffer budget of the node on 'page': buffer_percent of its children
 * in pages, at least FR_MIN_BUFFER_PAGES and at most buffer_pages.  Scaling
 * with the fanout keeps the buffers above the leaves a fixed fraction of
 * the leaves, whatever the key width, which is what decides both the
 * batching (messages per leaf write) and the memory the buffers need.
 */
int
fr_node_budget(FrState *state, Page page)
{
	int			children = PageGetMaxOffsetNumber(page);
	int			budget = (children * state->buffer_percent + 99) / 100;

	return Max(FR_MIN_BUFFER_PAGES, Min(state->buffer_pages, budget));
}

/*
 * Read every message of a chain, newest page first.  Returns palloc'd
 * copies; *blocks gets the chain's blocks, newest first.  The caller holds
 * the owning node locked, so the chain cannot change.
 */
IndexTuple *
fr_read_chain(Relation index, BlockNumber tail, int *nmsgs,
			  BlockNumber **blocks, int *nblocks)
{
	int			cap = 256,
				n = 0,
				bcap = 8,
				nb = 0;
	IndexTuple *msgs = palloc(sizeof(IndexTuple) * cap);
	BlockNumber *blks = palloc(sizeof(BlockNumber) * bcap);
	BlockNumber blkno = tail;

	while (blkno != InvalidBlockNumber)
	{
		Buffer		buf = fr_read_chain_buffer(index, blkno, BUFFER_LOCK_SHARE);
		Page		page = BufferGetPage(buf);
		OffsetNumber off,
					maxoff = PageGetMaxOffsetNumber(page);

		if (nb >= bcap)
		{
			bcap *= 2;
			blks = repalloc(blks, sizeof(BlockNumber) * bcap);
		}
		if (nb > 100000)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\" has a buffer chain loop at block %u",
							RelationGetRelationName(index), blkno),
					 errhint("Please REINDEX it.")));
		blks[nb++] = blkno;
		for (off = FirstOffsetNumber; off <= maxoff; off++)
		{
			IndexTuple	it = (IndexTuple) PageGetItem(page, PageGetItemId(page, off));

			if (n >= cap)
			{
				cap *= 2;
				msgs = repalloc(msgs, sizeof(IndexTuple) * cap);
			}
			msgs[n++] = CopyIndexTuple(it);
		}
		blkno = FrPageGetOpaque(page)->link;
		UnlockReleaseBuffer(buf);
	}
	*nmsgs = n;
	if (blocks)
		*blocks = blks;
	if (nblocks)
		*nblocks = nb;
	return msgs;
}

/*
 * Free the chain of the partition at 'partoff' after its messages were
 * applied.  Up to three pages are freed per WAL record, newest first, each
 * record also moving the partition's tail pointer to the next surviving
 * page, so the chain is valid after every record.
 */
void
fr_chain_release(Relation index, Buffer nodebuf, OffsetNumber partoff,
				 BlockNumber *blocks, int nblocks)
{
	int			i = 0;

	while (i < nblocks)
	{
		int			n = Min(3, nblocks - i);
		Buffer		bufs[3];
		GenericXLogState *xs;
		Page		np;
		FrNodeItem	pitem;
		int			k;

		for (k = 0; k < n; k++)
			bufs[k] = fr_read_buffer(index, blocks[i + k], BUFFER_LOCK_EXCLUSIVE);
		xs = GenericXLogStart(index);
		np = GenericXLogRegisterBuffer(xs, nodebuf, 0);
		pitem = fr_node_get_item(np, partoff);
		for (k = 0; k < n; k++)
			fr_free_page_in_place(GenericXLogRegisterBuffer(xs, bufs[k], 0));
		pitem->chain_tail = (i + n < nblocks) ? blocks[i + n] : InvalidBlockNumber;
		pitem->chain_pages = nblocks - i - n;
		GenericXLogFinish(xs);
		for (k = 0; k < n; k++)
		{
			UnlockReleaseBuffer(bufs[k]);
			fr_record_free_page(index, blocks[i + k]);
		}
		i += n;
	}
}

/* bytes an item takes on a page, line pointer included */
static inline Size
fr_item_space(IndexTuple itup)
{
	return MAXALIGN(IndexTupleSize(itup)) + sizeof(ItemIdData);
}

/* first position in view whose entry is >= key */
static int
fr_view_search(FrState *state, FrLeafView *view, IndexTuple key)
{
	int			lo = 0,
				hi = view->n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (fr_compare_tuples(state, view->items[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* does items[0..n) fit in one (non-root) leaf? */
static bool
fr_leaf_fits(FrState *state, IndexTuple *items, int n)
{
	return fr_leaf_max_prefix(state, items, n, FrPageUsable) == n;
}

/*
 * Cut merged[0..n) into at most three leaves; returns the number of pages
 * (cuts[] gets the start of pages 2 and 3) or 0 if three are not enough.
 * Appending at the node's right end (sequential keys) fills pages to
 * fillfactor from the left; otherwise pages get equal shares of the raw
 * bytes, so a page split by a random batch is left half empty, as in a
 * B-tree.
 */
static int
fr_leaf_partition(FrState *state, IndexTuple *merged, int n, bool rightmost,
				  int *cuts)
{
	int			k;

	if (fr_leaf_fits(state, merged, n))
		return 1;
	if (rightmost)
	{
		Size		target = FrPageUsable * state->fillfactor / 100;
		int			pos = 0;

		for (k = 1; k <= 3; k++)
		{
			int			take = fr_leaf_max_prefix(state, merged + pos, n - pos,
												  k == 3 ? FrPageUsable : target);

			if (pos + take >= n)
				return (take == n - pos && fr_leaf_fits(state, merged + pos, n - pos)) ? k : 0;
			pos += take;
			if (k < 3)
				cuts[k - 1] = pos;
		}
		return 0;
	}
	for (k = 2; k <= 3; k++)
	{
		Size		total = 0,
					cum = 0;
		int			i,
					c = 0,
					prev = 0;
		bool		ok = true;

		for (i = 0; i < n; i++)
			total += IndexTupleSize(merged[i]);
		for (i = 0; i < n && c < k - 1; i++)
		{
			cum += IndexTupleSize(merged[i]);
			if (cum * k >= total * (c + 1) && i + 1 < n)
				cuts[c++] = i + 1;
		}
		if (c < k - 1)
			continue;
		for (i = 0; i < k && ok; i++)
		{
			int			from = (i == 0) ? 0 : cuts[i - 1];
			int			to = (i == k - 1) ? n : cuts[i];

			ok = to > from && fr_leaf_fits(state, merged + from, to - from);
			prev = to;
		}
		(void) prev;
		if (ok)
			return k;
	}
	return 0;
}

/*
 * Apply sorted, duplicate-free messages msgs[0..n) to the leaf child at
 * 'off' of the level-1 node in 'nodebuf' (held exclusively).
 *
 * Messages already present in the leaf are skipped (this is what makes a
 * repeated flush harmless).  A plain leaf that takes them all, with
 * compression off, gets them inserted in place (one ADD_ITEMS record).
 * Otherwise the leaf is rewritten (compressed when the compression option
 * says so): in one page if everything fits, else split into two or three
 * pages in one record (node, leaf, new leaves).  If even three pages
 * cannot take all the messages, a prefix of them is merged and the caller
 * comes back for the rest, which then route through the new pivots.
 *
 * Returns how many messages were consumed (applied or found present), or -1
 * if the node has no room for the new pivots.
 */
static int
fr_leaf_apply(FrState *state, Buffer nodebuf, OffsetNumber off,
			  IndexTuple *msgs, int n)
{
	Relation	index = state->index;
	Page		npage = BufferGetPage(nodebuf);
	BlockNumber leafblk = fr_node_get_item(npage, off)->child;
	Buffer		lbuf = fr_read_buffer(index, leafblk, BUFFER_LOCK_EXCLUSIVE);
	Page		lpage = BufferGetPage(lbuf);
	IndexTuple *newi = palloc(sizeof(IndexTuple) * n);
	int		   *newidx = palloc(sizeof(int) * n);
	int		   *pos = palloc(sizeof(int) * n);
	int			nn = 0,
				k;
	Size		need = 0;
	FrLeafView	view;

	if (!FrPageIsLeaf(lpage))
		fr_report_corrupt(index, leafblk,
						  "level-1 node points to a page that is not a leaf");
	fr_leaf_view(index, lpage, leafblk, &view);

	for (k = 0; k < n; k++)
	{
		int			p = fr_view_search(state, &view, msgs[k]);

		if (p < view.n && fr_compare_tuples(state, view.items[p], msgs[k]) == 0)
			continue;			/* already applied */
		newi[nn] = msgs[k];
		newidx[nn] = k;
		pos[nn] = p;
		nn++;
		need += MAXALIGN(IndexTupleSize(msgs[k])) + sizeof(ItemIdData);
	}

	if (nn == 0)
	{
		fr_leaf_view_release(&view);
		UnlockReleaseBuffer(lbuf);
		return n;
	}

	if (!view.compressed && state->compression == FR_COMPRESSION_NONE &&
		need <= PageGetExactFreeSpace(lpage))
	{
		/*
		 * In place, ascending: new item k lands after the k new items before
		 * it, so its final offset is its position among the old entries
		 * plus k (plus one: offsets start at 1).
		 */
		OffsetNumber *offs = palloc(sizeof(OffsetNumber) * nn);

		for (k = 0; k < nn; k++)
			offs[k] = (OffsetNumber) (pos[k] + k + 1);
		fr_leaf_view_release(&view);
		fr_page_add_items(index, lbuf, newi, offs, nn);
		UnlockReleaseBuffer(lbuf);
		return n;
	}

	{
		int			nold = view.n;
		IndexTuple *old = palloc(sizeof(IndexTuple) * Max(nold, 1));
		IndexTuple *merged = palloc(sizeof(IndexTuple) * (nold + nn));
		bool		rightmost;
		int			take,
					nmerged = 0,
					npages = 0,
					cuts[2];
		Buffer		newbufs[2] = {InvalidBuffer, InvalidBuffer};
		GenericXLogState *xs;
		Page		np,
					lp;
		Size		pivots_size = 0;
		FrNodeItem	pitems[2] = {NULL, NULL};
		Size		pitem_sz[2] = {0, 0};
		FrState    *wstate;
		FrState		zstate;

		for (k = 0; k < nold; k++)
			old[k] = CopyIndexTuple(view.items[k]);
		fr_leaf_view_release(&view);

		rightmost = (off == PageGetMaxOffsetNumber(npage)) &&
			(nold == 0 || fr_compare_tuples(state, newi[0], old[nold - 1]) > 0);

		/*
		 * Merge old entries with newi[0..take), shrinking take until the
		 * result fits in at most three pages.  A compressed leaf can hold
		 * more than three plain pages' worth of entries: when compression
		 * has since been switched off and the plain form cannot take even
		 * one new entry, the leaf is rewritten compressed all the same
		 * (REINDEX rewrites everything with the current setting).
		 */
		wstate = state;
retry:
		take = nn;
		while (take > 0)
		{
			int			i = 0,
						j = 0;

			nmerged = 0;
			while (i < nold || j < take)
			{
				if (j >= take ||
					(i < nold && fr_compare_tuples(state, old[i], newi[j]) < 0))
					merged[nmerged++] = old[i++];
				else
					merged[nmerged++] = newi[j++];
			}
			npages = fr_leaf_partition(wstate, merged, nmerged, rightmost, cuts);
			if (npages > 0)
				break;
			take = (take > 1) ? take / 2 : 0;
		}
		if (take == 0 && wstate == state && state->compression == FR_COMPRESSION_NONE)
		{
			zstate = *state;
			zstate.compression = FR_COMPRESSION_ZSTD;
			wstate = &zstate;
			goto retry;
		}
		if (take == 0)
			elog(ERROR, "fractal leaf %u cannot take a single new entry", leafblk);

		for (k = 0; k < npages - 1; k++)
		{
			pitems[k] = fr_make_node_item(merged[cuts[k]], InvalidBlockNumber, 0,
										  &pitem_sz[k]);
			pivots_size += pitem_sz[k] + sizeof(ItemIdData);
		}
		if (pivots_size > PageGetExactFreeSpace(npage))
		{
			UnlockReleaseBuffer(lbuf);
			return -1;
		}
		for (k = 0; k < npages - 1; k++)
		{
			newbufs[k] = fr_new_buffer(index);
			pitems[k]->child = BufferGetBlockNumber(newbufs[k]);
		}

		xs = GenericXLogStart(index);
		np = (npages > 1) ? GenericXLogRegisterBuffer(xs, nodebuf, 0) : NULL;
		lp = GenericXLogRegisterBuffer(xs, lbuf, GENERIC_XLOG_FULL_IMAGE);
		fr_init_page(lp, FR_LEAF, 0);
		if (!fr_leaf_fill(wstate, lp, merged, npages > 1 ? cuts[0] : nmerged, true))
			elog(ERROR, "fractal leaf rewrite does not fit");
		for (k = 0; k < npages - 1; k++)
		{
			Page		rp = GenericXLogRegisterBuffer(xs, newbufs[k], GENERIC_XLOG_FULL_IMAGE);
			int			to = (k + 1 < npages - 1) ? cuts[k + 1] : nmerged;

			fr_init_page(rp, FR_LEAF, 0);
			if (!fr_leaf_fill(wstate, rp, merged + cuts[k], to - cuts[k], true))
				elog(ERROR, "fractal leaf split does not fit");
			if (PageAddItem(np, (Item) pitems[k], pitem_sz[k], off + 1 + k,
							false, false) == InvalidOffsetNumber)
				elog(ERROR, "failed to add pivot to fractal node");
		}
		GenericXLogFinish(xs);
		for (k = 0; k < npages - 1; k++)
			UnlockReleaseBuffer(newbufs[k]);
		UnlockReleaseBuffer(lbuf);

		return (take == nn) ? n : newidx[take];
	}
}

/*
 * Split the node in 'cbuf' (the child at 'poff' of the node in 'pbuf', or
 * the root when pbuf is InvalidBuffer, in which case 'metabuf' is held and
 * a new root is made) at the partition boundary nearest its middle.  Chains
 * belong to partitions, so they move with them and nothing is copied.  All
 * buffers are held exclusively by the caller.  Returns false when the node
 * has no partition boundary or the parent has no room.
 */
static bool
fr_split_node(FrState *state, Buffer pbuf, OffsetNumber poff, Buffer cbuf,
			  Buffer metabuf)
{
	Relation	index = state->index;
	Page		cpage = BufferGetPage(cbuf);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(cpage);
	OffsetNumber off,
				best = InvalidOffsetNumber;
	Size		total = 0,
				cum = 0,
				bestdiff = 0;
	FrNodeItem *items;
	Size	   *sizes;
	IndexTuple	pivot;
	Size		upsz,
				sz;
	FrNodeItem	upitem;
	Buffer		rbuf,
				newroot = InvalidBuffer;
	GenericXLogState *xs;
	Page		cp,
				rp;
	uint16		level = FrPageGetOpaque(cpage)->level;

	items = palloc(sizeof(FrNodeItem) * (maxoff + 1));
	sizes = palloc(sizeof(Size) * (maxoff + 1));
	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId		iid = PageGetItemId(cpage, off);

		sizes[off] = ItemIdGetLength(iid);
		items[off] = (FrNodeItem) palloc(sizes[off]);
		memcpy(items[off], PageGetItem(cpage, iid), sizes[off]);
		total += MAXALIGN(sizes[off]) + sizeof(ItemIdData);
	}
	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		if (off > FirstOffsetNumber && (items[off]->flags & FR_ITEM_PART_START))
		{
			Size		diff = (cum > total / 2) ? cum - total / 2 : total / 2 - cum;

			if (best == InvalidOffsetNumber || diff < bestdiff)
			{
				best = off;
				bestdiff = diff;
			}
		}
		cum += MAXALIGN(sizes[off]) + sizeof(ItemIdData);
	}
	if (best == InvalidOffsetNumber)
		return false;

	pivot = FrNodeItemGetPivot(items[best]);
	upitem = fr_make_node_item(pivot, InvalidBlockNumber, 0, &upsz);
	if (BufferIsValid(pbuf) &&
		upsz + sizeof(ItemIdData) > PageGetExactFreeSpace(BufferGetPage(pbuf)))
		return false;

	rbuf = fr_new_buffer(index);
	if (!BufferIsValid(pbuf))
		newroot = fr_new_buffer(index);
	upitem->child = BufferGetBlockNumber(rbuf);

	xs = GenericXLogStart(index);
	if (BufferIsValid(pbuf))
	{
		Page		pp = GenericXLogRegisterBuffer(xs, pbuf, 0);

		if (PageAddItem(pp, (Item) upitem, upsz, poff + 1, false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to add pivot to fractal node");
	}
	else
	{
		Page		mp = GenericXLogRegisterBuffer(xs, metabuf, 0);
		Page		rootp = GenericXLogRegisterBuffer(xs, newroot, GENERIC_XLOG_FULL_IMAGE);
		FrNodeItem	left;
		FrMetaPage	meta = FrPageGetMeta(mp);

		fr_init_page(rootp, FR_NODE | FR_ROOT, level + 1);
		left = fr_make_node_item(NULL, BufferGetBlockNumber(cbuf),
								 FR_ITEM_PART_START, &sz);
		if (PageAddItem(rootp, (Item) left, sz, InvalidOffsetNumber, false, false) == InvalidOffsetNumber ||
			PageAddItem(rootp, (Item) upitem, upsz, InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to build new fractal root");
		meta->root = BufferGetBlockNumber(newroot);
		meta->height = level + 1;
	}
	cp = GenericXLogRegisterBuffer(xs, cbuf, GENERIC_XLOG_FULL_IMAGE);
	rp = GenericXLogRegisterBuffer(xs, rbuf, GENERIC_XLOG_FULL_IMAGE);

	fr_init_page(cp, FR_NODE, level);
	for (off = FirstOffsetNumber; off < best; off++)
		if (PageAddItem(cp, (Item) items[off], sizes[off], InvalidOffsetNumber,
						false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to rebuild fractal node");
	fr_init_page(rp, FR_NODE, level);
	{
		FrNodeItem	first = fr_make_node_item(NULL, items[best]->child,
											  FR_ITEM_PART_START, &sz);

		first->chain_tail = items[best]->chain_tail;
		first->chain_pages = items[best]->chain_pages;
		if (PageAddItem(rp, (Item) first, sz, InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to build fractal node");
	}
	for (off = best + 1; off <= maxoff; off++)
		if (PageAddItem(rp, (Item) items[off], sizes[off], InvalidOffsetNumber,
						false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to build fractal node");
	GenericXLogFinish(xs);

	UnlockReleaseBuffer(rbuf);
	if (BufferIsValid(newroot))
		UnlockReleaseBuffer(newroot);
	return true;
}

/*
 * Apply sorted messages msgs[0..n) to the node child at 'off' of the node
 * in 'nodebuf' (held exclusively): append each run to the chain of the
 * child's partition covering it.  A child short of room is split first,
 * while we hold its parent; then 0 is returned and the caller re-routes.
 * Returns -1 if the split was needed but the parent had no room.
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

	if (PageGetExactFreeSpace(cpage) < FR_NODE_SPLIT_FREE)
	{
		if (fr_split_node(state, nodebuf, off, cbuf, InvalidBuffer))
		{
			UnlockReleaseBuffer(cbuf);
			return 0;
		}
		if (PageGetExactFreeSpace(BufferGetPage(nodebuf)) < FR_NODE_SPLIT_FREE)
			res->node_full = true;
	}

	while (k < n)
	{
		OffsetNumber coff = fr_node_find_child(state, cpage, msgs[k]);
		OffsetNumber cpart = fr_node_partition_start(cpage, coff);
		OffsetNumber cend = fr_node_partition_end(cpage, cpart);
		int			e = k + 1;

		if (cend <= PageGetMaxOffsetNumber(cpage))
		{
			IndexTuple	hi = FrNodeItemGetPivot(fr_node_get_item(cpage, cend));

			while (e < n && fr_compare_tuples(state, msgs[e], hi) < 0)
				e++;
		}
		else
			e = n;
		fr_chain_append(index, cbuf, cpart, msgs + k, e - k);
		k = e;
	}
	if (fr_node_buffer_pages(cpage) > fr_node_budget(state, cpage))
		res->overfull = lappend_int(res->overfull, (int) cblk);
	UnlockReleaseBuffer(cbuf);
	return n;
}

/*
 * After a partition's chain was emptied, split it if it covers too many
 * children.  The limit is the partition_children option, lowered for wide
 * pivots so that a full node always has several partitions to split at.
 */
static void
fr_partition_maybe_split(FrState *state, Buffer nodebuf, OffsetNumber start)
{
	Page		page = BufferGetPage(nodebuf);
	OffsetNumber end = fr_node_partition_end(page, start);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	int			count = end - start;
	Size		used = FrPageUsable - PageGetExactFreeSpace(page);
	int			capacity = (int) (FrPageUsable / Max(used / maxoff, 1));
	int			limit = Min(state->partition_children, Max(capacity / 4, 1));
	int			nparts,
				p;
	GenericXLogState *xs;
	Page		np;

	if (count <= limit)
		return;
	nparts = (count + limit - 1) / limit;
	xs = GenericXLogStart(state->index);
	np = GenericXLogRegisterBuffer(xs, nodebuf, 0);
	for (p = 1; p < nparts; p++)
	{
		OffsetNumber o = start + (OffsetNumber) ((long) count * p / nparts);
		FrNodeItem	item = fr_node_get_item(np, o);

		item->flags |= FR_ITEM_PART_START;
		item->chain_tail = InvalidBlockNumber;
		item->chain_pages = 0;
	}
	GenericXLogFinish(xs);
}

/*
 * Flush the chain of the partition starting at 'partoff' of the node in
 * 'nodebuf' (held exclusively) into its children.
 */
static void
fr_flush_partition(FrState *state, Buffer nodebuf, OffsetNumber partoff,
				   FrFlushResult *res)
{
	Relation	index = state->index;
	Page		page = BufferGetPage(nodebuf);
	uint16		level = FrPageGetOpaque(page)->level;
	FrNodeItem	pitem = fr_node_get_item(page, partoff);
	BlockNumber *blocks;
	int			nblocks,
				nmsgs,
				i = 0;
	IndexTuple *msgs;
	bool		complete = true;

	if (pitem->chain_tail == InvalidBlockNumber)
		return;
	msgs = fr_read_chain(index, pitem->chain_tail, &nmsgs, &blocks, &nblocks);
	fr_sort_entries(state, msgs, nmsgs);
	nmsgs = fr_dedup_sorted(state, msgs, nmsgs);

	while (i < nmsgs)
	{
		OffsetNumber off = fr_node_find_child(state, page, msgs[i]);
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
		int			j = i + 1;
		int			consumed;

		CHECK_FOR_INTERRUPTS();
		if (off < maxoff)
		{
			IndexTuple	hi = FrNodeItemGetPivot(fr_node_get_item(page, off + 1));

			while (j < nmsgs && fr_compare_tuples(state, msgs[j], hi) < 0)
				j++;
		}
		else
			j = nmsgs;

		if (level == 1)
			consumed = fr_leaf_apply(state, nodebuf, off, msgs + i, j - i);
		else
			consumed = fr_node_apply(state, nodebuf, off, msgs + i, j - i, res);
		if (consumed < 0)
		{
			complete = false;
			break;
		}
		i += consumed;
	}

	if (complete)
	{
		fr_chain_release(index, nodebuf, partoff, blocks, nblocks);
		fr_partition_maybe_split(state, nodebuf, partoff);
	}
	else
		res->node_full = true;
}

/*
 * The partition with the most chain pages.
 */
static OffsetNumber
fr_fullest_partition(Page page)
{
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page),
				best = InvalidOffsetNumber;
	uint32		bestpages = 0;

	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		FrNodeItem	item = fr_node_get_item(page, off);

		if ((item->flags & FR_ITEM_PART_START) && item->chain_pages > bestpages)
		{
			best = off;
			bestpages = item->chain_pages;
		}
	}
	return best;
}

/*
 * A key routing to the node on 'page' from its parent: its first real pivot.
 * Returns NULL for a node with a single child (nothing to split).
 */
static IndexTuple
fr_node_route_key(Page page)
{
	if (PageGetMaxOffsetNumber(page) < FirstOffsetNumber + 1)
		return NULL;
	return CopyIndexTuple(FrNodeItemGetPivot(fr_node_get_item(page, FirstOffsetNumber + 1)));
}

/*
 * Flush over-budget nodes, starting at 'start' and cascading into children
 * that a flush pushed over budget; then split nodes that ran short of room.
 * Called with no buffer locks held.  Does nothing while VACUUM holds the
 * flush lock: budgets are soft and the next insert retries.
 */
void
fr_maintain(FrState *state, BlockNumber start)
{
	Relation	index = state->index;
	List	   *todo;
	List	   *splits = NIL;
	ListCell   *lc;
	MemoryContext cxt,
				oldcxt;

	if (!fr_acquire_flush_lock(index, false))
		return;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "fractal flush",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	todo = list_make1_int((int) start);
	while (todo != NIL)
	{
		BlockNumber blkno = (BlockNumber) linitial_int(todo);
		Buffer		buf;
		Page		page;
		int			rounds = 0;

		todo = list_delete_first(todo);
		buf = fr_read_buffer(index, blkno, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		if (!FrPageIsNode(page))
		{
			UnlockReleaseBuffer(buf);
			continue;
		}
		while (fr_node_buffer_pages(page) > fr_node_budget(state, page) && rounds < 4)
		{
			FrFlushResult res = {NIL, false};
			OffsetNumber part = fr_fullest_partition(page);

			if (part == InvalidOffsetNumber)
				break;
			fr_flush_partition(state, buf, part, &res);
			todo = list_concat(todo, res.overfull);
			rounds++;
			if (res.node_full)
				break;
		}
		if (PageGetExactFreeSpace(page) < FR_NODE_SPLIT_FREE)
		{
			IndexTuple	key = fr_node_route_key(page);

			if (key)
			{
				FrSplitRequest *req = palloc(sizeof(FrSplitRequest));

				req->key = key;
				req->level = FrPageGetOpaque(page)->level;
				splits = lappend(splits, req);
			}
		}
		UnlockReleaseBuffer(buf);
	}

	foreach(lc, splits)
	{
		FrSplitRequest *req = (FrSplitRequest *) lfirst(lc);

		fr_split_descend(state, req->key, req->level);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	fr_release_flush_lock(index);
}

/*
 * Walk from the root toward 'key' down to 'level', splitting every node on
 * the way that is short of room, each while its parent is held exclusively
 * (lock coupling).  The root is split by growing the tree under the
 * metapage lock.  Caller holds the flush lock and no buffer locks.
 */
static void
fr_split_descend(FrState *state, IndexTuple key, int level)
{
	Relation	index = state->index;

	for (;;)
	{
		FrMetaPageData meta = fr_get_meta(index);
		Buffer		cur;
		Page		page;

		CHECK_FOR_INTERRUPTS();
		if ((int) meta.height < level || meta.height == 0)
			return;
		cur = fr_read_buffer(index, meta.root, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(cur);
		if (!FrPageIsRoot(page))
		{
			UnlockReleaseBuffer(cur);
			continue;
		}
		if (PageGetExactFreeSpace(page) < FR_NODE_SPLIT_FREE)
		{
			/* grow the tree: metapage before root */
			Buffer		mbuf;

			UnlockReleaseBuffer(cur);
			mbuf = fr_read_buffer(index, FR_META_BLKNO, BUFFER_LOCK_EXCLUSIVE);
			cur = fr_read_buffer(index, FrPageGetMeta(BufferGetPage(mbuf))->root,
								 BUFFER_LOCK_EXCLUSIVE);
			page = BufferGetPage(cur);
			if (FrPageIsRoot(page) && FrPageIsNode(page) &&
				PageGetExactFreeSpace(page) < FR_NODE_SPLIT_FREE &&
				fr_split_node(state, InvalidBuffer, InvalidOffsetNumber, cur, mbuf))
			{
				/* fr_split_node rebuilt the old root as an ordinary node */
				UnlockReleaseBuffer(cur);
				UnlockReleaseBuffer(mbuf);
				continue;
			}
			UnlockReleaseBuffer(mbuf);
		}

		while (FrPageGetOpaque(page)->level > level)
		{
			OffsetNumber off = fr_node_find_child(state, page, key);
			Buffer		child = fr_read_buffer(index,
											   fr_node_get_item(page, off)->child,
											   BUFFER_LOCK_EXCLUSIVE);
			Page		cpage = BufferGetPage(child);

			if (FrPageIsNode(cpage) &&
				PageGetExactFreeSpace(cpage) < FR_NODE_SPLIT_FREE &&
				fr_split_node(state, cur, off, child, InvalidBuffer))
			{
				UnlockReleaseBuffer(child);
				continue;		/* re-route at 'cur' */
			}
			UnlockReleaseBuffer(cur);
			cur = child;
			page = cpage;
			if (!FrPageIsNode(page))
				break;
		}
		UnlockReleaseBuffer(cur);
		return;
	}
}

/*
 * The root is a full leaf: split it under a new level-1 root.  One record:
 * metapage, new root, old leaf, new leaf.  Takes the flush lock (waiting,
 * with no buffer locks held) because entries move.
 */
void
fr_split_root_leaf(FrState *state, IndexTuple itup)
{
	Relation	index = state->index;
	Buffer		mbuf,
				lbuf,
				rbuf,
				rootbuf;
	Page		lpage;
	FrMetaPage	meta;

	fr_acquire_flush_lock(index, true);
	mbuf = fr_read_buffer(index, FR_META_BLKNO, BUFFER_LOCK_EXCLUSIVE);
	meta = FrPageGetMeta(BufferGetPage(mbuf));
	lbuf = fr_read_buffer(index, meta->root, BUFFER_LOCK_EXCLUSIVE);
	lpage = BufferGetPage(lbuf);
	if (FrPageIsRoot(lpage) && FrPageIsLeaf(lpage) &&
		PageGetFreeSpace(lpage) < MAXALIGN(IndexTupleSize(itup)))
	{
		OffsetNumber maxoff = PageGetMaxOffsetNumber(lpage);
		IndexTuple *items = palloc(sizeof(IndexTuple) * maxoff);
		Size		total = 0,
					cum = 0,
					sz;
		int			i,
					split = 0;
		GenericXLogState *xs;
		Page		mp,
					rootp,
					lp,
					rp;
		FrNodeItem	left,
					right;
		Size		lsz,
					rsz;

		for (i = 0; i < maxoff; i++)
		{
			items[i] = CopyIndexTuple((IndexTuple) PageGetItem(lpage, PageGetItemId(lpage, i + 1)));
			total += fr_item_space(items[i]);
		}
		while (split < maxoff - 1 && cum + fr_item_space(items[split]) <= total / 2)
			cum += fr_item_space(items[split++]);
		if (split == 0)
			split = 1;

		rbuf = fr_new_buffer(index);
		rootbuf = fr_new_buffer(index);
		left = fr_make_node_item(NULL, BufferGetBlockNumber(lbuf),
								 FR_ITEM_PART_START, &lsz);
		right = fr_make_node_item(items[split], BufferGetBlockNumber(rbuf), 0, &rsz);

		xs = GenericXLogStart(index);
		mp = GenericXLogRegisterBuffer(xs, mbuf, 0);
		rootp = GenericXLogRegisterBuffer(xs, rootbuf, GENERIC_XLOG_FULL_IMAGE);
		lp = GenericXLogRegisterBuffer(xs, lbuf, GENERIC_XLOG_FULL_IMAGE);
		rp = GenericXLogRegisterBuffer(xs, rbuf, GENERIC_XLOG_FULL_IMAGE);
		fr_init_page(rootp, FR_NODE | FR_ROOT, 1);
		if (PageAddItem(rootp, (Item) left, lsz, InvalidOffsetNumber, false, false) == InvalidOffsetNumber ||
			PageAddItem(rootp, (Item) right, rsz, InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to build new fractal root");
		fr_init_page(lp, FR_LEAF, 0);
		fr_init_page(rp, FR_LEAF, 0);
		/* plain, like every leaf that can become a root leaf again */
		if (!fr_leaf_fill(state, lp, items, split, false) ||
			!fr_leaf_fill(state, rp, items + split, maxoff - split, false))
			elog(ERROR, "fractal root leaf split does not fit");
		FrPageGetMeta(mp)->root = BufferGetBlockNumber(rootbuf);
		FrPageGetMeta(mp)->height = 1;
		GenericXLogFinish(xs);
		UnlockReleaseBuffer(rbuf);
		UnlockReleaseBuffer(rootbuf);
		(void) sz;
	}
	UnlockReleaseBuffer(lbuf);
	UnlockReleaseBuffer(mbuf);
	fr_release_flush_lock(index);
}
