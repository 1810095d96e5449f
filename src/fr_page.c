/*-------------------------------------------------------------------------
 *
 * fr_page.c
 *	  Page layout helpers of the fractal index: initialisation, sanity
 *	  checks, the metapage, node items, and page allocation through the
 *	  free space map.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xloginsert.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/buf_internals.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "storage/smgr.h"
#include "utils/rel.h"

#include "fractal.h"

/*
 * Initialise a page of the given kind.  The caller logs it.
 */
void
fr_init_page(Page page, uint16 flags, uint16 level)
{
	FrPageOpaque opaque;

	PageInit(page, BLCKSZ, sizeof(FrPageOpaqueData));
	opaque = FrPageGetOpaque(page);
	opaque->link = InvalidBlockNumber;
	opaque->level = level;
	opaque->flags = flags;
	opaque->unused = 0;
	opaque->page_id = FR_PAGE_ID;
}

/*
 * The special area size a page's flags call for: the opaque data, and on a
 * buffer page with a key filter (FR_FILTERED) the filter header and bits.
 * The filter's own size field is trusted only if it is sane, and its
 * column width only if it is the first key column's.
 */
static Size
fr_special_size(Relation index, Page page)
{
	Size		size = MAXALIGN(sizeof(FrPageOpaqueData));
	FrFilter	f;

	if ((FrPageGetOpaque(page)->flags & (FR_CHAIN | FR_FILTERED)) != (FR_CHAIN | FR_FILTERED))
		return size;
	if (PageGetSpecialSize(page) < size + sizeof(FrFilterData))
		return 0;
	f = FrPageGetFilter(page);
	if (f->nbytes == 0 || f->nbytes % FR_FILTER_BLOCK != 0 ||
		f->nbytes > FR_MAX_FILTER_BYTES)
		return 0;
	/* the filter hashes the first key column as the index stores it */
	if (f->typlen != TupleDescAttr(RelationGetDescr(index), 0)->attlen)
		return 0;
	return size + sizeof(FrFilterData) + f->nbytes;
}

/*
 * Initialise the metapage.  pd_lower is moved past the metadata so that the
 * metadata is not mistaken for the unused hole by full-page images.
 */
void
fr_init_metapage(Page page, BlockNumber root, uint32 height,
				 int buffer_pages, int partition_children)
{
	FrMetaPage meta;

	fr_init_page(page, FR_META, 0);
	meta = FrPageGetMeta(page);
	meta->magic = FR_MAGIC;
	meta->version = FR_VERSION;
	meta->root = root;
	meta->height = height;
	meta->buffer_pages = buffer_pages;
	meta->partition_children = partition_children;
	((PageHeader) page)->pd_lower =
		((char *) meta + sizeof(FrMetaPageData)) - (char *) page;
}

/*
 * Report a corrupted page of 'index' at 'blkno' (ERRCODE_INDEX_CORRUPTED,
 * with a REINDEX hint).
 */
void
fr_report_corrupt(Relation index, BlockNumber blkno, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INDEX_CORRUPTED),
			 errmsg("index \"%s\" contains corrupted page at block %u",
					RelationGetRelationName(index), blkno),
			 errdetail_internal("%s", detail),
			 errhint("Please REINDEX it.")));
}

/*
 * Sanity-check a page read from disk before anything interprets it.
 * Checks the header, the special area, the page kind and, for the
 * metapage, the magic number and version.  Item-level checks are left to
 * fractal_check.
 */
