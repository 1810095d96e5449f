/*-------------------------------------------------------------------------
 *
 * fr_heapprefetch.c
 *	  Heap reads started ahead of an index or index-only scan (src/README.md
 *	  section 9, "Heap prefetch").
 *
 * An index scan returns one TID at a time and the executor reads its heap
 * tuple before asking for the next, so a scan of many rows spread over a
 * heap that does not fit in memory waits for one random read after
 * another: a 100-row range scan of a random key reads about 100 heap
 * blocks, and those reads, not the index's, are most of its time.  The
 * scan knows the TIDs of its whole chunk in advance, so while the executor
 * works on entry i the reads of the heap blocks of entries i+1 .. i+d are
 * started (PrefetchBuffer: posix_fadvise, a hint) and overlap.  nbtree in
 * PostgreSQL 15 does not do this; bitmap heap scans do it the same way.
 *
 * - Index scans and index-only scans (not the index's own uniqueness
 *   lookups), of an index large against shared buffers (fr_index_large),
 *   over a table of the heap access method (whose TIDs name blocks of its
 *   main fork) larger than shared buffers (local buffers for a temporary
 *   table), and not in a tablespace whose effective_io_concurrency is 0.
 *   An index-only scan visits the heap only for blocks the visibility map
 *   does not show all-visible, so only those are prefetched (the map's page
 *   stays pinned until the scan ends, as the executor keeps its own), and
 *   nothing when pg_class says 90% of the heap is all-visible.
 *   The decision is made once per scan descriptor, at the first entry
 *   that has another after it in its chunk, so a point lookup decides
 *   nothing and costs nothing.
 * - The distance d starts at 1 and grows by one every FR_HP_RAMP entries
 *   returned, up to fractal.heap_prefetch (0 turns it off).  The scan does
 *   not know the query's LIMIT, so the entries past it whose reads it
 *   started are wasted reads: at most d, and d is small while few entries
 *   have been returned (a LIMIT 10 scan wastes at most 3).
 * - A scan whose last FR_HP_HITS_STOP prefetches all found their block in
 *   shared buffers stops prefetching until amrescan: a hot range of a large
 *   table would otherwise pay a buffer mapping look-up per block, and a
 *   posix_fadvise per block past its LIMIT, for nothing (measured: 10% of a
 *   100-row range scan whose heap blocks were all cached).
 * - Nor while the backend's heap reads look served from memory (the
 *   kernel's page cache): each scan times the executor over its first
 *   entry, whose block it never prefetches, and while the average over
 *   recent scans is below fractal.heap_prefetch_min_us a scan only takes
 *   that sample (fr_heap_reads_fast).
 * - A block is not prefetched twice in a row (neighbouring entries often
 *   share one), nor past the heap's end as the scan first saw it.
 *
 * A prefetch changes no page, reads no heap page into shared buffers and
 * takes no content or heavyweight lock (an index-only scan reads and pins
 * visibility map pages, as the executor does), so it cannot change what a
 * scan returns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relscan.h"
#include "access/visibilitymap.h"
#include "catalog/pg_am_d.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
#include "utils/spccache.h"

#include "fractal.h"

/* fractal.heap_prefetch and fractal.heap_prefetch_min_us: see fr_init_gucs */
int			fr_heap_prefetch_distance = FR_DEFAULT_HEAP_PREFETCH;
int			fr_heap_prefetch_min_us = FR_DEFAULT_HEAP_PREFETCH_MIN_US;

/* an index-only scan prefetches unless this much of the heap is all-visible */
#define FR_HP_VISIBLE_PCT	90

/* the distance grows by one every this many entries returned */
#define FR_HP_RAMP			4

/* a scan stops prefetching after this many blocks in a row were cached */
#define FR_HP_HITS_STOP		16

/* weight of the newest scan's sample in the average of fr_hp_first_gap_us */
#define FR_HP_GAP_WEIGHT	0.25

enum
{
	FR_HP_UNDECIDED = 0,		/* what frbeginscan's zeroing leaves */
	FR_HP_OFF,
	FR_HP_ON
};

/*
 * amrescan: from distance 1 again, not stopped.  Whether the scan
 * prefetches is decided once per scan descriptor (frbeginscan zeroes it:
 * undecided), so the inner scan of a nested loop, restarted per outer row,
 * does not look up the heap's size each time.
 */
void
fr_heap_prefetch_rescan(FrHeapPrefetch *hp)
{
	hp->returned = 0;
	hp->hits = 0;
	hp->stopped = false;
	hp->positioned = false;
	hp->last = InvalidBlockNumber;
}

/* amendscan: drop the visibility map page's pin */
void
fr_heap_prefetch_end(FrHeapPrefetch *hp)
{
	if (BufferIsValid(hp->vmbuf))
		ReleaseBuffer(hp->vmbuf);
	hp->vmbuf = InvalidBuffer;
}

/* a new chunk was loaded (or restored): start again from its position */
void
fr_heap_prefetch_chunk(FrHeapPrefetch *hp)
{
	hp->positioned = false;
}

/*
 * Did the last VACUUM or ANALYZE find at least FR_HP_VISIBLE_PCT percent of
 * the heap all-visible?  Then an index-only scan visits the heap too seldom
 * for a visibility map look-up per block to pay: measured after VACUUM,
 * those look-ups (doubling the executor's) cost 5% of a 100-row index-only
 * range scan that fetched nothing.
 */
