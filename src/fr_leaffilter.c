/*-------------------------------------------------------------------------
 *
 * fr_leaffilter.c
 *	  Leaf filters (format version 4): per-leaf key filters kept beside a
 *	  level-1 node, so that an equality lookup of an absent key (above all
 *	  the pre-check of INSERT ... ON CONFLICT and the insert's own
 *	  uniqueness check) does not read the leaf.
 *
 * Each partition of a level-1 node may own one leaf filter page (its
 * PART_START item names it).  The page holds slots; a slot is a blocked
 * Bloom filter (fr_filter.c) on the first key column of one leaf of the
 * partition, named by the slot's 'skip' field.  The invariant readers rely
 * on:
 *
 *	a slot naming leaf L, found in the filter page of L's partition while
 *	L is not the node's last child, contains every key L holds.
 *
 * Writers keep it so, all under the node's exclusive lock (readers hold it
 * shared while they test a slot, so they never see a step half done):
 *
 *	- an entry added to a leaf in place: its key is added to the leaf's
 *	  slot first (a record of its own, logged before the leaf's);
 *	- a leaf rewritten or split: the slots of every leaf written are set to
 *	  exactly the keys each now holds, in the same record as the leaves
 *	  (or, when that record already has four pages, freed by a record
 *	  before it and set by one after it);
 *	- the node's last child takes fast-path appends that no flush sees
 *	  (fr_insert_rightmost), so readers ignore its slot, and a leaf stops
 *	  being the last only by a split, which sets its slot as above;
 *	- a leaf that leaves the partition (partition split) keeps a stale slot
 *	  there, never consulted for it again: a block becomes a child of the
 *	  partition again only by a split, which sets its slot.
 *
 * A slot may be missing, so a leaf without one is read as before; VACUUM
 * removing keys only leaves false positives.
 *
 * Slot 0 is the chain slot (its 'skip' is 0, the metapage, never a leaf):
 * unless flagged FR_FILTER_ALL it contains every key of the partition's
 * buffer chain, so a lookup it rules out reads no chain page either.  Keys
 * are added before a flush appends to the chain of a level-1 node that is
 * not the root (fr_lfilter_chain_add); the root's own appends (inserts)
 * never touch it, so a page made while its node is the root, or while the
 * chain holds messages, starts with the slot FR_FILTER_ALL, and only a
 * non-root node's emptied chain resets it (fr_lfilter_chain_reset).  A
 * level-1 node stops being the root only by root growth and never becomes
 * it again.  See src/README.md section 3d.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "utils/rel.h"

#include "fractal.h"

/* bytes a leaf filter page has for slots */
#define FR_LFILTER_SPACE \
	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(FrPageOpaqueData)) - \
	 MAXALIGN(sizeof(FrLeafFiltersData)))

/*
 * May 'index' make new leaf filter pages?  Format 4 and everything buffer
 * page filters need (fr_filter_page_bytes: a hashable first column and a
 * nonzero filter_bytes).  Reads only rd_amcache, so it may be called under
 * node locks (it then says no when the cache was reset).  It decides only
 * whether a page is made: a page a partition already names is maintained
 * whatever this says, since readers trust every page they find.
 */
bool
fr_lfilter_enabled(Relation index)
{
	return fr_filter_page_bytes(index) > 0 &&
		fr_amcache(index)->meta.version >= 4;
}

/* most bytes of bits of a chain slot: 8,192 bits, ~11 per key for the
 * ~740 int8 keys of a two-page chain */
#define FR_LFILTER_CHAIN_BYTES	1024

/*
 * Slots per page and bytes per slot.  The chain slot gets filter_bytes,
 * at most FR_LFILTER_CHAIN_BYTES: a chain holds many more keys than a
 * leaf (two int8 pages are ~740), and a chain slot the size of a leaf
 * slot passed 41 % of the lookups of existing keys out of memory (most
 * level-1 chains have 2-3 pages; at 3 its slot was full and passed all).
 * Leaf slots share the rest: room for a sixteenth more leaves than a
 * partition has before it is split (the leaves its last flush split off
 * before the partition itself could split; a slot of a leaf that left the
 * partition is free for reuse; at 32 children the most seen was 34), each
 * at most filter_bytes: 34 of 192 bytes at 32 children, 17 of 384 at 16.
 * A leaf without a slot is only read, never missed.
 */