void
fr_check_page(Relation index, Page page, BlockNumber blkno)
{
	FrPageOpaque opaque;
	uint16		kind;
	PageHeader	ph = (PageHeader) page;

	if (PageIsNew(page))
		fr_report_corrupt(index, blkno, "unexpected all-zero page");
	if (ph->pd_lower < SizeOfPageHeaderData || ph->pd_lower > ph->pd_upper ||
		ph->pd_upper > ph->pd_special || ph->pd_special > BLCKSZ ||
		PageGetSpecialSize(page) < MAXALIGN(sizeof(FrPageOpaqueData)))
		fr_report_corrupt(index, blkno, "page header bounds are inconsistent");
	opaque = FrPageGetOpaque(page);
	if (opaque->page_id != FR_PAGE_ID)
		fr_report_corrupt(index, blkno, "wrong page id");
	if (PageGetSpecialSize(page) != fr_special_size(index, page))
		fr_report_corrupt(index, blkno, "wrong special area size");
	kind = opaque->flags & (FR_META | FR_LEAF | FR_NODE | FR_CHAIN | FR_FREE |
							FR_LFILTERS);
	if (kind != FR_META && kind != FR_LEAF && kind != FR_NODE &&
		kind != FR_CHAIN && kind != FR_FREE && kind != FR_LFILTERS)
		fr_report_corrupt(index, blkno, "invalid page kind flags");
	if (kind == FR_LFILTERS && !fr_lfilter_page_valid(index, page))
		fr_report_corrupt(index, blkno, "leaf filter page has an invalid layout");
	if ((blkno == FR_META_BLKNO) != (kind == FR_META))
		fr_report_corrupt(index, blkno, "metapage is not at block 0");
	if (kind == FR_META)
	{
		FrMetaPage meta = FrPageGetMeta(page);

		if (meta->magic != FR_MAGIC)
			fr_report_corrupt(index, blkno, "metapage has a wrong magic number");
		if (meta->version < FR_MIN_VERSION || meta->version > FR_VERSION)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\" has format version %u, this library supports versions %u to %u",
							RelationGetRelationName(index), meta->version,
							FR_MIN_VERSION, FR_VERSION),
					 errhint("REINDEX required: rebuild it with REINDEX INDEX.")));
	}
	if ((kind == FR_LEAF && opaque->level != 0) ||
		(kind == FR_NODE && opaque->level == 0) ||
		(kind == FR_LFILTERS && opaque->level != 1) ||
		opaque->level > 64)
		fr_report_corrupt(index, blkno, "page level does not match its kind");
	if (kind == FR_NODE && PageGetMaxOffsetNumber(page) < FirstOffsetNumber)
		fr_report_corrupt(index, blkno, "internal node has no items");
}

/* is 'rel' an index of this access method? */
bool
fr_is_fractal_index(Relation rel)
{
	return rel->rd_rel->relkind == RELKIND_INDEX && rel->rd_indam != NULL &&
		rel->rd_indam->ambuild == frbuild;
}

/*
 * What an index keeps in rd_amcache: a copy of the metapage and the
 * relation size last seen.  Both may be stale; see their users.
 */
FrAmCache *
fr_amcache(Relation index)
{
	if (index->rd_amcache == NULL)
		index->rd_amcache = MemoryContextAllocZero(index->rd_indexcxt,
												   sizeof(FrAmCache));
	return (FrAmCache *) index->rd_amcache;
}

/*
 * Every this many reads of recently seen pages one goes through ReadBuffer
 * anyway: ReadRecentBuffer pins without raising the buffer's usage count,
 * so a hot page read only that way would look unused to the clock sweep.
 */
#define FR_RECENT_BUMP_EVERY	8

/*
 * Pin block 'blkno' of 'index': through the buffer the backend last found
 * it in when that buffer still holds it (ReadRecentBuffer checks the tag;
 * this skips the buffer mapping table's hash lookup and partition lock,
 * which every lookup otherwise pays for the root and its buffer pages),
 * else through ReadBuffer.  Counted in pg_statio_*_indexes either way.
 *
 * Only while the index is small against shared buffers (fr_index_large):
 * out of memory every read goes through ReadBuffer, which raises the
 * usage count each time, as btree's reads of its inner pages do.  There
 * the clock sweep runs fast (scans that fetch many heap rows pass it over
 * every buffer several times a second), and nodes and buffer pages whose
 * count rose at one read in eight were evicted between their uses: a
 * 100-row range scan read 3.3 chain pages from outside shared buffers
 * (1.95 since), a point lookup 0.044 level-1 nodes (0.001 since); see
 * src/README.md section 3, "Reading a page".
 */
static Buffer
fr_pin_buffer(Relation index, BlockNumber blkno)
{
	FrAmCache  *cache = fr_amcache(index);
	FrRecentBuffer *r = &cache->recent[blkno % FR_RECENT_SLOTS];

	if (!fr_index_large(index) &&
		r->blkno == blkno && r->buf != InvalidBuffer &&
		++cache->recent_reads % FR_RECENT_BUMP_EVERY != 0 &&
		ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, blkno, r->buf))
	{
		pgstat_count_buffer_read(index);
		pgstat_count_buffer_hit(index);
		return r->buf;
	}
	return ReadBuffer(index, blkno);
}

/*
 * Remember where the checked page 'blkno' was found, when it is a node, a
 * buffer page or a leaf filter page (leaves are too many to keep here and
 * would push out the pages every lookup reads).
 */
static void
fr_remember_buffer(Relation index, BlockNumber blkno, Buffer buf)
{
	FrAmCache  *cache = fr_amcache(index);
	FrRecentBuffer *r = &cache->recent[blkno % FR_RECENT_SLOTS];

	if ((FrPageGetOpaque(BufferGetPage(buf))->flags &
		 (FR_NODE | FR_CHAIN | FR_LFILTERS)) == 0)
		return;
	r->blkno = blkno;
	r->buf = buf;
}

