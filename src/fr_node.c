/*-------------------------------------------------------------------------
 *
 * fr_node.c
 *	  The node and chain layer of the fractal index: searching a node for
 *	  the child covering a key, searching a leaf, the buffer budget of a
 *	  node, walking, reading, appending to and releasing buffer chains, and
 *	  the flush lock.
 *
 * Everything above this layer (insert, flush, split, scan, VACUUM, check)
 * uses these helpers; nothing here calls back up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/rel.h"

#include "fractal.h"

/* objsubids of the heavyweight locks below; the field is 16 bits */
#define FR_FLUSH_LOCK_SUBID 0x4652	/* "FR": fr_flush_lock */
#define FR_SCAN_LOCK_SUBID	0x4649	/* "FI": fr_scan_lock */
#define FR_ROOT_FLUSH_LOCK_SUBID 0x4654	/* "FT": fr_root_flush_lock */

/* ------------------------------------------------------------------------
 * The flush lock
 *
 * Anything that moves entries between pages (flushes, leaf and node splits)
 * holds this heavyweight lock in ShareLock mode; VACUUM's bulk delete holds
 * it in ExclusiveLock mode for its whole physical scan, so no entry can be
 * moved by another backend from a page it has not yet scanned to one it
 * has.  Inserts that only append to a buffer chain do not take it.  It is a
 * LOCKTAG_OBJECT lock keyed by the index OID, a tag no other code uses; it
 * is always acquired before any buffer lock, and transaction abort
 * releases it.
 * ------------------------------------------------------------------------
 */
static inline void
fr_index_locktag(LOCKTAG *tag, Relation index, uint16 subid)
{
	SET_LOCKTAG_OBJECT(*tag, MyDatabaseId, RelationRelationId,
					   RelationGetRelid(index), subid);
}