static void
fr_lfilter_layout(FrState *state, int *nslots, int *slot_bytes,
				  int *chain_bytes)
{
	int			pc = state->partition_children;
	int			fb = fr_filter_page_bytes(state->index);
	int			n = Max(4, pc + pc / 16);
	int			c = Min(fb, FR_LFILTER_CHAIN_BYTES);
	int			room = (int) FR_LFILTER_SPACE - c - (int) sizeof(FrFilterData);
	int			b = room / n - (int) sizeof(FrFilterData);

	b -= b % FR_FILTER_BLOCK;
	b = Min(b, fb);
	if (b < FR_FILTER_BLOCK)
	{
		b = FR_FILTER_BLOCK;
		n = room / (sizeof(FrFilterData) + FR_FILTER_BLOCK);
	}
	*nslots = n + 1;
	*slot_bytes = b;
	*chain_bytes = c;
}

/*
 * Is the layout of leaf filter page 'page' one this index could have
 * written?  Checked on every read (fr_check_page): then every slot lies
 * inside the page.  Only the page's header is read here (touching every
 * slot cost a point lookup a cache miss per slot); a slot's own fields are
 * checked when it is used (fr_lfilter_slot) and by fractal_check
 * (fr_lfilter_slots_valid).
 */
bool
fr_lfilter_page_valid(Relation index, Page page)
{
	FrLeafFilters lf = FrPageGetLeafFilters(page);

	return PageGetSpecialSize(page) == MAXALIGN(sizeof(FrPageOpaqueData)) &&
		lf->nslots >= 2 && lf->slot_bytes != 0 &&
		lf->slot_bytes % FR_FILTER_BLOCK == 0 &&
		lf->slot_bytes <= FR_MAX_FILTER_BYTES &&
		lf->chain_bytes % FR_FILTER_BLOCK == 0 &&
		lf->chain_bytes <= FR_MAX_FILTER_BYTES &&
		FrLeafFilterSlotOffset(lf, lf->nslots) <= FR_LFILTER_SPACE &&
		lf->typlen == TupleDescAttr(RelationGetDescr(index), 0)->attlen;
}

/* are slot i's own fields those of slot i of a page laid out as 'lf'? */
static bool
fr_lfilter_slot_ok(FrLeafFilters lf, int i)
{
	FrFilter	f = FrLeafFilterSlot(lf, i);

	return f->nbytes == FrLeafFilterBytes(lf, i) && f->typlen == lf->typlen &&
		(i == 0) == (f->skip == FR_LFILTER_CHAIN);
}

/* is every slot of the (valid) leaf filter page 'page' well formed? */
bool
fr_lfilter_slots_valid(Page page)
{
	FrLeafFilters lf = FrPageGetLeafFilters(page);
	int			i;

	for (i = 0; i < lf->nslots; i++)
		if (!fr_lfilter_slot_ok(lf, i))
			return false;
	return true;
}

/*
 * Slot i of leaf filter page 'fblk' (laid out as 'lf'), which is about to
 * be tested or added to: a slot whose fields are not a slot's is
 * corruption, reported.
 */
static FrFilter
fr_lfilter_slot(Relation index, BlockNumber fblk, FrLeafFilters lf, int i)
{
	if (!fr_lfilter_slot_ok(lf, i))
		fr_report_corrupt(index, fblk, "leaf filter page has an invalid slot");
	return FrLeafFilterSlot(lf, i);
}

/*
 * The slot where a search for the slot of 'leaf' starts (1 .. nslots-1): a
 * new slot goes to the first free one from there, so that a lookup mostly
 * finds its leaf's slot at the first slot it reads.  Only a placement
 * preference: a search goes on through every slot, so pages written
 * before (slots in any order) read the same.
 */
static int
fr_lfilter_home(FrLeafFilters lf, BlockNumber leaf)
{
	return 1 + (int) (((uint64) (leaf * UINT64CONST(0x9E3779B97F4A7C15)) >> 32) %
					  (uint64) (lf->nslots - 1));
}

/* the k-th slot a search from 'home' reads (k < nslots - 1) */
#define FR_LFILTER_PROBE(lf, home, k) \
	(1 + ((home) - 1 + (k)) % ((lf)->nslots - 1))

/* the number of the slot of 'leaf' on the page, or 0 (the chain slot's) */
static int
fr_lfilter_find(FrLeafFilters lf, BlockNumber leaf)
{
	int			home = fr_lfilter_home(lf, leaf);
	int			k;

	for (k = 0; k < lf->nslots - 1; k++)
	{
		int			i = FR_LFILTER_PROBE(lf, home, k);

		if (FrLeafFilterSlot(lf, i)->skip == leaf)
			return i;
	}
	return 0;
}

