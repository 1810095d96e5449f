/*-------------------------------------------------------------------------
 *
 * fr_split.c
 *	  Splits of the fractal index: leaf rewrites and splits during a flush,
 *	  node splits (at a partition boundary), root growth, the root leaf
 *	  split, and partition splits.
 *
 * Every structural change is top-down: a page is split while its parent is
 * held exclusively, and the root grows under the metapage lock, so no state
 * is ever "half split".  Each split is one generic WAL record of at most
 * four pages (src/fr_xlog.h lists them).  Callers hold the flush lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/rel.h"

#include "fractal.h"

/* ------------------------------------------------------------------------
 * Leaf rewrite and split (during a flush)
 * ------------------------------------------------------------------------
 */

/* does items[0..n) fit in one (non-root) leaf? */
static bool
fr_leaf_fits(FrState *state, IndexTuple *items, int n)
{
	return fr_leaf_fits_size(state, items, n, FrPageUsable);
}

/* Cut points for filling pages from the left to fillfactor (sequential keys). */
static int
fr_leaf_cut_fill(FrState *state, IndexTuple *merged, int n, int *cuts)
{
	Size		target = FrPageUsable * state->fillfactor / 100;
	int			pos = 0,
				k;

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

/* Cut points giving k pages equal shares of the raw bytes; false if none fit. */
static bool
fr_leaf_cut_even(FrState *state, IndexTuple *merged, int n, int k, int *cuts)
{
	Size		total = 0,
				cum = 0;
	int			i,
				c = 0;

	for (i = 0; i < n; i++)
		total += IndexTupleSize(merged[i]);
	for (i = 0; i < n && c < k - 1; i++)
	{
		cum += IndexTupleSize(merged[i]);
		if (cum * k >= total * (c + 1) && i + 1 < n)
			cuts[c++] = i + 1;
	}
	if (c < k - 1)
		return false;
	for (i = 0; i < k; i++)
	{
		int			from = (i == 0) ? 0 : cuts[i - 1];
		int			to = (i == k - 1) ? n : cuts[i];

		if (to <= from || !fr_leaf_fits(state, merged + from, to - from))
			return false;
	}
	return true;
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
fr_leaf_plan(FrState *state, IndexTuple *merged, int n, bool rightmost,
			 int *cuts)
{
	int			k;

	if (fr_leaf_fits(state, merged, n))
		return 1;
	if (rightmost)
		return fr_leaf_cut_fill(state, merged, n, cuts);
	for (k = 2; k <= 3; k++)
		if (fr_leaf_cut_even(state, merged, n, k, cuts))
			return k;
	return 0;
}

/* merge sorted old[0..nold) and newi[0..take) into 'merged'; returns count */
static int
fr_merge_entries(FrState *state, IndexTuple *old, int nold,
				 IndexTuple *newi, int take, IndexTuple *merged)
{
	int			i = 0,
				j = 0,
				n = 0;

	while (i < nold || j < take)
	{
		if (j >= take ||
			(i < nold && fr_compare_tuples(state, old[i], newi[j]) < 0))
			merged[n++] = old[i++];
		else
			merged[n++] = newi[j++];
	}
	return n;
}

/*
 * Plan a leaf rewrite: merge old entries with the longest prefix of
 * newi[0..nn) (halving it) whose result fits in at most three pages.
 * Fills merged/nmerged/cuts and returns the number of pages, with *take
 * set to the prefix length; returns 0 when not even one new entry fits.
 */
static int
fr_leaf_plan_merge(FrState *state, IndexTuple *old, int nold, IndexTuple *newi,
				   int nn, bool rightmost, IndexTuple *merged, int *nmerged,
				   int *cuts, int *take)
{
	for (*take = nn; *take > 0; *take = (*take > 1) ? *take / 2 : 0)
	{
		int			npages;

		*nmerged = fr_merge_entries(state, old, nold, newi, *take, merged);
		npages = fr_leaf_plan(state, merged, *nmerged, rightmost, cuts);
		if (npages > 0)
			return npages;
	}
	return 0;
}

/*
 * Set the leaf filter slots of the npages leaves just planned (leaves[k]
 * gets piece k of merged[0..nmerged), at item off + k of node 'np' as it
 * is after the write); the node's last child gets none.
 */
static void
fr_leaf_write_filters(Page fp, Page np, OffsetNumber off, BlockNumber *leaves,
					  IndexTuple *merged, int nmerged, int npages, int *cuts)
{
	OffsetNumber partoff = fr_node_partition_start(np, off);
	int			k;

	for (k = 0; k < npages; k++)
	{
		int			from = (k == 0) ? 0 : cuts[k - 1];
		int			to = (k < npages - 1) ? cuts[k] : nmerged;

		(void) fr_lfilter_set(fp, np, partoff, leaves[k], merged + from,
							  to - from, off + k != PageGetMaxOffsetNumber(np));
	}
}

/*
 * Can the leaf write planned for 'lbuf' be logged as XLOG_FR_LEAF_SPLIT?
 * Only with the resource manager registered, for a split of a plain leaf
 * into two plain leaves, and when the old entries are exactly the leaf's
 * (a VACUUM flush drops dead ones first).
 */
static bool
fr_leaf_split_compact(FrState *state, Buffer lbuf, int nold, int npages)
{
	Page		lp = BufferGetPage(lbuf);

	return fr_custom_wal && npages == 2 &&
		state->compression == FR_COMPRESSION_NONE &&
		state->vac_callback == NULL &&
		(FrPageGetOpaque(lp)->flags & FR_COMPRESSED) == 0 &&
		PageGetMaxOffsetNumber(lp) == nold;
}

/*
 * The bitmap and new entries that XLOG_FR_LEAF_SPLIT logs for the old leaf
 * (fr_xlog.h): which of merged[0..nleft) are new, and those entries.  An
 * entry is old when it is the next of old[] (merged holds the same
 * pointers).
 */
static char *
fr_leaf_split_data(IndexTuple *old, int nold, IndexTuple *merged, int nleft,
				   Size *len)
{
	Size		maplen = (nleft + 7) / 8;
	Size		size = maplen;
	char	   *data,
			   *p;
	int			i = 0,
				k;

	for (k = 0; k < nleft; k++)
		if (i < nold && merged[k] == old[i])
			i++;
		else
			size += IndexTupleSize(merged[k]);
	data = palloc0(size);
	p = data + maplen;
	for (i = 0, k = 0; k < nleft; k++)
	{
		if (i < nold && merged[k] == old[i])
		{
			i++;
			continue;
		}
		data[k / 8] |= (char) (1 << (k % 8));
		memcpy(p, merged[k], IndexTupleSize(merged[k]));
		p += IndexTupleSize(merged[k]);
	}
	*len = size;
	return data;
}

/*
 * fr_leaf_write for a split that fr_leaf_split_compact allows: the pages
 * are built in local copies (the leaf gets merged[0..cut), a new leaf the
 * rest, the node its pivot 'pitem', the filter page both leaves' slots) and
 * installed by fr_write_leaf_split, whose record logs the new leaf's image
 * but only the new entries the old leaf keeps.
 */
static void
fr_leaf_split_logged(FrState *state, Buffer nodebuf, OffsetNumber off,
					 Buffer lbuf, IndexTuple *old, int nold,
					 IndexTuple *merged, int nmerged, int cut,
					 FrNodeItem pitem, Size pitem_sz)
{
	PGAlignedBlock node,
				leaf,
				right,
				filters;
	FrLeafSplitWrite w;
	BlockNumber leaves[2];
	int			cuts[1] = {cut};

	/* the new leaf, and the partition's filter page (node, leaf, filters) */
	w.nodebuf = nodebuf;
	w.lbuf = lbuf;
	w.rbuf = fr_new_buffer(state->index);
	leaves[0] = BufferGetBlockNumber(lbuf);
	pitem->child = leaves[1] = BufferGetBlockNumber(w.rbuf);
	w.fbuf = fr_lfilter_lock(state, nodebuf,
							 fr_node_partition_start(BufferGetPage(nodebuf), off));

	/* the new contents, built where a failure is still an ERROR */
	memcpy(node.data, BufferGetPage(nodebuf), BLCKSZ);
	if (PageAddItem(node.data, (Item) pitem, pitem_sz, off + 1, false, false) ==
		InvalidOffsetNumber)
		elog(ERROR, "failed to add pivot to fractal node");
	fr_init_page(leaf.data, FR_LEAF, 0);
	fr_init_page(right.data, FR_LEAF, 0);
	if (!fr_leaf_fill(state, leaf.data, merged, cut, false) ||
		!fr_leaf_fill(state, right.data, merged + cut, nmerged - cut, false))
		elog(ERROR, "fractal leaf split does not fit");
	if (BufferIsValid(w.fbuf))
	{
		memcpy(filters.data, BufferGetPage(w.fbuf), BLCKSZ);
		fr_leaf_write_filters(filters.data, node.data, off, leaves, merged,
							  nmerged, 2, cuts);
	}

	/* install and log */
	w.node = node.data;
	w.leaf = leaf.data;
	w.right = right.data;
	w.filters = filters.data;
	w.off = off;
	w.pitem = pitem;
	w.pitem_sz = pitem_sz;
	w.nold = (uint16) nold;
	w.nleft = (uint16) cut;
	w.leafdata = fr_leaf_split_data(old, nold, merged, cut, &w.leafdata_len);
	fr_write_leaf_split(state->index, &w);
	UnlockReleaseBuffer(w.rbuf);
	if (BufferIsValid(w.fbuf))
		UnlockReleaseBuffer(w.fbuf);
	pfree(w.leafdata);
}

/*
 * Write the planned leaf pages: the leaf in 'lbuf' gets merged[0..cuts[0])
 * and each new page the next piece, its pivot added to the node after
 * 'off'.  One record: node (when split), leaf, new leaves, and the
 * partition's leaf filter page with the slots of every leaf written.  With
 * two new leaves the record is full (four pages), so those slots are
 * freed by a record before it and set by one after it.
 */
static void
fr_leaf_write(FrState *state, Buffer nodebuf, OffsetNumber off, Buffer lbuf,
			  IndexTuple *old, int nold,
			  IndexTuple *merged, int nmerged, int npages, int *cuts,
			  FrNodeItem *pitems, Size *pitem_sz)
{
	Buffer		newbufs[2] = {InvalidBuffer, InvalidBuffer};
	BlockNumber leaves[3];
	GenericXLogState *xs;
	Buffer		fbuf;
	Page		np,
				lp,
				fp = NULL;
	int			k;

	if (fr_leaf_split_compact(state, lbuf, nold, npages))
	{
		fr_leaf_split_logged(state, nodebuf, off, lbuf, old, nold, merged,
							 nmerged, cuts[0], pitems[0], pitem_sz[0]);
		return;
	}
	leaves[0] = BufferGetBlockNumber(lbuf);
	for (k = 0; k < npages - 1; k++)
	{
		newbufs[k] = fr_new_buffer(state->index);
		pitems[k]->child = leaves[k + 1] = BufferGetBlockNumber(newbufs[k]);
	}
	fbuf = fr_lfilter_lock(state, nodebuf,
						   fr_node_partition_start(BufferGetPage(nodebuf), off));
	if (BufferIsValid(fbuf) && npages == 3)
		fr_lfilter_forget(state->index, fbuf, leaves, npages);

	xs = GenericXLogStart(state->index);
	np = (npages > 1) ? GenericXLogRegisterBuffer(xs, nodebuf, 0) : NULL;
	lp = fr_generic_register_whole(xs, lbuf);
	if (BufferIsValid(fbuf) && npages < 3)
		fp = GenericXLogRegisterBuffer(xs, fbuf, 0);
	fr_init_page(lp, FR_LEAF, 0);
	if (!fr_leaf_fill(state, lp, merged, npages > 1 ? cuts[0] : nmerged, true))
		elog(ERROR, "fractal leaf rewrite does not fit");
	for (k = 0; k < npages - 1; k++)
	{
		Page		rp = fr_generic_register_whole(xs, newbufs[k]);
		int			to = (k + 1 < npages - 1) ? cuts[k + 1] : nmerged;

		fr_init_page(rp, FR_LEAF, 0);
		if (!fr_leaf_fill(state, rp, merged + cuts[k], to - cuts[k], true))
			elog(ERROR, "fractal leaf split does not fit");
		if (PageAddItem(np, (Item) pitems[k], pitem_sz[k], off + 1 + k,
						false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to add pivot to fractal node");
	}
	if (fp != NULL)
		fr_leaf_write_filters(fp, np ? np : BufferGetPage(nodebuf), off, leaves,
							  merged, nmerged, npages, cuts);
	fr_generic_finish(xs);
	for (k = 0; k < npages - 1; k++)
		UnlockReleaseBuffer(newbufs[k]);

	/* the slots that did not fit in the record */
	if (BufferIsValid(fbuf) && fp == NULL)
	{
		xs = GenericXLogStart(state->index);
		fr_leaf_write_filters(GenericXLogRegisterBuffer(xs, fbuf, 0),
							  BufferGetPage(nodebuf), off, leaves,
							  merged, nmerged, npages, cuts);
		fr_generic_finish(xs);
	}
	if (BufferIsValid(fbuf))
		UnlockReleaseBuffer(fbuf);
}

/*
 * Rewrite the leaf in 'lbuf' (child 'off' of the level-1 node in 'nodebuf';
 * both held exclusively) with its entries old[0..nold) merged with as many
 * of the sorted new entries newi[0..nn) as fit in at most three pages,
 * splitting it when needed.  Returns how many new entries were taken, or -1
 * when the node has no room for the new pivots.
 *
 * A compressed leaf can hold more than three plain pages' worth of
 * entries: when compression has since been switched off and the plain form
 * cannot take even one new entry, the leaf is rewritten compressed all the
 * same (REINDEX rewrites everything with the current setting).
 */
int
fr_leaf_rewrite(FrState *state, Buffer nodebuf, OffsetNumber off, Buffer lbuf,
				IndexTuple *old, int nold, IndexTuple *newi, int nn)
{
	Page		npage = BufferGetPage(nodebuf);
	IndexTuple *merged = palloc(sizeof(IndexTuple) * (nold + nn));
	FrNodeItem	pitems[2] = {NULL, NULL};
	Size		pitem_sz[2] = {0, 0};
	Size		pivots_size = 0;
	FrState		mstate = *state;
	FrState		zstate;
	bool		rightmost;
	int			nmerged = 0,
				cuts[2],
				take,
				npages,
				k;

	/*
	 * plan: how many new entries fit, in how many pages; the frames
	 * compressed to size the pages are kept to fill them
	 */
	if (state->compression == FR_COMPRESSION_ZSTD)
	{
		/* a compressed leaf's blocks that come out the same are not redone */
		mstate.zmemo = fr_zmemo_create(&mstate);
		fr_zmemo_seed(&mstate, BufferGetPage(lbuf), BufferGetBlockNumber(lbuf),
					  old, nold);
	}
	zstate = mstate;
	state = &mstate;
	rightmost = (off == PageGetMaxOffsetNumber(npage)) &&
		(nold == 0 || fr_compare_tuples(state, newi[0], old[nold - 1]) > 0);
	npages = fr_leaf_plan_merge(state, old, nold, newi, nn, rightmost,
								merged, &nmerged, cuts, &take);
	if (npages == 0 && state->compression == FR_COMPRESSION_NONE)
	{
		zstate.compression = FR_COMPRESSION_ZSTD;
		npages = fr_leaf_plan_merge(&zstate, old, nold, newi, nn, rightmost,
									merged, &nmerged, cuts, &take);
	}
	if (npages == 0)
		elog(ERROR, "fractal leaf %u cannot take a single new entry",
			 BufferGetBlockNumber(lbuf));

	/* room for the new pivots in the node? */
	for (k = 0; k < npages - 1; k++)
	{
		pitems[k] = fr_make_node_item(merged[cuts[k]], InvalidBlockNumber, 0,
									  &pitem_sz[k]);
		pivots_size += pitem_sz[k] + sizeof(ItemIdData);
	}
	if (pivots_size > PageGetExactFreeSpace(npage))
		take = -1;
	else
		fr_leaf_write(&zstate, nodebuf, off, lbuf, old, nold, merged, nmerged,
					  npages, cuts, pitems, pitem_sz);
	fr_zmemo_free(mstate.zmemo);
	return take;
}

/* ------------------------------------------------------------------------
 * The rightmost leaf of a compressed index
 * ------------------------------------------------------------------------
 *
 * Keys that arrive in order go straight to the rightmost leaf
 * (fr_insert.c, the rightmost fast path), which appends to a plain leaf
 * only.  In an index with compression on, that leaf is kept plain and,
 * when full, moved into its left sibling compressed (fr_leaf_spill_left),
 * or, when the sibling has no room, compressed in place behind a new plain
 * rightmost leaf (fr_leaf_close_right).  Both need the next key past every
 * entry of the leaf (it becomes the new pivot), the level-1 node and the
 * leaf held exclusively, and the leaf's partition chain empty (the caller,
 * fr_split_rightmost), so no buffered message changes partition when a
 * pivot moves.
 */

/* is 'itup' past every entry of the leaf view 'v'? */
static bool
fr_past_end(FrState *state, FrLeafView *v, IndexTuple itup)
{
	return v->n == 0 || fr_compare_tuples(state, itup, v->items[v->n - 1]) > 0;
}

/*
 * Is 'itup' past every entry of the leaf 'page' (locked by the caller)?
 * For a compressed leaf only its last block is decompressed.
 */
bool
fr_leaf_past_end(FrState *state, Page page, BlockNumber blkno, IndexTuple itup)
{
	IndexTuple	fences[FR_Z_MAX_BLOCKS];
	FrLeafView	v;
	bool		past;
	int			nb = fr_leaf_fences(state->index, page, blkno, fences);

	if (FrPageIsCompressed(page))
		fr_leaf_view_part(state->index, page, blkno, nb - 1, nb - 1, &v);
	else
		fr_leaf_view(state->index, page, blkno, &v);
	past = fr_past_end(state, &v, itup);
	fr_leaf_view_release(&v);
	return past;
}

/*
 * Move every entry of the rightmost leaf in 'pbuf' (child 'off' of the
 * level-1 node in 'nodebuf'; a full plain leaf, or a compressed one, which
 * appends cannot take) into its left sibling, rewritten compressed, and
 * start the leaf again with 'itup' alone, plain, its pivot raised to
 * 'itup'.  One record: node, sibling, leaf and the sibling's filter page
 * (its slot then holds exactly its new keys; the rightmost leaf has none).
 * Returns false, having changed nothing, when compression is off, there is
 * no left sibling leaf, 'itup' is not past the leaf's entries, the node has
 * no room for the longer pivot, or the entries do not fit one page.
 */
bool
fr_leaf_spill_left(FrState *state, Buffer nodebuf, OffsetNumber off,
				   Buffer pbuf, IndexTuple itup)
{
	Relation	index = state->index;
	Page		np = BufferGetPage(nodebuf);
	OffsetNumber loff = off - 1;
	Buffer		lbuf,
				fbuf;
	FrLeafView	lv,
				pv;
	IndexTuple *merged;
	FrNodeItem	old = fr_node_get_item(np, off),
				item;
	Size		itemsz;
	PGAlignedBlock lnew;
	FrState		mstate = *state;
	GenericXLogState *xs;
	Page		nreg,
				preg,
				freg;
	int			nmerged = 0,
				k;
	bool		ok;

	if (state->compression != FR_COMPRESSION_ZSTD || off <= FirstOffsetNumber)
		return false;
	fr_leaf_view(index, BufferGetPage(pbuf), BufferGetBlockNumber(pbuf), &pv);
	if (!fr_past_end(state, &pv, itup))
	{
		fr_leaf_view_release(&pv);
		return false;
	}

	/* the sibling with the leaf's entries after its own, in one page */
	lbuf = fr_read_buffer(index, fr_node_get_item(np, loff)->child,
						  BUFFER_LOCK_EXCLUSIVE);
	ok = FrPageIsLeaf(BufferGetPage(lbuf));
	if (ok)
	{
		fr_leaf_view(index, BufferGetPage(lbuf), BufferGetBlockNumber(lbuf), &lv);
		merged = palloc(sizeof(IndexTuple) * Max(lv.n + pv.n, 1));
		for (k = 0; k < lv.n; k++)
			merged[nmerged++] = lv.items[k];
		for (k = 0; k < pv.n; k++)
			merged[nmerged++] = pv.items[k];
		fr_init_page(lnew.data, FR_LEAF, 0);

		/* the sibling's blocks are kept, all but its last one (fr_zmemo_seed) */
		mstate.zmemo = fr_zmemo_create(&mstate);
		fr_zmemo_seed(&mstate, BufferGetPage(lbuf), BufferGetBlockNumber(lbuf),
					  lv.items, lv.n);
		ok = fr_leaf_fill(&mstate, lnew.data, merged, nmerged, true);
		fr_zmemo_free(mstate.zmemo);
	}

	/* the leaf's item with 'itup' as its pivot, where the old one was */
	item = fr_make_node_item(itup, old->child, old->flags, &itemsz);
	item->chain_tail = old->chain_tail;
	item->chain_pages = old->chain_pages;
	item->filter_hi = old->filter_hi;
	item->filter_lo = old->filter_lo;
	if (ok && PageGetExactFreeSpace(np) + MAXALIGN(ItemIdGetLength(PageGetItemId(np, off))) <
		MAXALIGN(itemsz))
		ok = false;
	if (!ok)
	{
		if (FrPageIsLeaf(BufferGetPage(lbuf)))
			fr_leaf_view_release(&lv);
		UnlockReleaseBuffer(lbuf);
		fr_leaf_view_release(&pv);
		return false;
	}

	/* install: node, sibling, leaf, the sibling's filter slot */
	fbuf = fr_lfilter_lock(state, nodebuf, fr_node_partition_start(np, loff));
	xs = GenericXLogStart(index);
	nreg = GenericXLogRegisterBuffer(xs, nodebuf, 0);
	memcpy(fr_generic_register_whole(xs, lbuf), lnew.data, BLCKSZ);
	preg = fr_generic_register_whole(xs, pbuf);
	freg = BufferIsValid(fbuf) ? GenericXLogRegisterBuffer(xs, fbuf, 0) : NULL;
	if (!PageIndexTupleOverwrite(nreg, off, (Item) item, itemsz))
		elog(ERROR, "failed to replace a pivot of fractal node");
	fr_init_page(preg, FR_LEAF, 0);
	if (PageAddItem(preg, (Item) itup, IndexTupleSize(itup), FirstOffsetNumber,
					false, false) == InvalidOffsetNumber)
		elog(ERROR, "failed to add entry to fractal leaf");
	if (freg != NULL)
		(void) fr_lfilter_set(freg, nreg, fr_node_partition_start(nreg, loff),
							  BufferGetBlockNumber(lbuf), merged, nmerged, true);
	fr_generic_finish(xs);
	fr_count(FR_CTR_RIGHTMOST_SPILLS, 1);

	if (BufferIsValid(fbuf))
		UnlockReleaseBuffer(fbuf);
	fr_leaf_view_release(&lv);
	UnlockReleaseBuffer(lbuf);
	fr_leaf_view_release(&pv);
	pfree(merged);
	pfree(item);
	return true;
}

/*
 * Rewrite the rightmost leaf in 'pbuf' (child 'off' of the level-1 node in
 * 'nodebuf') with its own entries, compressed when that is smaller, and
 * give it a new plain right sibling holding 'itup' alone, the new
 * rightmost leaf, with 'itup' as its pivot.  The old leaf stops being the
 * last child, so it gets a slot of its keys.  One record: node, leaf, new
 * leaf, filter page.  Returns false, having changed nothing, when 'itup' is
 * not past the leaf's entries or the node has no room for the pivot.
 */
bool
fr_leaf_close_right(FrState *state, Buffer nodebuf, OffsetNumber off,
					Buffer pbuf, IndexTuple itup)
{
	Relation	index = state->index;
	Page		np = BufferGetPage(nodebuf);
	FrLeafView	pv;
	FrNodeItem	item;
	Size		itemsz;
	PGAlignedBlock pnew;
	GenericXLogState *xs;
	Buffer		rbuf,
				fbuf;
	Page		nreg,
				rreg,
				freg;

	fr_leaf_view(index, BufferGetPage(pbuf), BufferGetBlockNumber(pbuf), &pv);
	item = fr_make_node_item(itup, InvalidBlockNumber, 0, &itemsz);
	fr_init_page(pnew.data, FR_LEAF, 0);
	if (!fr_past_end(state, &pv, itup) ||
		PageGetExactFreeSpace(np) < MAXALIGN(itemsz) + sizeof(ItemIdData) ||
		!fr_leaf_fill(state, pnew.data, pv.items, pv.n, true))
	{
		fr_leaf_view_release(&pv);
		pfree(item);
		return false;
	}

	/* install: node with the new child, leaf, new leaf, the leaf's slot */
	rbuf = fr_new_buffer(index);
	item->child = BufferGetBlockNumber(rbuf);
	fbuf = fr_lfilter_lock(state, nodebuf, fr_node_partition_start(np, off));
	xs = GenericXLogStart(index);
	nreg = GenericXLogRegisterBuffer(xs, nodebuf, 0);
	memcpy(fr_generic_register_whole(xs, pbuf), pnew.data, BLCKSZ);
	rreg = fr_generic_register_whole(xs, rbuf);
	freg = BufferIsValid(fbuf) ? GenericXLogRegisterBuffer(xs, fbuf, 0) : NULL;
	if (PageAddItem(nreg, (Item) item, itemsz, off + 1, false, false) ==
		InvalidOffsetNumber)
		elog(ERROR, "failed to add pivot to fractal node");
	fr_init_page(rreg, FR_LEAF, 0);
	if (PageAddItem(rreg, (Item) itup, IndexTupleSize(itup), FirstOffsetNumber,
					false, false) == InvalidOffsetNumber)
		elog(ERROR, "failed to add entry to fractal leaf");
	if (freg != NULL)
		(void) fr_lfilter_set(freg, nreg, fr_node_partition_start(nreg, off),
							  BufferGetBlockNumber(pbuf), pv.items, pv.n, true);
	fr_generic_finish(xs);

	UnlockReleaseBuffer(rbuf);
	if (BufferIsValid(fbuf))
		UnlockReleaseBuffer(fbuf);
	fr_leaf_view_release(&pv);
	pfree(item);
	return true;
}

/* ------------------------------------------------------------------------
 * Node splits and root growth
 * ------------------------------------------------------------------------
 */

/* a palloc'd copy of a node's items, 1-based like the offsets */
typedef struct FrNodeCopy
{
	FrNodeItem *items;
	Size	   *sizes;
	OffsetNumber maxoff;
	uint16		level;
} FrNodeCopy;

static void
fr_node_copy(Page page, FrNodeCopy *copy)
{
	OffsetNumber off;

	copy->maxoff = PageGetMaxOffsetNumber(page);
	copy->level = FrPageGetOpaque(page)->level;
	copy->items = palloc(sizeof(FrNodeItem) * (copy->maxoff + 1));
	copy->sizes = palloc(sizeof(Size) * (copy->maxoff + 1));
	for (off = FirstOffsetNumber; off <= copy->maxoff; off++)
	{
		ItemId		iid = PageGetItemId(page, off);

		copy->sizes[off] = ItemIdGetLength(iid);
		copy->items[off] = (FrNodeItem) palloc(copy->sizes[off]);
		memcpy(copy->items[off], PageGetItem(page, iid), copy->sizes[off]);
	}
}

/*
 * The partition boundary (a PART_START item other than the first) nearest
 * the middle of the node by bytes, or InvalidOffsetNumber if there is none.
 */
static OffsetNumber
fr_node_split_point(FrNodeCopy *copy)
{
	OffsetNumber off,
				best = InvalidOffsetNumber;
	Size		total = 0,
				cum = 0,
				bestdiff = 0;

	for (off = FirstOffsetNumber; off <= copy->maxoff; off++)
		total += MAXALIGN(copy->sizes[off]) + sizeof(ItemIdData);
	for (off = FirstOffsetNumber; off <= copy->maxoff; off++)
	{
		if (off > FirstOffsetNumber && (copy->items[off]->flags & FR_ITEM_PART_START))
		{
			Size		diff = (cum > total / 2) ? cum - total / 2 : total / 2 - cum;

			if (best == InvalidOffsetNumber || diff < bestdiff)
			{
				best = off;
				bestdiff = diff;
			}
		}
		cum += MAXALIGN(copy->sizes[off]) + sizeof(ItemIdData);
	}
	return best;
}

/* add an item to a node page being built */
static void
fr_node_add(Page page, FrNodeItem item, Size size)
{
	if (PageAddItem(page, (Item) item, size, InvalidOffsetNumber,
					false, false) == InvalidOffsetNumber)
		elog(ERROR, "failed to add item to fractal node");
}

/*
 * Rebuild the node halves: 'cp' gets items [1, best), 'rp' a minus-infinity
 * item for the child of 'best' (keeping its chain) and items (best, maxoff].
 */
static void
fr_node_write_halves(FrNodeCopy *copy, OffsetNumber best, Page cp, Page rp)
{
	OffsetNumber off;
	FrNodeItem	first;
	Size		sz;

	fr_init_page(cp, FR_NODE, copy->level);
	for (off = FirstOffsetNumber; off < best; off++)
		fr_node_add(cp, copy->items[off], copy->sizes[off]);
	fr_init_page(rp, FR_NODE, copy->level);
	first = fr_make_node_item(NULL, copy->items[best]->child,
							  FR_ITEM_PART_START, &sz);
	first->chain_tail = copy->items[best]->chain_tail;
	first->chain_pages = copy->items[best]->chain_pages;
	FrItemSetFilter(first, FrItemGetFilter(copy->items[best]));
	fr_node_add(rp, first, sz);
	for (off = best + 1; off <= copy->maxoff; off++)
		fr_node_add(rp, copy->items[off], copy->sizes[off]);
}

/* Make 'rootp' a new root over the old root 'left' and the item 'upitem'. */
static void
fr_write_new_root(Page mp, Page rootp, BlockNumber rootblk, BlockNumber left,
				  FrNodeItem upitem, Size upsz, uint16 level)
{
	FrMetaPage	meta = FrPageGetMeta(mp);
	FrNodeItem	litem;
	Size		lsz;

	fr_init_page(rootp, FR_NODE | FR_ROOT, level);
	litem = fr_make_node_item(NULL, left, FR_ITEM_PART_START, &lsz);
	fr_node_add(rootp, litem, lsz);
	fr_node_add(rootp, upitem, upsz);
	meta->root = rootblk;
	meta->height = level;
}

/*
 * Split the node in 'cbuf' (the child at 'poff' of the node in 'pbuf', or
 * the root when pbuf is InvalidBuffer, in which case 'metabuf' is held and
 * a new root is made) at the partition boundary nearest its middle.  Chains
 * belong to partitions, so they move with them and nothing is copied.  All
 * buffers are held exclusively by the caller.  Returns false when the node
 * has no partition boundary or the parent has no room.
 */
bool
fr_split_node(FrState *state, Buffer pbuf, OffsetNumber poff, Buffer cbuf,
			  Buffer metabuf)
{
	Relation	index = state->index;
	FrNodeCopy	copy;
	OffsetNumber best;
	FrNodeItem	upitem;
	Size		upsz;
	Buffer		rbuf,
				newroot = InvalidBuffer;
	GenericXLogState *xs;
	Page		cp,
				rp;

	/* choose the split point, and check the parent has room for it */
	fr_node_copy(BufferGetPage(cbuf), &copy);
	best = fr_node_split_point(&copy);
	if (best == InvalidOffsetNumber)
		return false;
	upitem = fr_make_node_item(FrNodeItemGetPivot(copy.items[best]),
							   InvalidBlockNumber, 0, &upsz);
	if (BufferIsValid(pbuf) &&
		upsz + sizeof(ItemIdData) > PageGetExactFreeSpace(BufferGetPage(pbuf)))
		return false;

	/* new pages, then one record: parent (or metapage + new root), halves */
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
		/* registration order is locking order: metapage, then new root */
		Page		mp = GenericXLogRegisterBuffer(xs, metabuf, 0);
		Page		rootp = fr_generic_register_whole(xs, newroot);

		fr_write_new_root(mp, rootp, BufferGetBlockNumber(newroot),
						  BufferGetBlockNumber(cbuf), upitem, upsz, copy.level + 1);
	}
	cp = fr_generic_register_whole(xs, cbuf);
	rp = fr_generic_register_whole(xs, rbuf);
	fr_node_write_halves(&copy, best, cp, rp);
	fr_generic_finish(xs);

	UnlockReleaseBuffer(rbuf);
	if (BufferIsValid(newroot))
		UnlockReleaseBuffer(newroot);
	return true;
}

/*
 * The root (exclusively locked in *cur) is short of room: grow the tree.
 * The root is relocked under the metapage (metapage first: top-down).
 * Returns true when the tree grew (*cur released), false otherwise with
 * *cur exclusively locked on the current root.
 */
static bool
fr_split_grow_root(FrState *state, Buffer *cur)
{
	Relation	index = state->index;
	Buffer		mbuf;
	Page		page;

	UnlockReleaseBuffer(*cur);
	mbuf = fr_read_buffer(index, FR_META_BLKNO, BUFFER_LOCK_EXCLUSIVE);
	*cur = fr_read_buffer(index, FrPageGetMeta(BufferGetPage(mbuf))->root,
						  BUFFER_LOCK_EXCLUSIVE);
	page = BufferGetPage(*cur);
	if (FrPageIsRoot(page) && FrPageIsNode(page) &&
		PageGetExactFreeSpace(page) < FR_NODE_SPLIT_FREE &&
		fr_split_node(state, InvalidBuffer, InvalidOffsetNumber, *cur, mbuf))
	{
		/* fr_split_node rebuilt the old root as an ordinary node */
		UnlockReleaseBuffer(*cur);
		UnlockReleaseBuffer(mbuf);
		return true;
	}
	UnlockReleaseBuffer(mbuf);
	return false;
}

/*
 * Walk from the root toward 'key' down to 'level', splitting every node on
 * the way that is short of room, each while its parent is held exclusively
 * (lock coupling).  The root is split by growing the tree under the
 * metapage lock.  Caller holds the flush lock and no buffer locks.
 */
void
fr_split_descend(FrState *state, IndexTuple key, int level)
{
	Relation	index = state->index;
	Buffer		cur;
	Page		page;

	/* lock the root; grow the tree while the root is short of room */
	for (;;)
	{
		uint32		height;

		CHECK_FOR_INTERRUPTS();
		cur = fr_lock_root(index, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(cur);
		height = FrPageGetOpaque(page)->level;
		if ((int) height < level || height == 0)
		{
			UnlockReleaseBuffer(cur);
			return;
		}
		if (PageGetExactFreeSpace(page) >= FR_NODE_SPLIT_FREE ||
			!fr_split_grow_root(state, &cur))
			break;
	}

	/* descend with exclusive lock coupling, splitting short children */
	page = BufferGetPage(cur);
	while (FrPageIsNode(page) && FrPageGetOpaque(page)->level > level)
	{
		OffsetNumber off = fr_node_find_child(state, page, key);
		Buffer		child = fr_read_buffer(index, fr_node_get_item(page, off)->child,
										   BUFFER_LOCK_EXCLUSIVE);
		Page		cpage = BufferGetPage(child);

		if (FrPageIsNode(cpage) &&
			PageGetExactFreeSpace(cpage) < FR_NODE_SPLIT_FREE &&
			fr_split_node(state, cur, off, child, InvalidBuffer))
		{
			UnlockReleaseBuffer(child);
			continue;			/* re-route at 'cur' */
		}
		UnlockReleaseBuffer(cur);
		cur = child;
		page = cpage;
	}
	UnlockReleaseBuffer(cur);
}

/* the first item of part p of nparts of the 'count' items from 'start' */
#define FR_PART_CUT(start, count, p, nparts) \
	((start) + (OffsetNumber) ((long) (count) * (p) / (nparts)))

/*
 * The most children a partition of the node on 'page' may cover:
 * fr_partition_limit for the node's average item, and, in an in-memory
 * root above level 1 (fr_root_spread), a FR_ROOT_PARTITIONS-th of its
 * children (at least 2; fewer partitions when buffer_pages is too small
 * to give each two pages), so that concurrent inserts append to different
 * tail pages.
 */
static int
fr_partition_max_children(FrState *state, Page page)
{
	int			children = PageGetMaxOffsetNumber(page);
	Size		used = FrPageUsable - PageGetExactFreeSpace(page);
	int			limit = fr_partition_limit(state, used / children,
										   FrPageGetOpaque(page)->level);

	if (fr_root_spread(state, page))
	{
		int			parts = Max(Min(FR_ROOT_PARTITIONS, state->buffer_pages / 2), 1);

		limit = Min(limit, Max(FR_MIN_PARTITION_CHILDREN,
							   (children + parts - 1) / parts));
	}
	return limit;
}

/* does the partition at 'start' of the node on 'page' cover too many? */
bool
fr_partition_too_wide(FrState *state, Page page, OffsetNumber start)
{
	return fr_node_partition_end(page, start) - start >
		fr_partition_max_children(state, page);
}

/*
 * After a partition's chain was emptied, split it if it covers more
 * children than fr_partition_limit allows for the node's average item.
 */
void
fr_partition_maybe_split(FrState *state, Buffer nodebuf, OffsetNumber start)
{
	Page		page = BufferGetPage(nodebuf);
	OffsetNumber end = fr_node_partition_end(page, start);
	int			count = end - start;
	int			limit = fr_partition_max_children(state, page);
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
		FrNodeItem	item = fr_node_get_item(np, FR_PART_CUT(start, count, p, nparts));

		item->flags |= FR_ITEM_PART_START;
		item->chain_tail = InvalidBlockNumber;
		item->chain_pages = 0;
	}
	fr_generic_finish(xs);

	/* each new partition gets its leaf filter page at once */
	for (p = 1; p < nparts; p++)
		fr_lfilter_split(state, nodebuf, start, FR_PART_CUT(start, count, p, nparts));
}

/*
 * Move the start of the partition at 'start' to its item 'at' (start < at),
 * taking the chain along: the chain must hold only messages routing to
 * 'at' or later (a partial flush left just those).  Items [start, at) form
 * a partition of their own, with an empty chain.  One record: node.
 */
void
fr_partition_split_at(FrState *state, Buffer nodebuf, OffsetNumber start,
					  OffsetNumber at)
{
	GenericXLogState *xs = GenericXLogStart(state->index);
	Page		np = GenericXLogRegisterBuffer(xs, nodebuf, 0);
	FrNodeItem	left = fr_node_get_item(np, start);
	FrNodeItem	right = fr_node_get_item(np, at);

	Assert(start < at && !(right->flags & FR_ITEM_PART_START));
	right->flags |= FR_ITEM_PART_START;
	right->chain_tail = left->chain_tail;
	right->chain_pages = left->chain_pages;
	left->chain_tail = InvalidBlockNumber;
	left->chain_pages = 0;
	fr_generic_finish(xs);
	fr_lfilter_split(state, nodebuf, start, at);
}

/* ------------------------------------------------------------------------
 * The root leaf split
 * ------------------------------------------------------------------------
 */

/* the split point of a root leaf's entries: about half the bytes each side */
static int
fr_root_leaf_split_point(IndexTuple *items, int n)
{
	Size		total = 0,
				cum = 0;
	int			i,
				split = 0;

	for (i = 0; i < n; i++)
		total += fr_item_space(items[i]);
	while (split < n - 1 && cum + fr_item_space(items[split]) <= total / 2)
		cum += fr_item_space(items[split++]);
	return Max(split, 1);
}

/*
 * Split the full root leaf in 'lbuf' under a new level-1 root.  One record:
 * metapage, new root, old leaf, new leaf.
 */
static void
fr_split_root_leaf_locked(FrState *state, Buffer mbuf, Buffer lbuf)
{
	Relation	index = state->index;
	Page		lpage = BufferGetPage(lbuf);
	int			n = PageGetMaxOffsetNumber(lpage);
	IndexTuple *items = palloc(sizeof(IndexTuple) * n);
	Buffer		rbuf,
				rootbuf;
	FrNodeItem	right;
	Size		rsz;
	GenericXLogState *xs;
	Page		mp,
				rootp,
				lp,
				rp;
	int			i,
				split;

	for (i = 0; i < n; i++)
		items[i] = CopyIndexTuple((IndexTuple) PageGetItem(lpage, PageGetItemId(lpage, i + 1)));
	split = fr_root_leaf_split_point(items, n);

	rbuf = fr_new_buffer(index);
	rootbuf = fr_new_buffer(index);
	right = fr_make_node_item(items[split], BufferGetBlockNumber(rbuf), 0, &rsz);

	xs = GenericXLogStart(index);
	mp = GenericXLogRegisterBuffer(xs, mbuf, 0);
	rootp = fr_generic_register_whole(xs, rootbuf);
	lp = fr_generic_register_whole(xs, lbuf);
	rp = fr_generic_register_whole(xs, rbuf);
	fr_write_new_root(mp, rootp, BufferGetBlockNumber(rootbuf),
					  BufferGetBlockNumber(lbuf), right, rsz, 1);
	fr_init_page(lp, FR_LEAF, 0);
	fr_init_page(rp, FR_LEAF, 0);
	/* plain, like every leaf that can become a root leaf again */
	if (!fr_leaf_fill(state, lp, items, split, false) ||
		!fr_leaf_fill(state, rp, items + split, n - split, false))
		elog(ERROR, "fractal root leaf split does not fit");
	fr_generic_finish(xs);
	UnlockReleaseBuffer(rbuf);
	UnlockReleaseBuffer(rootbuf);
}

/*
 * The root is a leaf too full for 'itup': split it under a new level-1
 * root, unless another backend did first.  Takes the flush lock (waiting,
 * with no buffer locks held) because entries move.
 */
void
fr_split_root_leaf(FrState *state, IndexTuple itup)
{
	Relation	index = state->index;
	Buffer		mbuf,
				lbuf;
	Page		lpage;

	fr_flush_lock(index, ShareLock, true);
	mbuf = fr_read_buffer(index, FR_META_BLKNO, BUFFER_LOCK_EXCLUSIVE);
	lbuf = fr_read_buffer(index, FrPageGetMeta(BufferGetPage(mbuf))->root,
						  BUFFER_LOCK_EXCLUSIVE);
	lpage = BufferGetPage(lbuf);
	if (FrPageIsRoot(lpage) && FrPageIsLeaf(lpage) &&
		PageGetFreeSpace(lpage) < MAXALIGN(IndexTupleSize(itup)))
		fr_split_root_leaf_locked(state, mbuf, lbuf);
	UnlockReleaseBuffer(lbuf);
	UnlockReleaseBuffer(mbuf);
	fr_flush_unlock(index, ShareLock);
}