static bool
fr_index_lock(Relation index, uint16 subid, LOCKMODE mode, bool wait)
{
	LOCKTAG		tag;

	fr_index_locktag(&tag, index, subid);
	return LockAcquire(&tag, mode, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

static void
fr_index_unlock(Relation index, uint16 subid, LOCKMODE mode)
{
	LOCKTAG		tag;

	fr_index_locktag(&tag, index, subid);
	LockRelease(&tag, mode, false);
}

/*
 * Take the flush lock in 'mode' (ShareLock or ExclusiveLock); without
 * 'wait', return false at once when it is not available.
 */
bool
fr_flush_lock(Relation index, LOCKMODE mode, bool wait)
{
	return fr_index_lock(index, FR_FLUSH_LOCK_SUBID, mode, wait);
}

void
fr_flush_unlock(Relation index, LOCKMODE mode)
{
	fr_index_unlock(index, FR_FLUSH_LOCK_SUBID, mode);
}

/*
 * The scan lock: index-only scans hold it in ShareLock mode while they may
 * return entries without a heap visit, bulk delete in ExclusiveLock mode
 * for its whole run, taken before the flush lock (src/README.md section 9).
 * A separate lock, so that a bulk delete queued behind a long index-only
 * scan does not stop flushes, which try the flush lock without waiting.
 */
bool
fr_scan_lock(Relation index, LOCKMODE mode, bool wait)
{
	return fr_index_lock(index, FR_SCAN_LOCK_SUBID, mode, wait);
}

void
fr_scan_unlock(Relation index, LOCKMODE mode)
{
	fr_index_unlock(index, FR_SCAN_LOCK_SUBID, mode);
}

/*
 * The root flush lock: one backend at a time flushes the root under a share
 * lock (fr_rootflush.c); taken after the flush lock, before any buffer lock.
 */
bool
fr_root_flush_lock(Relation index, bool wait)
{
	return fr_index_lock(index, FR_ROOT_FLUSH_LOCK_SUBID, ExclusiveLock, wait);
}

void
fr_root_flush_unlock(Relation index)
{
	fr_index_unlock(index, FR_ROOT_FLUSH_LOCK_SUBID, ExclusiveLock);
}

/* ------------------------------------------------------------------------
 * The root
 * ------------------------------------------------------------------------
 */

/*
 * Refreshes of the metapage after which a root without FR_ROOT is
 * corruption.  A fresh metapage names a page without FR_ROOT only when the
 * tree grew between reading the metapage and locking that page (growth
 * moves FR_ROOT and the metapage's root in one record, under the metapage's
 * lock), and the tree does not grow this many times in a row.
 */
#define FR_ROOT_REFRESHES		10

/*
 * Lock the root in 'mode'.  The cached metapage may be stale, so the first
 * try uses it and later ones read the metapage afresh; a root that still
 * lacks FR_ROOT after that many refreshes is corruption, not a race.
 */
Buffer
fr_lock_root(Relation index, int mode)
{
	for (int refreshes = 0;; refreshes++)
	{
		BlockNumber root = fr_get_root(index, NULL, refreshes > 0);
		Buffer		buf = fr_read_buffer(index, root, mode);

		if (FrPageIsRoot(BufferGetPage(buf)))
			return buf;
		UnlockReleaseBuffer(buf);
		if (refreshes >= FR_ROOT_REFRESHES)
			fr_report_corrupt(index, root,
							  "metapage points to a page that is not the root");
	}
}

/* ------------------------------------------------------------------------
 * Searching nodes and leaves
 * ------------------------------------------------------------------------
 */

/*
 * In an internal node, the last item whose pivot passes 'test' (which must
 * be monotone: true for a prefix of the pivots), or item 1 (minus
 * infinity) if none does.
 */
OffsetNumber
fr_node_search(Page page, FrPivotTest test, void *arg)
{
	OffsetNumber lo = FirstOffsetNumber + 1;
	OffsetNumber hi = PageGetMaxOffsetNumber(page);
	OffsetNumber result = FirstOffsetNumber;

	while (lo <= hi)
	{
		OffsetNumber mid = lo + (hi - lo) / 2;

		if (test(arg, FrNodeItemGetPivot(fr_node_get_item(page, mid))))
		{
			result = mid;
			lo = mid + 1;
		}
		else
			hi = mid - 1;
	}
	return result;
}

typedef struct FrKeyTest
{
	FrState    *state;
	IndexTuple	key;
} FrKeyTest;

static bool
fr_pivot_le_key(void *arg, IndexTuple pivot)
{
	FrKeyTest  *t = (FrKeyTest *) arg;

	return fr_compare_tuples(t->state, pivot, t->key) <= 0;
}

/*
 * The item whose child covers 'key': the last item whose pivot is <= key.
 */
OffsetNumber
fr_node_find_child(FrState *state, Page page, IndexTuple key)
{
	FrKeyTest	t = {state, key};

	return fr_node_search(page, fr_pivot_le_key, &t);
}

/*
 * fr_node_find_child for a key that most likely routes to the node's last
 * child (sequential inserts): one comparison when it does, else the
 * binary search.
 */
OffsetNumber
fr_node_find_child_last_first(FrState *state, Page page, IndexTuple key)
{
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);

	/* (item 1's pivot is minus infinity and never compared) */
	if (maxoff > FirstOffsetNumber &&
		fr_compare_tuples(state, FrNodeItemGetPivot(fr_node_get_item(page, maxoff)),
						  key) <= 0)
		return maxoff;
	return fr_node_find_child(state, page, key);
}

/*
 * The first index in [lo, hi) whose entry is >= key (hi if none), when the
 * entries before lo are < key and those from hi on are >= key.
 */
static int
fr_lower_bound_in(FrState *state, IndexTuple key, int lo, int hi,
				  FrEntryGetter get, void *arg)
{
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (fr_compare_tuples(state, get(arg, mid), key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The first index in [0, n) whose entry is >= key (n if none); get(arg, i)
 * returns entry i, and entries are sorted.
 */
int
fr_lower_bound(FrState *state, IndexTuple key, int n, FrEntryGetter get,
			   void *arg)
{
	return fr_lower_bound_in(state, key, 0, n, get, arg);
}

/*
 * fr_lower_bound for the next key of an ascending sequence: the first index
 * in [from, n) whose entry is >= key, where every entry before 'from' is
 * known to be < key (it was the lower bound of a smaller key).  Gallops
 * from 'from' (1, 2, 4, ... entries ahead), then binary-searches the last
 * step, so placing k sorted keys among n sorted entries costs about
 * k * log2(n / k) comparisons instead of k * log2(n).
 */
int
fr_lower_bound_from(FrState *state, IndexTuple key, int from, int n,
					FrEntryGetter get, void *arg)
{
	int			lo = from,
				step = 1,
				hi;

	/* gallop: find hi with entry hi >= key (or n), all before lo < key */
	for (;;)
	{
		hi = lo + step - 1;
		if (hi >= n)
		{
			hi = n;
			break;
		}
		if (fr_compare_tuples(state, get(arg, hi), key) >= 0)
			break;
		lo = hi + 1;
		step *= 2;
	}
	/* binary search in [lo, hi) */
	return fr_lower_bound_in(state, key, lo, hi, get, arg);
}

/* FrEntryGetter over the items of a page (arg), entry i at offset i + 1 */
IndexTuple
fr_page_entry(void *arg, int i)
{
	Page		page = (Page) arg;

	return (IndexTuple) PageGetItem(page, PageGetItemId(page, i + 1));
}

/* FrEntryGetter over an array of IndexTuple (arg) */
IndexTuple
fr_array_entry(void *arg, int i)
{
	return ((IndexTuple *) arg)[i];
}

/* In a plain leaf, the first offset whose entry is >= key (maxoff + 1 if none). */
OffsetNumber
fr_leaf_search(FrState *state, Page page, IndexTuple key)
{
	return (OffsetNumber) (fr_lower_bound(state, key, PageGetMaxOffsetNumber(page),
										  fr_page_entry, page) + 1);
}

/*
 * fr_leaf_search for a key that most likely goes after every entry
 * (sequential inserts): one comparison when it does.
 */
OffsetNumber
fr_leaf_search_last_first(FrState *state, Page page, IndexTuple key)
{
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);

	if (maxoff >= FirstOffsetNumber &&
		fr_compare_tuples(state, fr_page_entry(page, maxoff - 1), key) < 0)
		return maxoff + 1;
	return fr_leaf_search(state, page, key);
}

/* ------------------------------------------------------------------------
 * Buffer budget
 * ------------------------------------------------------------------------
 */

/*
 * The chain pages of a node, summed over its partitions (partition-start
 * items); the number of partitions in *partitions when not NULL.
 */
static int
fr_node_chain_totals(Page page, int *partitions)
{
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page);
	int			total = 0,
				n = 0;

	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		FrNodeItem	item = fr_node_get_item(page, off);

		if (item->flags & FR_ITEM_PART_START)
		{
			total += item->chain_pages;
			n++;
		}
	}
	if (partitions)
		*partitions = n;
	return total;
}

/* total chain pages of a node */
int
fr_node_buffer_pages(Page page)
{
	return fr_node_chain_totals(page, NULL);
}

/* the partitions (partition-start items) of a node */
int
fr_node_partitions(Page page)
{
	int			n;

	(void) fr_node_chain_totals(page, &n);
	return n;
}

/*
 * Is the node on 'page' an in-memory root above level 1?  Every batch of
 * inserts appends to one of its tail pages under that page's exclusive
 * lock, so with one partition (a root has few children, fewer than
 * partition_children) concurrent inserts queue on one page: with 8
 * single-row clients that wait was 5-11 us per append, about the size of
 * what they lost against btree (src/README.md section 4, "The in-memory
 * root's partitions").  Such a root is cut into about FR_ROOT_PARTITIONS
 * partitions (fr_partition_max_children) and its budget covers two pages
 * per partition (fr_node_budget).  Out of memory (fr_index_large) the
 * usual rules hold.
 */
bool
fr_root_spread(FrState *state, Page page)
{
	return FrPageIsRoot(page) && FrPageGetOpaque(page)->level > 1 &&
		!fr_index_large(state->index);
}

/*
 * The buffer budget of the node on 'page': buffer_percent of its children
 * in pages, at least FR_MIN_BUFFER_PAGES and at most buffer_pages.  Scaling
 * with the fanout keeps the buffers above the leaves a fixed fraction of
 * the leaves, whatever the key width, which is what decides both the
 * batching (messages per leaf write) and the memory the buffers need.
 *
 * Above level 1, once the index is large against shared buffers
 * (fr_index_large), the percentage is at least FR_UPPER_BUFFER_PERCENT: a
 * flush from such a node appends to the chains of its children's
 * partitions (several per child), each append costing a chain tail and a
 * leaf filter page that are out of memory by then, so it must carry many
 * messages per chain; at buffer_percent it carried 2-3 per page touched,
 * and those reads were 91% of all flush reads (src/README.md, section 4,
 * "Flush policy summary").  Still a percentage of the children, so the
 * buffers above level 1 stay a fixed fraction of the level-1 nodes for
 * every key width.  The price is paid by lookups, which walk these longer
 * chains (measured in src/README.md, section 4).  In memory buffer_percent
 * stays: every lookup reads the buffers on its path.
 *
 * At level 1 the children are counted in the plain leaf pages they stand
 * for: a compressed leaf holds R times the entries of a plain one
 * (FrAmCache.leaf_pages_each, the backend's average over the leaves it
 * wrote), so counting it as one page would buffer R times fewer messages
 * per leaf entry and make every leaf write, which decompresses and
 * recompresses the whole leaf, carry R times fewer messages.  Uncompressed
 * indexes are unchanged (the average is 1), and buffer_pages still caps
 * the budget.
 *
 * An in-memory root above level 1 (fr_root_spread) gets at least two pages
 * per partition, still capped by buffer_pages.
 */
int
fr_node_budget(FrState *state, Page page)
{
	int			children = PageGetMaxOffsetNumber(page);
	int			percent = state->buffer_percent;
	int			budget;
	double		scale = 1.0;

	if (FrPageGetOpaque(page)->level > 1 && fr_index_large(state->index))
		percent = Max(percent, FR_UPPER_BUFFER_PERCENT);
	if (FrPageGetOpaque(page)->level == 1)
		scale = fr_leaf_scale(state->index);
	budget = (int) Min(ceil(children * scale * percent / 100), (double) INT_MAX);

	/*
	 * a spread root keeps a tail page in each partition: with less than
	 * two pages per partition it would be over budget with its tails alone
	 * and flush a page at a time
	 */
	if (fr_root_spread(state, page))
		budget = Max(budget, 2 * fr_node_partitions(page));
	return Max(FR_MIN_BUFFER_PAGES, Min(state->buffer_pages, budget));
}

/*
 * The plain leaf pages a leaf of 'index' stands for, on average over the
 * leaves this backend wrote (1 when uncompressed or none written yet).
 */
double
fr_leaf_scale(Relation index)
{
	return Max(fr_amcache(index)->leaf_pages_each, 1.0);
}

/* is the node on 'page' over its buffer budget? */
bool
fr_node_over_budget(FrState *state, Page page)
{
	return fr_node_buffer_pages(page) > fr_node_budget(state, page);
}

/*
 * The most children a partition may have when node items take 'item_space'
 * bytes each (line pointer included), in a node of 'level': the
 * partition_children option, lowered for wide pivots to a quarter of what a
 * node holds, so that a full node always has several partitions to split
 * at.  At level 1 it is divided by the plain leaf pages a child stands for
 * (the scale fr_node_budget multiplies the budget by): a flush still
 * carries as many messages per leaf write, but a partition's chain, which
 * every lookup routed to it reads, stays as long as in an uncompressed
 * index.
 */
int
fr_partition_limit(FrState *state, Size item_space, int level)
{
	int			capacity = (int) (FrPageUsable / Max(item_space, 1));
	int			limit = Min(state->partition_children, Max(capacity / 4, 1));

	if (level == 1 && fr_leaf_scale(state->index) > 1.0)
		limit = Max((int) (limit / fr_leaf_scale(state->index)),
					Min(limit, FR_MIN_PARTITION_CHILDREN));
	return limit;
}

/* The partition with the most chain pages (InvalidOffsetNumber if none). */
OffsetNumber
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

/* ------------------------------------------------------------------------
 * Buffer chains
 * ------------------------------------------------------------------------
 */

/*
 * Will walking the chain of the partition start 'pitem' read a block from
 * outside shared buffers?  A hint: false when the chain is empty or is one
 * page that is in shared buffers now; a longer chain is taken to cost a
 * read without looking at each page.
 */
bool
fr_chain_costs_read(Relation index, FrNodeItem pitem)
{
	return pitem->chain_pages > 1 ||
		(pitem->chain_pages == 1 && !fr_buffer_cached(index, pitem->chain_tail));
}

/*
 * Visit every page of the chain whose newest page is 'tail', newest first,
 * each share-locked while 'visit' runs.  When 'visit' returns true (a key
 * filter ruled its key out), the walk goes on past the page's filter
 * segment (fr_filter_next) instead of at the next page.  The caller holds
 * the owning node locked, so the chain cannot change.  'npages' is the page count the node
 * records: a chain longer than that is corrupt (a loop, or a link into
 * another chain).
 */
void
fr_chain_walk(Relation index, BlockNumber tail, uint32 npages,
			  FrChainVisitor visit, void *arg)
{
	BlockNumber blkno = tail;
	uint32		seen = 0;

	while (blkno != InvalidBlockNumber)
	{
		Buffer		buf;
		Page		page;

		if (++seen > npages)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\" has a buffer chain longer than its node records (%u pages) at block %u",
							RelationGetRelationName(index), npages, blkno),
					 errhint("Please REINDEX it.")));
		buf = fr_read_chain_buffer(index, blkno, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (visit(arg, page, blkno))
			blkno = fr_filter_next(page);	/* past the filter's segment */
		else
			blkno = FrPageGetOpaque(page)->link;
		UnlockReleaseBuffer(buf);
	}
}