/* is 'blk' a child of the partition [start, end) of node 'np'? */
static bool
fr_lfilter_is_child(Page np, OffsetNumber start, OffsetNumber end,
					BlockNumber blk)
{
	OffsetNumber off;

	for (off = start; off < end; off++)
		if (fr_node_get_item(np, off)->child == blk)
			return true;
	return false;
}

/*
 * The first free slot of 'lf' a search from the home of 'leaf' reads, or
 * NULL: free is naming no leaf or a leaf that is not a child of the
 * partition [start, end) of node 'np'.
 */
static FrFilter
fr_lfilter_free_slot(FrLeafFilters lf, Page np, OffsetNumber start,
					 OffsetNumber end, BlockNumber leaf)
{
	int			home = fr_lfilter_home(lf, leaf);
	int			k;

	for (k = 0; k < lf->nslots - 1; k++)
	{
		FrFilter	s = FrLeafFilterSlot(lf, FR_LFILTER_PROBE(lf, home, k));

		if (s->skip == InvalidBlockNumber ||
			!fr_lfilter_is_child(np, start, end, s->skip))
			return s;
	}
	return NULL;
}

/*
 * Empty slot 'f' of a page laid out as 'lf' (free when leaf is Invalid;
 * the chain slot when it is FR_LFILTER_CHAIN)
 */
static void
fr_lfilter_reset(FrLeafFilters lf, FrFilter f, BlockNumber leaf)
{
	int			i = leaf == FR_LFILTER_CHAIN ? 0 : 1;

	memset(f, 0, FrLeafFilterSlotSize(lf, i));
	f->skip = leaf;
	f->typlen = lf->typlen;
	f->nbytes = FrLeafFilterBytes(lf, i);
}

/*
 * Give leaf 'leaf', a child of the partition at 'partoff' of node 'np'
 * (the node as it is once the caller's record is applied), a slot holding
 * exactly the keys of items[0..n), or no slot when 'keep' is false, when
 * the keys would load the slot past half its bits (then it rejects too
 * little to pay for its test), or when no slot is free.  A free slot is
 * one naming no leaf or a leaf no longer in the partition.  Returns false
 * when nothing changed.
 */
bool
fr_lfilter_set(Page fpage, Page np, OffsetNumber partoff, BlockNumber leaf,
			   IndexTuple *items, int n, bool keep)
{
	FrLeafFilters lf = FrPageGetLeafFilters(fpage);
	OffsetNumber end = fr_node_partition_end(np, partoff);
	int			found = fr_lfilter_find(lf, leaf);
	FrFilter	f = found ? FrLeafFilterSlot(lf, found) : NULL;

	/* a slot found is rewritten whole below, so its old fields do not matter */
	if (n > lf->slot_bytes * 8 / 2)
		keep = false;
	if (f == NULL && keep)
		f = fr_lfilter_free_slot(lf, np, partoff, end, leaf);
	if (f == NULL)
		return false;
	fr_lfilter_reset(lf, f, keep ? leaf : InvalidBlockNumber);
	if (keep)
		fr_filter_add_keys(f, items, n);
	return true;
}

/*
 * Read and lock leaf filter page 'fblk', named by a partition: anything
 * else there is corruption.
 */
Buffer
fr_lfilter_read(Relation index, BlockNumber fblk, int mode)
{
	return fr_read_kind_buffer(index, fblk, mode, FR_LFILTERS,
							   "partition points to a page that is not a leaf filter page");
}

/*
 * Make 'fp' an empty leaf filter page of 'state''s index: every leaf slot
 * free, and the chain slot empty when 'chain_empty' (the partition's chain
 * is empty and its node is not the root), else FR_FILTER_ALL.
 */
