/*-------------------------------------------------------------------------
 *
 * fr_flushread.c
 *	  Reading what a flush will touch before it needs it.
 *
 * Out of memory a flush's leaves, chain tails and leaf filter pages are
 * mostly on disk.  Two steps get them into shared buffers early:
 *
 * - fr_flush_warm, before the node is locked exclusively: with the node
 *   only share-locked (so lookups pass), plan the flush of the partition
 *   that will go (read its chain, sort, route), release the node, then
 *   read every planned page into shared buffers and let go of it.  The
 *   flush that follows finds its pages cached, so it holds the node
 *   exclusively for CPU work and writes, not for random reads.
 * - fr_flush_prefetch, under the exclusive lock: the same plan, for what
 *   the warm step could not foresee (another partition became the fullest,
 *   a page was evicted meanwhile), as PrefetchBuffer hints only.
 *
 * Both are hints: nothing depends on a page being cached, and a page that
 * is read here and changes or is evicted before the flush is simply read
 * again.  Both run only while the index is large against shared buffers
 * (fr_index_large); in memory they would cost CPU for nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/instrument.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "fractal.h"

/* the pages a flush will touch, each asked for in the background as found */
typedef struct FrFlushPages
{
	Relation	index;
	BlockNumber *blocks;
	int			n;
	int			cap;
	uint64		started;		/* reads PrefetchBuffer started */
} FrFlushPages;

/* note that the flush will touch 'blkno', and start reading it */
static void
fr_pages_add(FrFlushPages *p, BlockNumber blkno)
{
	if (blkno == InvalidBlockNumber || blkno == 0)
		return;
	if (p->n >= p->cap)
	{
		p->cap = Max(16, p->cap * 2);
		p->blocks = p->blocks ? repalloc(p->blocks, sizeof(BlockNumber) * p->cap)
			: palloc(sizeof(BlockNumber) * p->cap);
	}
	p->blocks[p->n++] = blkno;
	p->started += fr_prefetch_buffer(p->index, blkno);
}

/*
 * The pages a flush into the node child 'cblk' will touch for sorted
 * msgs[0..n): for each of the child's partitions the messages reach, its
 * chain tail (appended to) and, at level 1, its leaf filter page (chain
 * slot).  The child itself is read here (share lock, released at once; a
 * node stays in memory far more often than the pages below it).
 */
static void
fr_plan_child_chains(FrState *state, BlockNumber cblk, IndexTuple *msgs,
					 int n, FrFlushPages *p)
{
	Buffer		cbuf = fr_read_buffer(state->index, cblk, BUFFER_LOCK_SHARE);
	Page		cpage = BufferGetPage(cbuf);
	int			k = 0;

	/* not a node: fr_node_apply reports it */
	while (FrPageIsNode(cpage) && k < n)
	{
		OffsetNumber cpart;
		int			e = fr_partition_run(state, cpage, msgs, k, n, &cpart);
		FrNodeItem	pitem = fr_node_get_item(cpage, cpart);

		fr_pages_add(p, pitem->chain_tail);
		if (FrPageGetOpaque(cpage)->level == 1)
			fr_pages_add(p, FrItemGetFilter(pitem));
		k = e;
	}
	UnlockReleaseBuffer(cbuf);
}

/*
 * The pages a flush of the partition at 'partoff' of the node on 'page'
 * (locked by the caller, in either mode) will touch for sorted
 * msgs[0..n): the children the runs go to, and below node children their
 * chain tails and leaf filter pages; for leaf children, the partition's
 * own leaf filter page.  Each is asked for as it is found, so the children
 * are in flight before any of them is read for its chains.
 */