static void fr_chain_cut(Relation index, Buffer nodebuf, OffsetNumber partoff,
						 BlockNumber keep, BlockNumber *blocks, int nblocks);

/* what fr_read_chain collects */
typedef struct FrChainRead
{
	IndexTuple *msgs;
	int			n;
	int			cap;
	BlockNumber *blocks;
	int			nblocks;
	FrMoveMap  *moves;			/* or NULL: sources not wanted */
} FrChainRead;

/* note that message 'msg' was read from offset 'off' of chain page 'page' */
static void
fr_move_map_add(FrMoveMap *m, IndexTuple msg, int page, OffsetNumber off)
{
	if (m->n >= m->cap)
	{
		m->cap = Max(256, m->cap * 2);
		m->src = m->src ? repalloc_huge(m->src, sizeof(FrMoveSrc) * m->cap)
			: palloc(sizeof(FrMoveSrc) * m->cap);
	}
	m->src[m->n].msg = msg;
	m->src[m->n].page = (uint32) page;
	m->src[m->n].off = off;
	m->n++;
}

static bool
fr_chain_read_page(void *arg, Page page, BlockNumber blkno)
{
	FrChainRead *r = (FrChainRead *) arg;
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page);

	if (r->moves)
		r->moves->lsn[r->nblocks] = PageGetLSN(page);
	r->blocks[r->nblocks++] = blkno;
	for (off = FirstOffsetNumber; off <= maxoff; off++)
	{
		if (r->n >= r->cap)
		{
			r->cap *= 2;
			r->msgs = repalloc_huge(r->msgs, sizeof(IndexTuple) * r->cap);
		}
		r->msgs[r->n] = CopyIndexTuple((IndexTuple) PageGetItem(page, PageGetItemId(page, off)));
		if (r->moves)
			fr_move_map_add(r->moves, r->msgs[r->n], r->nblocks - 1, off);
		r->n++;
	}
	return false;
}