void
fr_lfilter_init_page(FrState *state, Page fp, bool chain_empty)
{
	FrLeafFilters lf;
	int			nslots,
				slot_bytes,
				chain_bytes,
				i;

	fr_lfilter_layout(state, &nslots, &slot_bytes, &chain_bytes);
	fr_init_page(fp, FR_LFILTERS, 1);
	lf = FrPageGetLeafFilters(fp);
	lf->nslots = (uint16) nslots;
	lf->slot_bytes = (uint16) slot_bytes;
	lf->chain_bytes = (uint16) chain_bytes;
	lf->typlen = TupleDescAttr(RelationGetDescr(state->index), 0)->attlen;
	fr_lfilter_reset(lf, FrLeafFilterSlot(lf, 0), FR_LFILTER_CHAIN);
	for (i = 1; i < nslots; i++)
		fr_lfilter_reset(lf, FrLeafFilterSlot(lf, i), InvalidBlockNumber);
	if (!chain_empty)
		FrLeafFilterSlot(lf, 0)->flags |= FR_FILTER_ALL;
	((PageHeader) fp)->pd_lower = MAXALIGN(SizeOfPageHeaderData) +
		MAXALIGN(sizeof(FrLeafFiltersData)) + FrLeafFilterSlotOffset(lf, nslots);
}

/* a logged change to the slots of a leaf filter page */
typedef struct FrLfilterEdit
{
	Buffer		buf;			/* the page, exclusively locked */
	GenericXLogState *xs;		/* generic WAL, or NULL: custom record */
	Page		copy;			/* what the caller changes, or NULL */
	char	   *image;			/* ... a copy of slot 'slot' instead */
	int			slot;
} FrLfilterEdit;

/*
 * Start changing slots of the leaf filter page in 'fbuf' (exclusively
 * locked): the caller changes the returned copy's slots, then calls
 * fr_lfilter_edit_finish (logs and applies them) or fr_lfilter_edit_abort.
 * With the custom resource manager the change is logged as the changed
 * slots (XLOG_FR_LFILTER_SLOTS), else as a generic record.
 */
static FrLeafFilters
fr_lfilter_edit_start(Relation index, Buffer fbuf, FrLfilterEdit *e)
{
	e->buf = fbuf;
	e->image = NULL;
	if (fr_custom_wal)
	{
		e->xs = NULL;
		e->copy = palloc(BLCKSZ);
		memcpy(e->copy, BufferGetPage(fbuf), BLCKSZ);
	}
	else
	{
		e->xs = GenericXLogStart(index);
		e->copy = GenericXLogRegisterBuffer(e->xs, fbuf, 0);
	}
	return FrPageGetLeafFilters(e->copy);
}

/*
 * The same for slot 'slot' alone: the caller changes the returned slot
 * (with the custom resource manager a copy of just the slot, so that
 * nothing else is copied or compared).
 */
static FrFilter
fr_lfilter_edit_slot(Relation index, Buffer fbuf, int slot, FrLfilterEdit *e)
{
	FrLeafFilters lf = FrPageGetLeafFilters(BufferGetPage(fbuf));

	if (!fr_custom_wal)
	{
		FrLeafFilters copy = fr_lfilter_edit_start(index, fbuf, e);

		return FrLeafFilterSlot(copy, slot);
	}
	e->buf = fbuf;
	e->xs = NULL;
	e->copy = NULL;
	e->slot = slot;
	e->image = palloc(FrLeafFilterSlotSize(lf, slot));
	memcpy(e->image, FrLeafFilterSlot(lf, slot), FrLeafFilterSlotSize(lf, slot));
	return (FrFilter) e->image;
}

static void
fr_lfilter_edit_finish(Relation index, FrLfilterEdit *e)
{
	if (e->xs != NULL)
		fr_generic_finish(e->xs);
	else if (e->image != NULL)
	{
		fr_lfilter_write_slot(index, e->buf, e->slot, e->image);
		pfree(e->image);
	}
	else
	{
		fr_lfilter_write_slots(index, e->buf, e->copy);
		pfree(e->copy);
	}
}

static void
fr_lfilter_edit_abort(FrLfilterEdit *e)
{
	if (e->xs != NULL)
		fr_generic_abort(e->xs);
	else if (e->image != NULL)
		pfree(e->image);
	else
		pfree(e->copy);
}

/*
 * The leaf filter page of the partition at 'partoff' of the level-1 node
 * in 'nodebuf' (held exclusively), locked exclusively; made when the
 * partition has none yet (one record: node + new page).  InvalidBuffer
 * when the index keeps no leaf filters.
 */