static void
fr_flush_plan(FrState *state, Page page, OffsetNumber partoff,
			  IndexTuple *msgs, int n, FrFlushPages *p)
{
	int			i;

	/* the children, all at once */
	for (i = 0; i < n;)
	{
		OffsetNumber off;
		int			j = fr_child_run(state, page, msgs, i, n, &off);

		fr_pages_add(p, fr_node_get_item(page, off)->child);
		i = j;
	}

	/* then the pages beside leaf children, or below node children */
	if (FrPageGetOpaque(page)->level == 1)
		fr_pages_add(p, FrItemGetFilter(fr_node_get_item(page, partoff)));
	else
		for (i = 0; i < n;)
		{
			OffsetNumber off;
			int			j = fr_child_run(state, page, msgs, i, n, &off);

			fr_plan_child_chains(state, fr_node_get_item(page, off)->child,
								 msgs + i, j - i, p);
			i = j;
		}
}

/*
 * Start reading, in the background, what a flush of the partition at
 * 'partoff' of the node in 'nodebuf' (held exclusively) will touch for
 * sorted msgs[0..n).  Out of memory the flush then waits for these reads
 * together instead of one after another while it holds the node.  A child
 * a split creates later is simply read when reached.
 */
void
fr_flush_prefetch(FrState *state, Buffer nodebuf, OffsetNumber partoff,
				  IndexTuple *msgs, int n)
{
	FrFlushPages p = {state->index, NULL, 0, 0, 0};

	if (!fr_index_large(state->index))
		return;
	fr_flush_plan(state, BufferGetPage(nodebuf), partoff, msgs, n, &p);
	fr_count(FR_CTR_FLUSH_PREFETCHES, p.started);
	if (p.blocks)
		pfree(p.blocks);
}

/*
 * The partition of the node on 'page' that a flush will take first: the
 * one routing 'key' when given, else the fullest while the node is over
 * budget; InvalidOffsetNumber when there is none or its chain is empty.
 */
static OffsetNumber
fr_warm_partition(FrState *state, Page page, IndexTuple key)
{
	OffsetNumber part;

	if (key != NULL)
		part = fr_node_partition_start(page, fr_node_find_child(state, page, key));
	else if (fr_node_over_budget(state, page))
		part = fr_fullest_partition(page);
	else
		return InvalidOffsetNumber;
	if (part == InvalidOffsetNumber ||
		fr_node_get_item(page, part)->chain_tail == InvalidBlockNumber)
		return InvalidOffsetNumber;
	return part;
}

/*
 * Before the node at 'blkno' is locked exclusively for a flush (of the
 * partition routing 'key', or of its fullest partition): read into shared
 * buffers the pages that flush will touch, holding the node only in share
 * mode while planning and not at all while reading, so lookups and inserts
 * through the node do not queue behind the flush's random reads.  Pages
 * are pinned only while read; a page evicted again before the flush is
 * read by it as before.  Counted as flush_warm_reads (blocks read here).
 */
void
fr_flush_warm(FrState *state, BlockNumber blkno, IndexTuple key)
{
	Relation	index = state->index;
	FrFlushPages p = {index, NULL, 0, 0, 0};
	MemoryContext cxt,
				oldcxt;
	Buffer		buf;
	Page		page;
	OffsetNumber part;
	int64		before;
	int			i;

	if (!fr_index_large(index))
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "fractal flush warm",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	before = pgBufferUsage.shared_blks_read;

	/* plan under a share lock: the partition, its sorted chain, its pages */
	buf = fr_read_buffer(index, blkno, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	part = FrPageIsNode(page) ? fr_warm_partition(state, page, key)
		: InvalidOffsetNumber;
	if (part != InvalidOffsetNumber)
	{
		BlockNumber *chain;
		int			nchain,
					nmsgs;
		IndexTuple *msgs = fr_read_chain(index, fr_node_get_item(page, part),
										 &nmsgs, &chain, &nchain, NULL);

		fr_sort_entries(state, msgs, nmsgs);
		fr_flush_plan(state, page, part, msgs, nmsgs, &p);
	}
	UnlockReleaseBuffer(buf);

	/* read each planned page into shared buffers, holding no lock */
	for (i = 0; i < p.n; i++)
		fr_warm_buffer(index, p.blocks[i]);
	fr_count(FR_CTR_FLUSH_PREFETCHES, p.started);
	fr_count(FR_CTR_FLUSH_WARM_READS,
			 (uint64) (pgBufferUsage.shared_blks_read - before));
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}