/* qsort comparator of FrMoveSrc by message address */
static int
fr_move_src_cmp(const void *a, const void *b)
{
	uintptr_t	x = (uintptr_t) ((const FrMoveSrc *) a)->msg;
	uintptr_t	y = (uintptr_t) ((const FrMoveSrc *) b)->msg;

	return (x > y) - (x < y);
}

/*
 * Read every message of the chain of the node item 'pitem' (a partition
 * start of a node the caller holds locked), newest page first.  Returns
 * palloc'd copies; *blocks gets the chain's blocks, newest first.  With
 * 'moves', also where each copy came from (for fr_move_items), which stays
 * true while the caller holds the node exclusively: nothing else changes
 * the chain's pages then.
 */
IndexTuple *
fr_read_chain(Relation index, FrNodeItem pitem, int *nmsgs,
			  BlockNumber **blocks, int *nblocks, FrMoveMap *moves)
{
	FrChainRead r;

	r.cap = 256;
	r.n = 0;
	r.msgs = palloc(sizeof(IndexTuple) * r.cap);
	r.blocks = palloc(sizeof(BlockNumber) * Max(pitem->chain_pages, 1));
	r.nblocks = 0;
	r.moves = moves;
	if (moves)
		moves->lsn = palloc(sizeof(XLogRecPtr) * Max(pitem->chain_pages, 1));
	fr_chain_walk(index, pitem->chain_tail, pitem->chain_pages,
				  fr_chain_read_page, &r);
	*nmsgs = r.n;
	*blocks = r.blocks;
	*nblocks = r.nblocks;
	if (moves)
	{
		moves->blocks = r.blocks;
		moves->nblocks = r.nblocks;
		if (moves->n > 1)
			qsort(moves->src, moves->n, sizeof(FrMoveSrc), fr_move_src_cmp);
	}
	return r.msgs;
}