Buffer
fr_lfilter_lock(FrState *state, Buffer nodebuf, OffsetNumber partoff)
{
	Relation	index = state->index;
	FrNodeItem	pitem = fr_node_get_item(BufferGetPage(nodebuf), partoff);
	BlockNumber fblk = FrItemGetFilter(pitem);
	GenericXLogState *xs;
	Buffer		fbuf;

	/*
	 * A page the partition has is kept up to date whatever the options say
	 * now (readers use every page they find); only making one depends on them.
	 */
	if (FrPageGetOpaque(BufferGetPage(nodebuf))->level != 1)
		return InvalidBuffer;
	if (fblk != 0)
		return fr_lfilter_read(index, fblk, BUFFER_LOCK_EXCLUSIVE);
	if (!fr_lfilter_enabled(index))
		return InvalidBuffer;

	/* a new page with every slot free */
	fbuf = fr_new_buffer(index);
	xs = GenericXLogStart(index);
	pitem = fr_node_get_item(GenericXLogRegisterBuffer(xs, nodebuf, 0), partoff);
	fr_lfilter_init_page(state, fr_generic_register_whole(xs, fbuf),
						 pitem->chain_tail == InvalidBlockNumber &&
						 !FrPageIsRoot(BufferGetPage(nodebuf)));
	FrItemSetFilter(pitem, BufferGetBlockNumber(fbuf));
	fr_generic_finish(xs);
	return fbuf;
}

/*
 * Copy into the fresh page 'to' the slots that 'from' holds for the leaves
 * of the partition [start, end) of node 'np', each to the first free slot
 * from its home, and 'from''s chain slot when 'chain' is set.  Nothing
 * when the two pages differ in layout (a slot's bits only mean something
 * in a slot of the same size); those leaves are then read, never skipped.
 */
static void
fr_lfilter_copy_slots(FrLeafFilters from, FrLeafFilters to, Page np,
					  OffsetNumber start, OffsetNumber end, bool chain)
{
	OffsetNumber off;

	if (from->nslots != to->nslots || from->slot_bytes != to->slot_bytes ||
		FrLeafFilterBytes(from, 0) != FrLeafFilterBytes(to, 0) ||
		from->typlen != to->typlen)
		return;
	for (off = start; off < end; off++)
	{
		BlockNumber leaf = fr_node_get_item(np, off)->child;
		int			i = fr_lfilter_find(from, leaf);
		FrFilter	f;

		if (i != 0 && (f = fr_lfilter_free_slot(to, np, start, end, leaf)) != NULL)
			memcpy(f, FrLeafFilterSlot(from, i), FrLeafFilterSlotSize(from, i));
	}
	if (chain)
		memcpy(FrLeafFilterSlot(to, 0), FrLeafFilterSlot(from, 0),
			   FrLeafFilterSlotSize(from, 0));
}

/*
 * The partition at 'oldstart' of the level-1 node in 'nodebuf' (held
 * exclusively) has just been split, its items from 'newstart' on forming
 * a partition of their own (fr_partition_split_at, which moved the chain
 * there, or fr_partition_maybe_split, chains empty).  Give the new
 * partition its leaf filter page now, holding copies of the slots the old
 * page has for its leaves (and of the chain slot, which summarises the
 * moved chain), so that its lookups keep skipping leaves and chain instead
 * of reading them until a flush writes one of its leaves.  One record:
 * node + new page.  Nothing when the old partition has no page or the
 * index makes no new ones.
 */
void
fr_lfilter_split(FrState *state, Buffer nodebuf, OffsetNumber oldstart,
				 OffsetNumber newstart)
{
	Relation	index = state->index;
	Page		np = BufferGetPage(nodebuf);
	BlockNumber oldfblk = FrItemGetFilter(fr_node_get_item(np, oldstart));
	bool		root = FrPageIsRoot(np);
	GenericXLogState *xs;
	FrNodeItem	item;
	Buffer		obuf,
				fbuf;
	Page		fp;
	bool		chain_empty;

	if (FrPageGetOpaque(np)->level != 1 || oldfblk == 0 ||
		FrItemGetFilter(fr_node_get_item(np, newstart)) != 0 ||
		!fr_lfilter_enabled(index))
		return;

	/* the old page (lock order: node, then filter pages), and a new one */
	obuf = fr_lfilter_read(index, oldfblk, BUFFER_LOCK_SHARE);
	fbuf = fr_new_buffer(index);

	/* one record: the new page, with the copied slots, and its node item */
	xs = GenericXLogStart(index);
	item = fr_node_get_item(GenericXLogRegisterBuffer(xs, nodebuf, 0), newstart);
	fp = fr_generic_register_whole(xs, fbuf);
	chain_empty = item->chain_tail == InvalidBlockNumber && !root;
	fr_lfilter_init_page(state, fp, chain_empty);
	fr_lfilter_copy_slots(FrPageGetLeafFilters(BufferGetPage(obuf)),
						  FrPageGetLeafFilters(fp), np, newstart,
						  fr_node_partition_end(np, newstart),
						  !chain_empty && !root);
	FrItemSetFilter(item, BufferGetBlockNumber(fbuf));
	fr_generic_finish(xs);
	UnlockReleaseBuffer(fbuf);
	UnlockReleaseBuffer(obuf);
}