/*
 * Read and lock a page, checking it.  mode is BUFFER_LOCK_SHARE or
 * BUFFER_LOCK_EXCLUSIVE.  A reference past the end of the relation is
 * reported as corruption naming the index; the relation size is cached (an
 * index never shrinks) and re-read only for a block beyond it.
 */
Buffer
fr_read_buffer(Relation index, BlockNumber blkno, int mode)
{
	Buffer		buf;
	FrAmCache  *cache = fr_amcache(index);
	uint64		blocks_read = fr_blocks_read_so_far();	/* for the counters */

	if (blkno == InvalidBlockNumber ||
		(blkno >= cache->nblocks &&
		 blkno >= (cache->nblocks = RelationGetNumberOfBlocks(index))))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" refers to block %u, past its end (%u blocks)",
						RelationGetRelationName(index), blkno, cache->nblocks),
				 errhint("Please REINDEX it.")));
	buf = fr_pin_buffer(index, blkno);

	/*
	 * Start loading the page's header and its end (the special area of
	 * every page kind but a filtered buffer page) while the lock is taken:
	 * fr_check_page reads both, and finding the special area needs the
	 * header first, so unprompted the two cache misses would come in turn.
	 */
#ifdef __GNUC__
	__builtin_prefetch(BufferGetPage(buf));
	__builtin_prefetch((char *) BufferGetPage(buf) + BLCKSZ - 1);
#endif
	LockBuffer(buf, mode);
	fr_check_page(index, BufferGetPage(buf), blkno);
	if (fr_blocks_read_so_far() != blocks_read)
		fr_count_page_read(BufferGetPage(buf));
	fr_remember_buffer(index, blkno, buf);
	return buf;
}

/*
 * Ask for block 'blkno' to be read in the background (nothing when it is in
 * shared buffers already).  A hint only: blocks past the cached relation
 * size are left to fr_read_buffer, which reports them.  Returns whether a
 * read was started.
 */
bool
fr_prefetch_buffer(Relation index, BlockNumber blkno)
{
#ifdef USE_PREFETCH
	if (blkno == InvalidBlockNumber || blkno >= fr_amcache(index)->nblocks)
		return false;
	return PrefetchBuffer(index, MAIN_FORKNUM, blkno).initiated_io;
#else
	return false;
#endif
}

/*
 * Is the index large enough, against shared buffers, for a flush's pages
 * to be missing from them?  The relation size is the one fr_read_buffer
 * caches.  Four policies follow it:
 *
 * - read-ahead (fr_flush_prefetch) and warming (fr_flush_warm) only for a
 *   large index: in memory the look-ups cost about 4% of an insert load's
 *   CPU for nothing.  (Skipping after a flush that found everything cached
 *   did not work: out of memory many flushes do, and the ones after them
 *   lost half the gain.)
 * - sorted appends to child chains only for a large index; a small one
 *   appends to an unsorted tail and sorts it when sealed (fr_chain_append).
 *   In memory that saved 7-10% of an insert load's CPU (binary searches in
 *   cache-cold tail pages); out of memory, unsorted tails measured 15-18%
 *   slower in the last quarter of an 8x-memory load (the sealing step, by
 *   a build without it; why is not yet found: same reads, writes and
 *   structure; see src/README.md section 3).
 * - larger budgets for nodes above level 1 (fr_node_budget).
 */
bool
fr_index_large(Relation index)
{
	return fr_blocks_large(fr_amcache(index)->nblocks);
}

/* is an index of 'blocks' blocks large (a quarter of shared buffers or more)? */
bool
fr_blocks_large(BlockNumber blocks)
{
	return blocks >= (BlockNumber) (NBuffers / 4);
}

/*
 * The size of 'index' in blocks as the backend last saw it (fr_read_buffer
 * keeps it), or, before it has read a page, as the storage manager says.
 */
BlockNumber
fr_index_blocks(Relation index)
{
	BlockNumber cached = fr_amcache(index)->nblocks;

	return cached != 0 ? cached : RelationGetNumberOfBlocks(index);
}

/*
 * Is block 'blkno' of 'index' in shared buffers now?  A hint (it may be
 * evicted or read in the next moment): one look in the buffer mapping
 * table, as ReadBuffer's own, without pinning or reading anything.  A
 * temporary index's local buffers are not looked at: reported cached.
 */