/*
 * Where the flush's message 'msg' was read from, or NULL when it was not
 * read from the flushed chain
 */
FrMoveSrc *
fr_move_map_find(FrMoveMap *m, IndexTuple msg)
{
	FrMoveSrc	key;

	key.msg = msg;
	return (FrMoveSrc *) bsearch(&key, m->src, m->n, sizeof(FrMoveSrc),
								 fr_move_src_cmp);
}

/* how many of msgs[0..n) fit in 'avail' bytes of a page */
int
fr_count_fitting(IndexTuple *msgs, int n, Size avail)
{
	int			i = 0;

	while (i < n && fr_item_space(msgs[i]) <= avail)
		avail -= fr_item_space(msgs[i++]);
	return i;
}

/*
 * Add sorted msgs[0..n) to the chain page in 'tbuf' (exclusively locked;
 * the caller checked they fit).  A sorted page (FR_SORTED) stays sorted:
 * each message goes to its place in key order, at offset (its position
 * among the page's messages) + (messages of the run before it) + 1, as a
 * leaf merge does.  A page left unsorted by format version 1 is appended
 * to.  With 'slot' (see fr_leaf_add_items) the same record adds the
 * messages' keys to that leaf filter slot.
 */
void
fr_chain_tail_add(FrState *state, Buffer tbuf, IndexTuple *msgs, int n,
				  FrSlotAdd *slot)
{
	Page		page = BufferGetPage(tbuf);
	int			nold = PageGetMaxOffsetNumber(page);
	OffsetNumber *offs;
	int			k;

	if (n <= 0)
		return;
	if (!FrPageIsSorted(page))
	{
		if (!fr_move_items(state, tbuf, msgs, NULL, n, slot))
			fr_leaf_add_items(state->index, tbuf, msgs, NULL, n, slot);
		return;
	}
	offs = palloc(sizeof(OffsetNumber) * n);
	if (n == 1)
		offs[0] = (OffsetNumber) (fr_lower_bound(state, msgs[0], nold,
												 fr_page_entry, page) + 1);
	else
	{
		/* the run is sorted: each position is at or after the previous one */
		int			pos = 0;

		for (k = 0; k < n; k++)
		{
			pos = fr_lower_bound_from(state, msgs[k], pos, nold,
									  fr_page_entry, page);
			offs[k] = (OffsetNumber) (pos + k + 1);
		}
	}
	/* a flush's messages are logged as a move when they can be */
	if (!fr_move_items(state, tbuf, msgs, offs, n, slot))
		fr_leaf_add_items(state->index, tbuf, msgs, offs, n, slot);
	pfree(offs);
}

/* what fr_compare_item_ids needs besides the two line pointers */
typedef struct FrItemSortArg
{
	FrState    *state;
	Page		page;
} FrItemSortArg;

/* qsort_arg comparator over the line pointers of one page, by tuple */
static int
fr_compare_item_ids(const void *a, const void *b, void *arg)
{
	FrItemSortArg *s = (FrItemSortArg *) arg;

	return fr_compare_tuples(s->state,
							 (IndexTuple) PageGetItem(s->page, (ItemId) a),
							 (IndexTuple) PageGetItem(s->page, (ItemId) b));
}

/*
 * Seal chain page 'page' (a copy registered for WAL): put its messages in
 * key order and flag it FR_SORTED.  Only the line pointers move; the
 * tuples, and so the page's filter, stay as they are.
 */
static void
fr_chain_seal_page(FrState *state, Page page)
{
	FrItemSortArg arg;

	arg.state = state;
	arg.page = page;
	qsort_arg(PageGetItemId(page, FirstOffsetNumber),
			  PageGetMaxOffsetNumber(page), sizeof(ItemIdData),
			  fr_compare_item_ids, &arg);
	FrPageGetOpaque(page)->flags |= FR_SORTED;
}

/*
 * Link a new chain page holding a prefix of the sorted msgs[0..n) in front
 * of the chain of the partition at 'partoff' (node and new page in one
 * record).  The page is flagged FR_SORTED when 'sorted' (later appends
 * then keep it in key order); otherwise later appends go to its end and it
 * is sorted when it is sealed.  It is FR_FILTERED when the index keeps key
 * filters.
 *
 * An unsorted current tail is sealed (fr_chain_seal_page) in the same
 * record, so that after every record only a chain's newest page is
 * unsorted; that includes the old pages a partial flush is about to cut
 * off, which a crash may leave behind the new ones.  When
 * 'continue_segment' (the tail stays in the chain), the new page's filter
 * continues the tail's segment if that filter allows
 * (fr_filter_init_page).  Returns how many messages the new page took:
 * as many as fit, at least one; none when n is 0 (the messages are then
 * moved onto the page by the caller, fr_chain_append).
 */