/*
 * Before the leaf at item 'off' of the level-1 node in 'nodebuf' (held
 * exclusively), which holds old[0..nold), takes the entries newi[0..n) in
 * place: add their keys to the leaf's slot, or give the leaf a slot of
 * both when it has none (one record, logged before the leaf's).  The
 * node's last child's slot is ignored by readers and left alone.
 *
 * With the resource manager registered, adding keys to the slot the leaf
 * has is left to the leaf's own record instead: *defer gets the filter
 * page (still locked) and the slot for fr_leaf_add_items, whose replay adds
 * the keys of the tuples it adds.  Otherwise defer->fbuf is InvalidBuffer.
 */
void
fr_lfilter_before_add(FrState *state, Buffer nodebuf, OffsetNumber off,
					  IndexTuple *old, int nold, IndexTuple *newi, int n,
					  FrSlotAdd *defer)
{
	Page		np = BufferGetPage(nodebuf);
	BlockNumber leaf = fr_node_get_item(np, off)->child;
	OffsetNumber partoff = fr_node_partition_start(np, off);
	FrLfilterEdit edit;
	FrLeafFilters lf;
	Buffer		fbuf;
	Page		fp;
	FrFilter	f;
	int			slot;
	bool		fits,
				changed = true;

	defer->fbuf = InvalidBuffer;
	if (off == PageGetMaxOffsetNumber(np))
		return;
	fbuf = fr_lfilter_lock(state, nodebuf, partoff);
	if (!BufferIsValid(fbuf))
		return;

	/* the leaf's slot, and whether the new keys fit in it */
	lf = FrPageGetLeafFilters(BufferGetPage(fbuf));
	slot = fr_lfilter_find(lf, leaf);
	f = slot ? fr_lfilter_slot(state->index, BufferGetBlockNumber(fbuf), lf, slot) : NULL;
	fits = (f != NULL && f->nkeys + n <= (uint32) lf->slot_bytes * 8 / 2);

	/* the common case, keys added to the slot, goes in the leaf's record */
	if (fits && fr_custom_wal)
	{
		defer->fbuf = fbuf;
		defer->slot = slot;
		return;
	}

	/* else change the slot in a record of its own, before the leaf's */
	lf = fr_lfilter_edit_start(state->index, fbuf, &edit);
	fp = edit.copy;
	f = slot ? FrLeafFilterSlot(lf, slot) : NULL;
	if (f == NULL)
	{
		IndexTuple *all = palloc(sizeof(IndexTuple) * (nold + n));

		memcpy(all, old, sizeof(IndexTuple) * nold);
		memcpy(all + nold, newi, sizeof(IndexTuple) * n);
		changed = fr_lfilter_set(fp, np, partoff, leaf, all, nold + n, true);
		pfree(all);
	}
	else if (!fits)
		fr_lfilter_reset(lf, f, InvalidBlockNumber);
	else
		fr_filter_add_keys(f, newi, n);
	if (changed)
		fr_lfilter_edit_finish(state->index, &edit);
	else
		fr_lfilter_edit_abort(&edit);
	UnlockReleaseBuffer(fbuf);
}

/*
 * Free, in a record of their own, the slots of the leaves nleaves[0..n)
 * on the (exclusively locked) leaf filter page: used before a leaf write
 * whose record has no room for the filter page.
 */
void
fr_lfilter_forget(Relation index, Buffer fbuf, BlockNumber *leaves, int n)
{
	FrLfilterEdit edit;
	FrLeafFilters lf = fr_lfilter_edit_start(index, fbuf, &edit);
	int			i;

	for (i = 0; i < n; i++)
	{
		int			slot = fr_lfilter_find(lf, leaves[i]);

		if (slot != 0)
			fr_lfilter_reset(lf, FrLeafFilterSlot(lf, slot), InvalidBlockNumber);
	}
	fr_lfilter_edit_finish(index, &edit);
}

