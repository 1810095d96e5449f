/*-------------------------------------------------------------------------
 *
 * fr_vacuum.c
 *	  VACUUM support of the fractal index.
 *
 * ambulkdelete holds the flush lock exclusively for its whole scan, so no
 * flush or leaf split can move an entry from a page it has not scanned yet
 * to one it has; inserts keep appending to buffer chains meanwhile (their
 * TIDs are new, never in the dead set).  It then visits every page in
 * physical order and removes dead TIDs from leaves and from every buffer
 * page alike.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/indexfsm.h"
#include "utils/rel.h"

#include "fractal.h"

/*
 * Scan every page; with a callback, delete the entries it reports dead.
 * Fills the whole-index fields of 'stats' and adds to tuples_removed.
 */
static void
fr_vacuum_scan(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	BlockNumber blkno = FR_META_BLKNO + 1;
	BlockNumber nblocks;

	stats->num_pages = 0;
	stats->num_index_tuples = 0;
	stats->pages_deleted = 0;
	stats->pages_free = 0;
	stats->estimated_count = false;

	for (;;)
	{
		nblocks = RelationGetNumberOfBlocks(index);
		if (blkno >= nblocks)
			break;
		for (; blkno < nblocks; blkno++)
		{
			Buffer		buf;
			Page		page;

			vacuum_delay_point();
			buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
									 info->strategy);
			LockBuffer(buf, callback ? BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);

			if (PageIsNew(page) || FrPageIsFree(page))
			{
				/* never initialised (crash during extension) or recycled */
				if (!PageIsNew(page))
					fr_check_page(index, page, blkno);
				RecordFreeIndexPage(index, blkno);
				stats->pages_free++;
				stats->pages_deleted++;
				UnlockReleaseBuffer(buf);
				continue;
			}
			fr_check_page(index, page, blkno);

			if (FrPageIsLeaf(page) || FrPageIsChain(page))
			{
				OffsetNumber off,
							maxoff = PageGetMaxOffsetNumber(page);
				OffsetNumber *dead = NULL;
				int			ndead = 0;

				if (callback)
				{
					dead = palloc(sizeof(OffsetNumber) * Max(maxoff, 1));
					for (off = FirstOffsetNumber; off <= maxoff; off++)
					{
						IndexTuple	it = (IndexTuple) PageGetItem(page, PageGetItemId(page, off));

						if (callback(&it->t_tid, callback_state))
							dead[ndead++] = off;
					}
				}
				if (ndead > 0)
				{
					GenericXLogState *xs = GenericXLogStart(index);

					PageIndexMultiDelete(GenericXLogRegisterBuffer(xs, buf, 0),
										 dead, ndead);
					GenericXLogFinish(xs);
					stats->tuples_removed += ndead;
				}
				stats->num_index_tuples += maxoff - ndead;
				if (dead)
					pfree(dead);
			}
			stats->num_pages++;
			UnlockReleaseBuffer(buf);
		}
	}
	stats->num_pages += 1;		/* the metapage */
	stats->num_pages += stats->pages_free;
	if (callback)
		IndexFreeSpaceMapVacuum(index);
}

IndexBulkDeleteResult *
fr_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			  IndexBulkDeleteCallback callback, void *callback_state)
{
	if (stats == NULL)
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
	/* on ERROR, transaction abort releases the flush lock */
	fr_lock_flush_exclusive(info->index);
	fr_vacuum_scan(info, stats, callback, callback_state);
	fr_unlock_flush_exclusive(info->index);
	return stats;
}

/*
 * amvacuumcleanup.  After a bulk delete the statistics are exact (the scan
 * counted every leaf entry and buffered message).  When VACUUM deleted
 * nothing, no scan is made: the page count is the relation size and the
 * entry count the heap's, flagged as estimates, so cleanup stays cheap.
 */
IndexBulkDeleteResult *
fr_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
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