bool
fr_buffer_cached(Relation index, BlockNumber blkno)
{
	BufferTag	tag;
	uint32		hash;
	LWLock	   *lock;
	int			id;

	if (RelationUsesLocalBuffers(index))
		return true;
	INIT_BUFFERTAG(tag, index->rd_node, MAIN_FORKNUM, blkno);
	hash = BufTableHashCode(&tag);
	lock = BufMappingPartitionLock(hash);
	LWLockAcquire(lock, LW_SHARED);
	id = BufTableLookup(&tag, hash);
	LWLockRelease(lock);
	return id >= 0;
}

/*
 * Bring block 'blkno' into shared buffers and let go of it at once: no pin
 * kept.  For pages about to be needed under a lock that should not be held
 * across a read (fr_flush_warm).  A page that had to be read is counted by
 * its kind (fractal_counters), looked at under a share lock held only for
 * that; a page of another layout is not counted (fr_read_buffer reports it
 * when it is used).  Blocks past the cached relation size are left to
 * fr_read_buffer.
 */
void
fr_warm_buffer(Relation index, BlockNumber blkno)
{
	uint64		blocks_read = fr_blocks_read_so_far();
	Buffer		buf;
	Page		page;

	if (blkno == InvalidBlockNumber || blkno >= fr_amcache(index)->nblocks)
		return;
	buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, NULL);
	if (fr_blocks_read_so_far() != blocks_read)
	{
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page) && ((PageHeader) page)->pd_special <= BLCKSZ &&
			PageGetSpecialSize(page) >= MAXALIGN(sizeof(FrPageOpaqueData)) &&
			FrPageGetOpaque(page)->page_id == FR_PAGE_ID)
			fr_count_page_read(page);
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	}
	ReleaseBuffer(buf);
}

/*
 * Read and lock page 'blkno', which a link says is of page kind 'kind' (one
 * FR_* kind flag); any other kind there is corruption, reported as 'what'.
 */
Buffer
fr_read_kind_buffer(Relation index, BlockNumber blkno, int mode, uint16 kind,
					const char *what)
{
	Buffer		buf = fr_read_buffer(index, blkno, mode);

	if ((FrPageGetOpaque(BufferGetPage(buf))->flags & kind) == 0)
		fr_report_corrupt(index, blkno, what);
	return buf;
}

/*
 * Read and lock a page of a buffer chain, reporting corruption if it is
 * not a buffer page.
 */
Buffer
fr_read_chain_buffer(Relation index, BlockNumber blkno, int mode)
{
	return fr_read_kind_buffer(index, blkno, mode, FR_CHAIN,
							   "buffer chain leads to a page that is not a buffer page");
}

/*
 * Copy the metapage contents.
 */
FrMetaPageData
fr_get_meta(Relation index)
{
	Buffer		buf = fr_read_buffer(index, FR_META_BLKNO, BUFFER_LOCK_SHARE);
	FrMetaPageData meta = *FrPageGetMeta(BufferGetPage(buf));

	UnlockReleaseBuffer(buf);
	return meta;
}

/*
 * The root and height, from a copy of the metapage cached in rd_amcache.
 * The copy can be stale: callers lock the page and check FR_ROOT, and call
 * again with refresh = true when it is not the root any more.
 */
BlockNumber
fr_get_root(Relation index, uint32 *height, bool refresh)
{
	FrAmCache  *cache = fr_amcache(index);

	if (!cache->meta_valid || refresh)
	{
		FrMetaPageData meta = fr_get_meta(index);

		/* fr_get_meta may have replaced rd_amcache's contents, not itself */
		cache = fr_amcache(index);
		cache->meta = meta;
		cache->meta_valid = true;
	}
	if (height)
		*height = cache->meta.height;
	return cache->meta.root;
}

/*
 * Get a page to fill: a recycled one from the free space map when there is
 * one, otherwise a new block at the end.  The buffer is returned
 * exclusively locked; the caller must initialise and WAL-log the page.
 *
 * Only pages that are new or flagged FREE are taken from the FSM: the FSM is
 * a hint and may be stale after a crash.
 */
Buffer
fr_new_buffer(Relation index)
{
	Buffer		buffer;
	bool		needLock;

	for (;;)
	{
		BlockNumber blkno = GetFreeIndexPage(index);

		if (blkno == InvalidBlockNumber)
			break;
		buffer = ReadBuffer(index, blkno);
		if (ConditionalLockBuffer(buffer))
		{
			Page		page = BufferGetPage(buffer);

			if (PageIsNew(page))
				return buffer;
			if (PageGetSpecialSize(page) == MAXALIGN(sizeof(FrPageOpaqueData)) &&
				FrPageGetOpaque(page)->page_id == FR_PAGE_ID &&
				FrPageIsFree(page))
				return buffer;
			LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		}
		ReleaseBuffer(buffer);
	}

	needLock = !RELATION_IS_LOCAL(index);
	if (needLock)
		LockRelationForExtension(index, ExclusiveLock);
	buffer = ReadBuffer(index, P_NEW);
	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	if (needLock)
		UnlockRelationForExtension(index, ExclusiveLock);
	return buffer;
}