/*
 * Before a flush appends msgs[0..n) to the chain of the partition at
 * 'partoff' of the level-1 node in 'nodebuf' (held exclusively, not the
 * root): add their keys to the chain slot, or flag it FR_FILTER_ALL when
 * they would load it past half its bits (one record, logged before the
 * chain's).  Nothing when the partition has no leaf filter page or the
 * slot already passes everything.
 */
void
fr_lfilter_chain_add(FrState *state, Buffer nodebuf, OffsetNumber partoff,
					 IndexTuple *msgs, int n)
{
	Page		np = BufferGetPage(nodebuf);
	BlockNumber fblk = FrItemGetFilter(fr_node_get_item(np, partoff));
	FrLfilterEdit edit;
	FrLeafFilters lf;
	FrFilter	f;
	Buffer		fbuf;

	if (fblk == 0 || FrPageGetOpaque(np)->level != 1 || FrPageIsRoot(np))
		return;
	fbuf = fr_lfilter_lock(state, nodebuf, partoff);
	if (fr_lfilter_slot(state->index, fblk, FrPageGetLeafFilters(BufferGetPage(fbuf)),
						0)->flags & FR_FILTER_ALL)
	{
		UnlockReleaseBuffer(fbuf);
		return;
	}
	lf = FrPageGetLeafFilters(BufferGetPage(fbuf));
	f = fr_lfilter_edit_slot(state->index, fbuf, 0, &edit);
	if (f->nkeys + n > (uint32) FrLeafFilterBytes(lf, 0) * 8 / 2)
		f->flags |= FR_FILTER_ALL;
	else
		fr_filter_add_keys(f, msgs, n);
	fr_lfilter_edit_finish(state->index, &edit);
	UnlockReleaseBuffer(fbuf);
}

/*
 * fr_lfilter_chain_add and fr_chain_append in one record where they can
 * be: a flush appends sorted msgs[0..n) to the chain of the partition at
 * 'partoff' of the level-1 node in 'nodebuf' (held exclusively, not the
 * root), the partition has a leaf filter page whose chain slot counts keys
 * and stays at most half loaded with these, and the run fits the chain's
 * tail page.  The tail then takes the messages and the chain slot their
 * keys in one ADD_ITEMS record (fr_chain_tail_add with the slot; redo adds
 * the keys from the logged tuples) instead of an LFILTER_SLOTS record of
 * the slot's changed bytes before the chain's own.  Only with the resource
 * manager.  Returns false, having changed nothing, otherwise.
 */
bool
fr_lfilter_chain_append(FrState *state, Buffer nodebuf, OffsetNumber partoff,
						IndexTuple *msgs, int n)
{
	Page		np = BufferGetPage(nodebuf);
	FrNodeItem	pitem = fr_node_get_item(np, partoff);
	BlockNumber fblk = FrItemGetFilter(pitem);
	FrSlotAdd	slot = {InvalidBuffer, 0};
	Buffer		tbuf;
	bool		done = false;

	if (!fr_custom_wal || fblk == 0 || FrPageGetOpaque(np)->level != 1 ||
		FrPageIsRoot(np) || pitem->chain_tail == InvalidBlockNumber)
		return false;

	/* the tail page first, then the filter page, as a leaf merge does */
	tbuf = fr_read_chain_buffer(state->index, pitem->chain_tail,
								BUFFER_LOCK_EXCLUSIVE);
	if (fr_count_fitting(msgs, n, PageGetExactFreeSpace(BufferGetPage(tbuf))) == n)
	{
		FrLeafFilters lf;
		FrFilter	f;

		slot.fbuf = fr_lfilter_lock(state, nodebuf, partoff);
		lf = FrPageGetLeafFilters(BufferGetPage(slot.fbuf));
		f = fr_lfilter_slot(state->index, fblk, lf, 0);
		done = !(f->flags & FR_FILTER_ALL) &&
			f->nkeys + n <= (uint32) FrLeafFilterBytes(lf, 0) * 8 / 2;
		if (done)
			fr_chain_tail_add(state, tbuf, msgs, n, &slot);
		UnlockReleaseBuffer(slot.fbuf);
	}
	UnlockReleaseBuffer(tbuf);
	return done;
}

/*
 * The chain of the partition at 'partoff' of the level-1 node in
 * 'nodebuf' (held exclusively) is empty: empty the chain slot too, unless
 * the node is the root (whose appends do not maintain it).
 */