static int
fr_chain_add_page(FrState *state, Buffer nodebuf, OffsetNumber partoff,
				  IndexTuple *msgs, int n, bool continue_segment, bool sorted)
{
	Relation	index = state->index;
	uint16		level = FrPageGetOpaque(BufferGetPage(nodebuf))->level;
	BlockNumber tail = fr_node_get_item(BufferGetPage(nodebuf), partoff)->chain_tail;
	int			fbytes = fr_filter_page_bytes(index);
	Buffer		pbuf = InvalidBuffer;
	Buffer		nbuf;
	GenericXLogState *xs;
	Page		np,
				cp;
	FrNodeItem	pitem;
	int			take,
				i;

	/* the page it goes in front of, which it may seal or extend */
	if (tail != InvalidBlockNumber)
		pbuf = fr_read_chain_buffer(index, tail, BUFFER_LOCK_EXCLUSIVE);
	nbuf = fr_new_buffer(index);
	xs = GenericXLogStart(index);
	np = GenericXLogRegisterBuffer(xs, nodebuf, 0);
	cp = fr_generic_register_whole(xs, nbuf);
	pitem = fr_node_get_item(np, partoff);

	/* an unsorted tail is sealed as the new page goes in front of it */
	if (BufferIsValid(pbuf) && !FrPageIsSorted(BufferGetPage(pbuf)))
		fr_chain_seal_page(state, GenericXLogRegisterBuffer(xs, pbuf, 0));

	/* a filtered page linked to the old tail, sorted if asked */
	fr_init_page(cp, FR_CHAIN | (sorted ? FR_SORTED : 0), level);
	if (fbytes > 0)
		fr_filter_init_page(cp, fbytes, TupleDescAttr(RelationGetDescr(index), 0)->attlen,
							(continue_segment && BufferIsValid(pbuf)) ?
							BufferGetPage(pbuf) : NULL);
	FrPageGetOpaque(cp)->link = pitem->chain_tail;

	/* as many messages as fit, at least one (none asked: none) */
	take = (n == 0) ? 0 : Max(fr_count_fitting(msgs, n, PageGetExactFreeSpace(cp)), 1);
	for (i = 0; i < take; i++)
		if (PageAddItem(cp, (Item) msgs[i], IndexTupleSize(msgs[i]),
						InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to add message to fractal buffer page");
	fr_filter_add_tuples(cp, msgs, take);

	/* the node points at it */
	if (pitem->chain_pages >= FR_MAX_CHAIN_PAGES)
		elog(ERROR, "fractal buffer chain of block %u is too long",
			 BufferGetBlockNumber(nodebuf));
	pitem->chain_tail = BufferGetBlockNumber(nbuf);
	pitem->chain_pages++;
	fr_generic_finish(xs);
	UnlockReleaseBuffer(nbuf);
	if (BufferIsValid(pbuf))
		UnlockReleaseBuffer(pbuf);
	return take;
}

/*
 * Add to the chain tail of the partition at 'partoff' of the node in
 * 'nodebuf' (held exclusively) as many of sorted msgs[0..n) as fit there.
 * Returns how many; at least one when the tail is an empty page.
 */
static int
fr_chain_fill_tail(FrState *state, Buffer nodebuf, OffsetNumber partoff,
				   IndexTuple *msgs, int n)
{
	BlockNumber tail = fr_node_get_item(BufferGetPage(nodebuf), partoff)->chain_tail;
	Buffer		tbuf = fr_read_chain_buffer(state->index, tail, BUFFER_LOCK_EXCLUSIVE);
	Page		tpage = BufferGetPage(tbuf);
	int			k = fr_count_fitting(msgs, n, PageGetExactFreeSpace(tpage));

	if (k == 0 && PageGetMaxOffsetNumber(tpage) == 0)
		elog(ERROR, "fractal message of %zu bytes does not fit an empty buffer page",
			 IndexTupleSize(msgs[0]));
	fr_chain_tail_add(state, tbuf, msgs, k, NULL);
	UnlockReleaseBuffer(tbuf);
	return k;
}

/*
 * Add the sorted messages msgs[0..nmsgs) to the chain of the partition
 * starting at 'partoff' of the node in 'nodebuf', which the caller holds
 * exclusively locked.  The current tail page is filled first; then new
 * chain pages are linked, each logged together with the node page that now
 * points at it.  'sorted' asks for new pages kept in key order as they
 * fill (the root's, which every insert and lookup searches); otherwise a
 * new page takes later messages at its end and is sorted when sealed.
 */
void
fr_chain_append(FrState *state, Buffer nodebuf, OffsetNumber partoff,
				IndexTuple *msgs, int nmsgs, bool sorted)
{
	Page		np = BufferGetPage(nodebuf);
	int			i = 0;

	if (fr_node_get_item(np, partoff)->chain_tail != InvalidBlockNumber)
		i = fr_chain_fill_tail(state, nodebuf, partoff, msgs, nmsgs);

	/*
	 * New pages continue their predecessor's filter segment, at every
	 * level: the predecessor is the tail just read above (or the page
	 * added just before), so copying its filter costs no read.  A flush
	 * that logs moves links each page empty and then moves messages onto
	 * it, so that no image of them is logged.
	 */
	while (i < nmsgs)
	{
		if (state->moves == NULL)
		{
			i += fr_chain_add_page(state, nodebuf, partoff, msgs + i,
								   nmsgs - i, true, sorted);
			continue;
		}
		(void) fr_chain_add_page(state, nodebuf, partoff, NULL, 0, true, sorted);
		i += fr_chain_fill_tail(state, nodebuf, partoff, msgs + i, nmsgs - i);
	}
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
		FrNodeItem	pitem;
		int			k;

		for (k = 0; k < n; k++)
			bufs[k] = fr_read_buffer(index, blocks[i + k], BUFFER_LOCK_EXCLUSIVE);
		xs = GenericXLogStart(index);
		pitem = fr_node_get_item(GenericXLogRegisterBuffer(xs, nodebuf, 0), partoff);
		for (k = 0; k < n; k++)
			fr_free_page_in_place(GenericXLogRegisterBuffer(xs, bufs[k], 0));
		pitem->chain_tail = (i + n < nblocks) ? blocks[i + n] : InvalidBlockNumber;
		pitem->chain_pages = nblocks - i - n;
		fr_generic_finish(xs);
		for (k = 0; k < n; k++)
		{
			UnlockReleaseBuffer(bufs[k]);
			fr_record_free_page(index, blocks[i + k]);
		}
		i += n;
	}
}

/*
 * Replace the chain of the partition at 'partoff' (node held exclusively),
 * whose pages are blocks[0..nblocks) newest first, by a chain holding only
 * msgs[0..n) (n > 0): the part of a flush that could not be applied.
 *
 * Copy before delete, as in a flush: the messages are first written to new
 * pages linked in front of the old ones (each record: node + new page);
 * then the old pages are cut off the oldest new page and freed, two per
 * record (node, oldest new page, old pages), the cut moving down the chain
 * so it stays valid after every record.  Every message of the old chain is
 * in msgs or already in a child, so nothing is lost at any point.
 */
void
fr_chain_replace(FrState *state, Buffer nodebuf, OffsetNumber partoff,
				 BlockNumber *blocks, int nblocks, IndexTuple *msgs, int n)
{
	Relation	index = state->index;
	BlockNumber oldest_new;
	int			i = 0;

	/*
	 * Write the messages to new pages in front of the chain.  Each starts
	 * its own filter segment: a segment must not reach into the old pages
	 * being cut off, nor record where they end.
	 */
	i = fr_chain_add_page(state, nodebuf, partoff, msgs, n, false, true);
	oldest_new = fr_node_get_item(BufferGetPage(nodebuf), partoff)->chain_tail;
	while (i < n)
		i += fr_chain_add_page(state, nodebuf, partoff, msgs + i, n - i,
							   false, true);

	/* cut off and free the old pages */
	fr_chain_cut(index, nodebuf, partoff, oldest_new, blocks, nblocks);
}

/*
 * Cut the pages blocks[0..nblocks) (newest first) off the chain of the
 * partition at 'partoff' (node held exclusively), behind the chain page
 * 'keep', and free them: two per record (node, 'keep', old pages), the cut
 * moving down the chain so that it stays valid after every record.  The
 * caller has made sure that no message is lost with them.  'keep' becomes
 * the start of its filter segment (if it was not already), so that its own
 * filter no longer reaches into cut pages; a newer page's filter may reach
 * to 'keep' itself, never past it (a segment's `skip` is the link of its
 * first page).
 */
static void
fr_chain_cut(Relation index, Buffer nodebuf, OffsetNumber partoff,
			 BlockNumber keep, BlockNumber *blocks, int nblocks)
{
	int			i;

	for (i = 0; i < nblocks;)
	{
		int			k = Min(2, nblocks - i),
					j;
		Buffer		nbuf = fr_read_buffer(index, keep, BUFFER_LOCK_EXCLUSIVE);
		Buffer		bufs[2];
		GenericXLogState *xs;
		FrNodeItem	pitem;
		Page		kp;

		for (j = 0; j < k; j++)
			bufs[j] = fr_read_buffer(index, blocks[i + j], BUFFER_LOCK_EXCLUSIVE);
		xs = GenericXLogStart(index);
		pitem = fr_node_get_item(GenericXLogRegisterBuffer(xs, nodebuf, 0), partoff);
		kp = GenericXLogRegisterBuffer(xs, nbuf, 0);
		FrPageGetOpaque(kp)->link =
			(i + k < nblocks) ? blocks[i + k] : InvalidBlockNumber;
		if (FrPageIsFiltered(kp))
			FrPageGetFilter(kp)->flags |= FR_FILTER_SEG_START;
		for (j = 0; j < k; j++)
			fr_free_page_in_place(GenericXLogRegisterBuffer(xs, bufs[j], 0));
		pitem->chain_pages -= k;
		fr_generic_finish(xs);
		UnlockReleaseBuffer(nbuf);
		for (j = 0; j < k; j++)
		{
			UnlockReleaseBuffer(bufs[j]);
			fr_record_free_page(index, blocks[i + j]);
		}
		i += k;
	}
}

/*
 * Make the chain of the partition at 'partoff' (node held exclusively) end
 * in a page that holds no message and whose filter covers no page behind
 * it: link an empty page, starting its own filter segment, in front of any
 * other tail (one holding messages, or emptied by VACUUM but continuing a
 * segment).  Inserts append only to the tail, so the pages behind it then
 * change only by flushes, and a flush may empty and cut them without
 * leaving a filter that skips into cut pages (fr_rootflush.c).  Returns
 * whether any page is now behind the tail.
 */
bool
fr_chain_seal_tail(FrState *state, Buffer nodebuf, OffsetNumber partoff)
{
	FrNodeItem	pitem = fr_node_get_item(BufferGetPage(nodebuf), partoff);
	Buffer		tbuf;
	Page		tpage;
	bool		sealed;

	if (pitem->chain_tail == InvalidBlockNumber)
		return false;
	tbuf = fr_read_chain_buffer(state->index, pitem->chain_tail, BUFFER_LOCK_SHARE);
	tpage = BufferGetPage(tbuf);
	sealed = PageGetMaxOffsetNumber(tpage) == 0 &&
		fr_filter_next(tpage) == FrPageGetOpaque(tpage)->link;
	UnlockReleaseBuffer(tbuf);
	if (!sealed)
		(void) fr_chain_add_page(state, nodebuf, partoff, NULL, 0, false, true);
	return fr_node_get_item(BufferGetPage(nodebuf), partoff)->chain_pages > 1;
}

/*
 * Remove every message from the chain pages blocks[0..nblocks) in place,
 * three pages per record, keeping each page's link, flags and filter (whose
 * bits then only cause false positives).  The caller holds their node at
 * least share-locked and has applied the messages to the children first.
 */
void
fr_chain_empty_pages(Relation index, BlockNumber *blocks, int nblocks)
{
	int			i;

	for (i = 0; i < nblocks; i += 3)
	{
		int			n = Min(3, nblocks - i),
					k;
		Buffer		bufs[3];
		GenericXLogState *xs;

		for (k = 0; k < n; k++)
			bufs[k] = fr_read_chain_buffer(index, blocks[i + k], BUFFER_LOCK_EXCLUSIVE);
		xs = GenericXLogStart(index);
		for (k = 0; k < n; k++)
		{
			PageHeader	ph = (PageHeader) GenericXLogRegisterBuffer(xs, bufs[k], 0);

			ph->pd_lower = SizeOfPageHeaderData;
			ph->pd_upper = ph->pd_special;
		}
		fr_generic_finish(xs);
		for (k = 0; k < n; k++)
			UnlockReleaseBuffer(bufs[k]);
	}
}

/*
 * What fr_chain_note_page collects of a chain: its pages (newest first),
 * which hold no message, and which start their filter segment (their
 * filter, if any, covers no page behind them)
 */
typedef struct FrChainPages
{
	BlockNumber *blocks;
	bool	   *empty;
	bool	   *segstart;
	int			n;
} FrChainPages;

static bool
fr_chain_note_page(void *arg, Page page, BlockNumber blkno)
{
	FrChainPages *c = (FrChainPages *) arg;

	c->blocks[c->n] = blkno;
	c->empty[c->n] = PageGetMaxOffsetNumber(page) == 0;
	c->segstart[c->n] = fr_filter_next(page) == FrPageGetOpaque(page)->link;
	c->n++;
	return false;
}

/* the pages of the chain of 'pitem' (its node locked by the caller) */
static void
fr_chain_pages(Relation index, FrNodeItem pitem, FrChainPages *c)
{
	int			cap = Max(pitem->chain_pages, 1);

	c->blocks = palloc(sizeof(BlockNumber) * cap);
	c->empty = palloc(sizeof(bool) * cap);
	c->segstart = palloc(sizeof(bool) * cap);
	c->n = 0;
	if (pitem->chain_tail != InvalidBlockNumber)
		fr_chain_walk(index, pitem->chain_tail, pitem->chain_pages,
					  fr_chain_note_page, c);
}

/*
 * Where 'seal' (a page fr_chain_seal_tail left as the tail) is in the chain
 * of 'pitem' (its node locked by the caller): how many pages from the tail
 * up to and including it, or 0 when it is not in the chain or no longer
 * starts its filter segment.  *behind gets the page behind it.
 */
int
fr_chain_find_seal(Relation index, FrNodeItem pitem, BlockNumber seal,
				   BlockNumber *behind)
{
	FrChainPages c;
	int			i,
				pos = 0;

	fr_chain_pages(index, pitem, &c);
	for (i = 0; i < c.n; i++)
		if (c.blocks[i] == seal)
		{
			if (c.segstart[i])
				pos = i + 1;
			break;
		}
	*behind = (pos > 0 && pos < c.n) ? c.blocks[pos] : InvalidBlockNumber;
	return pos;
}

/*
 * Free the pages behind the page 'seal' of the chain of the partition at
 * 'partoff' (node held exclusively), which a share-locked root flush
 * emptied (fr_chain_empty_pages), if they are all still empty and 'seal'
 * still starts its filter segment; otherwise leave the chain alone (a later
 * flush frees what is empty).  The page just behind 'seal' stays, as the
 * chain's oldest page and the start of its own segment, when pages in
 * front of 'seal' exist: their filters may continue the segment 'seal'
 * starts, whose skip is that page (fr_chain_cut).  A chain left with no
 * message is freed whole.  Returns whether the chain is now empty.
 */
bool
fr_chain_cut_behind(Relation index, Buffer nodebuf, OffsetNumber partoff,
					BlockNumber seal)
{
	FrChainPages c;
	int			s,
				i;
	bool		emptied = true;

	fr_chain_pages(index, fr_node_get_item(BufferGetPage(nodebuf), partoff), &c);
	for (s = 0; s < c.n && c.blocks[s] != seal; s++)
		;
	if (s == c.n || !c.segstart[s])
		return false;
	for (i = s + 1; i < c.n; i++)
		emptied &= c.empty[i];
	if (!emptied)
		return false;
	if (s == 0 && c.empty[0])
	{
		/* no message left anywhere in the chain */
		fr_chain_release(index, nodebuf, partoff, c.blocks, c.n);
		return true;
	}
	if (s + 1 == c.n)
		return false;			/* nothing behind 'seal' */
	if (s == 0)
		fr_chain_cut(index, nodebuf, partoff, seal, c.blocks + 1, c.n - 1);
	else if (s + 2 < c.n)
		fr_chain_cut(index, nodebuf, partoff, c.blocks[s + 1],
					 c.blocks + s + 2, c.n - s - 2);
	return false;
}