/*
 * Turn a page into a FREE page (caller logs it and records it in the FSM).
 * Re-initialising, rather than deleting items, keeps generic WAL deltas
 * small: the old data falls into the unlogged hole.
 */
void
fr_free_page_in_place(Page page)
{
	fr_init_page(page, FR_FREE, 0);
}

/*
 * Tell the free space map that 'blkno' is free.  RecordFreeIndexPage only
 * updates the bottom FSM level, which GetFreeIndexPage (searching from the
 * top) would not see until the next VACUUM; propagate it upward at once so
 * freed buffer pages are reused before the relation is extended.
 */
void
fr_record_free_page(Relation index, BlockNumber blkno)
{
	RecordFreeIndexPage(index, blkno);
	FreeSpaceMapVacuumRange(index, blkno, blkno + 1);
}

/*
 * Node items
 */
static Size
fr_node_item_size(IndexTuple pivot)
{
	return FrNodeItemHeaderSize + MAXALIGN(IndexTupleSize(pivot));
}

/*
 * Build a node item (palloc'd) for the given pivot and child.  A NULL pivot
 * makes the minus-infinity item.
 */
FrNodeItem
fr_make_node_item(IndexTuple pivot, BlockNumber child, uint16 flags,
				  Size *size)
{
	IndexTupleData minf;
	FrNodeItem	item;
	Size		sz;

	if (pivot == NULL)
	{
		memset(&minf, 0, sizeof(minf));
		ItemPointerSetInvalid(&minf.t_tid);
		minf.t_info = sizeof(IndexTupleData);
		pivot = &minf;
		flags |= FR_ITEM_MINUS_INF;
	}
	sz = fr_node_item_size(pivot);
	item = (FrNodeItem) palloc0(sz);
	item->child = child;
	item->chain_tail = InvalidBlockNumber;
	item->chain_pages = 0;
	item->flags = flags;
	memcpy(FrNodeItemGetPivot(item), pivot, IndexTupleSize(pivot));
	*size = sz;
	return item;
}

FrNodeItem
fr_node_get_item(Page page, OffsetNumber off)
{
	return (FrNodeItem) PageGetItem(page, PageGetItemId(page, off));
}

/*
 * The partition of a node item: the nearest item at or before 'off' flagged
 * PART_START (item 1 always is).
 */
OffsetNumber
fr_node_partition_start(Page page, OffsetNumber off)
{
	while (off > FirstOffsetNumber &&
		   !(fr_node_get_item(page, off)->flags & FR_ITEM_PART_START))
		off--;
	return off;
}

/*
 * One past the last item of the partition starting at 'start'.
 */
OffsetNumber
fr_node_partition_end(Page page, OffsetNumber start)
{
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	OffsetNumber off = start + 1;

	while (off <= maxoff &&
		   !(fr_node_get_item(page, off)->flags & FR_ITEM_PART_START))
		off++;
	return off;
}

/*
 * Write an empty index (metapage + empty root leaf) directly to 'fork',
 * bypassing shared buffers, WAL-log both pages and sync.  Used for the init
 * fork of unlogged indexes, which generic WAL would not log.
 */
void
fr_build_empty_index(Relation index, ForkNumber fork)
{
	PGAlignedBlock block;
	Page		page = (Page) block.data;
	SMgrRelation srel = RelationGetSmgr(index);

	fr_init_metapage(page, 1, 0, FR_DEFAULT_BUFFER_PAGES,
					 FR_DEFAULT_PARTITION_CHILDREN);
	PageSetChecksumInplace(page, FR_META_BLKNO);
	smgrextend(srel, fork, FR_META_BLKNO, (char *) page, true);
	log_newpage(&srel->smgr_rnode.node, fork, FR_META_BLKNO, page, true);

	fr_init_page(page, FR_LEAF | FR_ROOT, 0);
	PageSetChecksumInplace(page, 1);
	smgrextend(srel, fork, 1, (char *) page, true);
	log_newpage(&srel->smgr_rnode.node, fork, 1, page, true);

	smgrimmedsync(srel, fork);
}