void
fr_lfilter_chain_reset(FrState *state, Buffer nodebuf, OffsetNumber partoff)
{
	Page		np = BufferGetPage(nodebuf);
	FrNodeItem	pitem = fr_node_get_item(np, partoff);
	FrLfilterEdit edit;
	FrLeafFilters lf;
	FrFilter	f;
	Buffer		fbuf;

	if (FrItemGetFilter(pitem) == 0 || pitem->chain_tail != InvalidBlockNumber ||
		FrPageGetOpaque(np)->level != 1 || FrPageIsRoot(np))
		return;
	fbuf = fr_lfilter_lock(state, nodebuf, partoff);
	f = FrLeafFilterSlot(FrPageGetLeafFilters(BufferGetPage(fbuf)), 0);
	if (f->nkeys == 0 && !(f->flags & FR_FILTER_ALL))
	{
		UnlockReleaseBuffer(fbuf);
		return;
	}
	lf = FrPageGetLeafFilters(BufferGetPage(fbuf));
	fr_lfilter_reset(lf, fr_lfilter_edit_slot(state->index, fbuf, 0, &edit),
					 FR_LFILTER_CHAIN);
	fr_lfilter_edit_finish(state->index, &edit);
	UnlockReleaseBuffer(fbuf);
}

/*
 * Should a point lookup that expects to find its key (a plain scan, not a
 * uniqueness check or ON CONFLICT pre-check) read the leaf filter page of
 * item 'off' of the level-1 node 'page' (share-locked by the caller)?
 * For such a lookup the filter can only save the chain: the leaf is read
 * anyway when the key is there.  So a page that is not in shared buffers
 * is not worth a read when the chain costs no read either (it is empty,
 * or one page that is in shared buffers): reading the leaf at once costs
 * one read for a hit instead of two, and for a miss one instead of one.
 * *cold is set when the page is worth reading but not in shared buffers
 * (the caller starts the leaf's read first).  Decided only for an index
 * large against shared buffers (fr_index_large); a smaller one keeps its
 * filter pages cached.
 */
bool
fr_lfilter_worth_reading(Relation index, Page page, OffsetNumber off,
						 bool *cold)
{
	FrNodeItem	pitem;
	BlockNumber fblk;

	*cold = false;
	if (!fr_index_large(index))
		return true;
	pitem = fr_node_get_item(page, fr_node_partition_start(page, off));
	fblk = FrItemGetFilter(pitem);
	if (fblk == 0 || fr_buffer_cached(index, fblk))
		return true;
	if (fr_chain_costs_read(index, pitem))
	{
		*cold = true;
		return true;
	}
	fr_count(FR_CTR_LEAF_FILTER_BYPASSES, 1);
	return false;
}

/*
 * A point lookup at item 'off' of the level-1 node 'page' (share-locked
 * by the caller), for a first key column hashing to 'h': may the
 * partition's chain hold it (*chain_may), may the leaf (*leaf_may)?  Each
 * is true unless its slot rules the key out; the node's last child's slot
 * is never trusted (see the file header).
 */
void
fr_lfilter_probe(Relation index, Page page, OffsetNumber off, uint64 h,
				 bool *chain_may, bool *leaf_may)
{
	BlockNumber fblk;
	Buffer		fbuf;
	FrLeafFilters lf;
	int			slot;

	*chain_may = *leaf_may = true;
	if (FrPageGetOpaque(page)->level != 1)
		return;
	fblk = FrItemGetFilter(fr_node_get_item(page, fr_node_partition_start(page, off)));
	if (fblk == 0)
		return;
	fbuf = fr_lfilter_read(index, fblk, BUFFER_LOCK_SHARE);
	lf = FrPageGetLeafFilters(BufferGetPage(fbuf));
	if (!FrPageIsRoot(page))
		*chain_may = fr_filter_test_hash(fr_lfilter_slot(index, fblk, lf, 0), h);
	if (off != PageGetMaxOffsetNumber(page) &&
		(slot = fr_lfilter_find(lf, fr_node_get_item(page, off)->child)) != 0)
		*leaf_may = fr_filter_test_hash(fr_lfilter_slot(index, fblk, lf, slot), h);
	UnlockReleaseBuffer(fbuf);
	fr_count(FR_CTR_LEAF_FILTER_PROBES, 1);
	if (!*chain_may)
		fr_count(FR_CTR_CHAIN_FILTER_SKIPS, 1);
	if (!*leaf_may)
		fr_count(FR_CTR_LEAF_FILTER_SKIPS, 1);
}