static bool
fr_heap_mostly_visible(Relation heap)
{
	BlockNumber pages = heap->rd_rel->relpages,
				visible = heap->rd_rel->relallvisible;

	return pages > 0 &&
		(uint64) visible * 100 >= (uint64) pages * FR_HP_VISIBLE_PCT;
}

/*
 * The time the executor took over the first entry of this backend's recent
 * scans, from its return to the call for the next one, in microseconds: an
 * exponential moving average, or -1 before the first sample.  That entry's
 * heap block is never prefetched, so the time is a heap read as the scan
 * would have it without prefetch.
 */
static double fr_hp_first_gap_us = -1;

/*
 * Take this scan's sample (the time of its first entry) and say whether
 * recent heap reads look served from memory: faster than
 * fractal.heap_prefetch_min_us, as reads from the kernel's page cache are
 * (3-10 us against 50-200 us from this project's disks), where a prefetch
 * is a posix_fadvise that does nothing but cost (measured: 23% of a 100-row
 * range scan of a heap in the page cache, 1,740 against 2,280 tps).  0
 * takes no read as fast.
 */
static bool
fr_heap_reads_fast(FrHeapPrefetch *hp)
{
	instr_time	now;
	double		gap;

	if (hp->returned == 0)
		INSTR_TIME_SET_CURRENT(hp->first_at);
	else if (hp->returned == 1)
	{
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, hp->first_at);
		gap = (double) INSTR_TIME_GET_MICROSEC(now);
		fr_hp_first_gap_us = fr_hp_first_gap_us < 0 ? gap :
			fr_hp_first_gap_us * (1 - FR_HP_GAP_WEIGHT) + gap * FR_HP_GAP_WEIGHT;
	}
	return fr_hp_first_gap_us >= 0 && fr_hp_first_gap_us < fr_heap_prefetch_min_us;
}

/* does this scan prefetch?  decided once, on first need */
static bool
fr_heap_prefetch_on(IndexScanDesc scan, FrHeapPrefetch *hp)
{
	Relation	heap = scan->heapRelation;

	if (hp->state != FR_HP_UNDECIDED)
		return hp->state == FR_HP_ON;
	hp->state = FR_HP_OFF;
	if (fr_heap_prefetch_distance <= 0 || heap == NULL ||
		heap->rd_rel->relam != HEAP_TABLE_AM_OID ||
		!fr_index_large(scan->indexRelation) ||
		(scan->xs_want_itup && fr_heap_mostly_visible(heap)) ||
		get_tablespace_io_concurrency(heap->rd_rel->reltablespace) <= 0)
		return false;
	hp->nblocks = RelationGetNumberOfBlocks(heap);
	if (hp->nblocks > (BlockNumber) (RelationUsesLocalBuffers(heap) ?
									NLocBuffer : NBuffers))
		hp->state = FR_HP_ON;
	return hp->state == FR_HP_ON;
}

/*
 * The scan is about to return entry 'cur' of its chunk 'items' (in
 * direction 'fwd'): start the heap reads of the entries after it, up to
 * the current distance, that have not been started yet.
 */
void
fr_heap_prefetch(IndexScanDesc scan, FrHeapPrefetch *hp, IndexTuple *items,
				 int nitems, int cur, bool fwd)
{
	int			step = fwd ? 1 : -1;
	int			distance,
				stop;

	/* nothing after this entry in the chunk, or not this scan */
	if (hp->stopped || cur + step < 0 || cur + step >= nitems ||
		!fr_heap_prefetch_on(scan, hp))
		return;

	/* heap reads that look served from memory: only the sample */
	if (fr_heap_reads_fast(hp))
	{
		if (hp->returned++ >= 1)
			hp->stopped = true;
		return;
	}

	/* from the entry after 'cur' or where the last call stopped */
	if (!hp->positioned || (fwd ? hp->next <= cur : hp->next >= cur))
		hp->next = cur + step;
	hp->positioned = true;
	distance = Min(1 + hp->returned / FR_HP_RAMP, fr_heap_prefetch_distance);
	if (hp->returned < FR_HP_RAMP * FR_MAX_HEAP_PREFETCH)
		hp->returned++;			/* no further: it could overflow */
	stop = fwd ? Min(cur + distance, nitems - 1) : Max(cur - distance, 0);

	/* each new block once; an index-only scan's only if not all-visible */
	for (; fwd ? hp->next <= stop : hp->next >= stop; hp->next += step)
	{
		BlockNumber blk = ItemPointerGetBlockNumber(&items[hp->next]->t_tid);

		if (blk == hp->last || blk >= hp->nblocks)
			continue;
		hp->last = blk;
		if (scan->xs_want_itup &&
			VM_ALL_VISIBLE(scan->heapRelation, blk, &hp->vmbuf))
			continue;
		if (PrefetchBuffer(scan->heapRelation, MAIN_FORKNUM, blk).initiated_io)
		{
			fr_count(FR_CTR_HEAP_PREFETCHES, 1);
			hp->hits = 0;
		}
		else if (++hp->hits >= FR_HP_HITS_STOP)
		{
			/* the heap this scan reads is in shared buffers */
			hp->stopped = true;
			return;
		}
	}
}
