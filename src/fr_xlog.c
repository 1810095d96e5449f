/*-------------------------------------------------------------------------
 *
 * fr_xlog.c
 *	  WAL of the fractal index.
 *
 * Every page change is logged.  Structural steps (new pages, splits, root
 * growth, freeing chains, VACUUM deletions) use generic WAL.  The hot
 * operations, adding messages to a buffer chain page and merging entries
 * into a leaf in place (fr_page_add_items, fr_leaf_add_items), changing
 * leaf filter slots, and the common leaf split (fr_write_leaf_split), write
 * one of two forms:
 *
 *	- a "fractal" custom resource manager record (fr_xlog.h) when the
 *	  library was loaded through shared_preload_libraries, which is the only
 *	  time a custom resource manager can be registered;
 *	- a generic WAL record otherwise (for adding items, one whose delta is
 *	  built here from what changed, fr_generic_add_items).
 *
 * What a flush adds to a child (chain page or leaf) is logged as moves
 * naming the messages' source pages instead (fr_move.c).
 *
 * Generic WAL computes its record by diffing the whole page before and
 * after, which for a single appended message costs more than everything
 * else an insert does; the custom record costs nothing but the tuple.  A
 * cluster that preloads the library writes custom records, so its standbys
 * and any server replaying its WAL must preload it too (replay stops with
 * an error about an unknown resource manager otherwise).  A cluster that
 * does not preload never writes them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/bufmask.h"
#include "access/generic_xlog.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "utils/rel.h"

#include "fractal.h"
#include "fr_xlog.h"

bool		fr_custom_wal = false;

/*
 * fractal.wal_image_compression: how the full-page images in the index's
 * own WAL records are compressed while the server's wal_compression is off
 * (its default; when it is on, it decides for every record, ours too).
 * Out of memory most of the index's WAL after a checkpoint is full-page
 * images of leaves (a flush's first change to a leaf since the checkpoint
 * logs the whole leaf), and those are what this shrinks.  The images are
 * compressed by PostgreSQL's own code (XLogRecordAssemble, as with
 * wal_compression), so replay, standbys, pg_waldump and
 * wal_consistency_checking read them as any compressed image.  A method
 * applies to every image; the default, auto (FR_IMAGES_AUTO), picks per
 * record (fr_image_method).
 */
int			fr_wal_image_compression = FR_IMAGES_AUTO;

/* the server's value while ours is set (fr_image_compression_push), or -1 */
static int	fr_images_saved = -1;

/*
 * the generic record being built that logs a page whole, if any, and the
 * pages it logs whole (their images in the record's state)
 */
static GenericXLogState *fr_whole_xs = NULL;
static Page fr_whole_pages[MAX_GENERIC_XLOG_PAGES];
static int	fr_whole_npages = 0;

/*
 * The method for a record's images under the setting.  auto: a record that
 * logs a page whole because the page is new or rewritten (a split's new
 * pages, a new root or chain page, a filter page made or rewritten: 'whole')
 * logs that image whatever the checkpoints do, and in memory those are
 * nearly all the images there are; they get the fast method (lz4), which
 * costs little CPU.  Images a checkpoint causes (the first change to a page
 * since the latest one), the bulk of the WAL out of memory, get the
 * method that compresses best (zstd).  Measured in memory (1,000-row
 * transactions into one int8 index, the settings' loads interleaved):
 * against uncompressed images, zstd +12 % latency, lz4 +1 %, auto +3 %
 * (src/README.md section 6).  Without lz4 in the server, both kinds get
 * the best method it has.  A record whose whole pages are all compressed
 * leaves ('zstd_leaves', fr_generic_finish) gets none: zstd frames do not
 * compress again, so lz4 would only spend CPU before PostgreSQL keeps the
 * image as it was.
 */
static int
fr_image_method(bool whole, bool zstd_leaves)
{
	if (fr_wal_image_compression != FR_IMAGES_AUTO)
		return fr_wal_image_compression;
	if (whole && zstd_leaves)
		return WAL_COMPRESSION_NONE;
#ifdef USE_LZ4
	if (whole)
		return WAL_COMPRESSION_LZ4;
#endif
	return FR_BEST_IMAGE_COMPRESSION;
}

/*
 * Make the full-page images of the records logged until the matching
 * fr_image_compression_pop use fractal.wal_image_compression ('whole': the
 * records log pages whole, fr_image_method), unless the server's own
 * setting compresses them already; returns what to restore.
 * wal_compression is read only while a record is assembled
 * (XLogRecordAssemble, XLogCompressBackupBlock), so setting it around our
 * XLogInsert calls affects exactly our records.  The calls log inside
 * critical sections (an error there is a PANIC), but for an ERROR that
 * PostgreSQL may raise just before one (GenericXLogFinish's
 * XLogBeginInsert checks) and CREATE INDEX's log_newpage_range (which
 * restores it in PG_FINALLY itself); after such an error
 * fr_image_compression_reset, called at (sub)transaction abort, puts the
 * server's value back.
 */
static int
fr_image_push_method(int method)
{
	int			saved = wal_compression;

	if (saved == WAL_COMPRESSION_NONE)
		wal_compression = method;
	if (fr_images_saved < 0)
		fr_images_saved = saved;
	return saved;
}

int
fr_image_compression_push(bool whole)
{
	return fr_image_push_method(fr_image_method(whole, false));
}

void
fr_image_compression_pop(int saved)
{
	wal_compression = saved;
	if (wal_compression == fr_images_saved)
		fr_images_saved = -1;
}

/*
 * after an error: the server's own setting again, if ours was left set, and
 * no note of a record that will not be finished
 */
void
fr_image_compression_reset(void)
{
	fr_whole_xs = NULL;
	if (fr_images_saved >= 0)
	{
		wal_compression = fr_images_saved;
		fr_images_saved = -1;
	}
}

/* XLogInsert with the image compression for 'whole' (fr_image_method) */
static XLogRecPtr
fr_xlog_insert_images(RmgrId rmid, uint8 info, bool whole)
{
	int			saved = fr_image_compression_push(whole);
	XLogRecPtr	recptr = XLogInsert(rmid, info);

	fr_image_compression_pop(saved);
	return recptr;
}

/* XLogInsert, with the index's image compression */
XLogRecPtr
fr_xlog_insert(RmgrId rmid, uint8 info)
{
	return fr_xlog_insert_images(rmid, info, false);
}

/* XLogInsert of a record that logs a page whole (REGBUF_FORCE_IMAGE) */
XLogRecPtr
fr_xlog_insert_whole(RmgrId rmid, uint8 info)
{
	return fr_xlog_insert_images(rmid, info, true);
}

/*
 * GenericXLogRegisterBuffer of a page logged whole (GENERIC_XLOG_FULL_IMAGE),
 * noting that the record 'xs' logs it.  A record abandoned with
 * fr_generic_abort or by an error (fr_image_compression_reset) drops the
 * note; should one be left behind anyway, a later record at the same
 * address only gets another method for its images, never a wrong page.
 */
Page
fr_generic_register_whole(GenericXLogState *xs, Buffer buf)
{
	Page		page = GenericXLogRegisterBuffer(xs, buf, GENERIC_XLOG_FULL_IMAGE);

	if (fr_whole_xs != xs)
		fr_whole_npages = 0;
	fr_whole_xs = xs;
	if (fr_whole_npages < lengthof(fr_whole_pages))
		fr_whole_pages[fr_whole_npages++] = page;
	return page;
}

/* are all the pages the record in 'xs' logs whole compressed leaves? */
static bool
fr_whole_zstd_leaves(GenericXLogState *xs)
{
	int			i;

	if (fr_whole_xs != xs || fr_whole_npages == 0)
		return false;
	for (i = 0; i < fr_whole_npages; i++)
		if (PageIsNew(fr_whole_pages[i]) ||
			PageGetSpecialSize(fr_whole_pages[i]) != MAXALIGN(sizeof(FrPageOpaqueData)) ||
			!FrPageIsLeaf(fr_whole_pages[i]) ||
			!FrPageIsCompressed(fr_whole_pages[i]))
			return false;
	return true;
}

/* GenericXLogFinish, with the index's image compression */
XLogRecPtr
fr_generic_finish(GenericXLogState *xs)
{
	bool		whole = (fr_whole_xs == xs);
	int			saved = fr_image_push_method(fr_image_method(whole,
															 fr_whole_zstd_leaves(xs)));
	XLogRecPtr	recptr;

	if (whole)
		fr_whole_xs = NULL;
	recptr = GenericXLogFinish(xs);
	fr_image_compression_pop(saved);
	return recptr;
}

/* GenericXLogAbort, dropping the note of fr_generic_register_whole */
void
fr_generic_abort(GenericXLogState *xs)
{
	if (fr_whole_xs == xs)
		fr_whole_xs = NULL;
	GenericXLogAbort(xs);
}

static void fr_redo(XLogReaderState *record);
static void fr_desc(StringInfo buf, XLogReaderState *record);
static const char *fr_identify(uint8 info);
static void fr_mask(char *pagedata, BlockNumber blkno);
static void fr_append_diff(StringInfo buf, const char *old, const char *new,
						   Size len, Size off);

static RmgrData fr_rmgr = {
	.rm_name = "fractal",
	.rm_redo = fr_redo,
	.rm_desc = fr_desc,
	.rm_identify = fr_identify,
	.rm_mask = fr_mask,
};

/*
 * Register the resource manager; called from _PG_init, effective only while
 * shared_preload_libraries are being processed.
 */
void
fr_xlog_register(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	RegisterCustomRmgr(FR_RMGR_ID, &fr_rmgr);
	fr_custom_wal = true;
}

/* refuse, before any change, tuples the page has no room for */
void
fr_page_check_room(Page page, IndexTuple *tups, int n)
{
	Size		need = 0;
	int			i;

	for (i = 0; i < n; i++)
		need += fr_item_space(tups[i]);
	if (need > PageGetExactFreeSpace(page) || n > PG_UINT16_MAX)
		elog(ERROR, "fractal index page has no room for %d items", n);
}

/*
 * Put tups[0..n) on 'page' (at offs[i], or at the end without offsets) and
 * their keys in the page's own filter; 'elevel' for a page with no room
 * (PANIC inside a critical section).
 */
void
fr_page_put_items(Page page, IndexTuple *tups, OffsetNumber *offs, int n,
				  int elevel)
{
	int			i;

	for (i = 0; i < n; i++)
		if (PageAddItem(page, (Item) tups[i], IndexTupleSize(tups[i]),
						offs ? offs[i] : InvalidOffsetNumber,
						false, false) == InvalidOffsetNumber)
			elog(elevel, "failed to add item to fractal index page");
	fr_filter_add_tuples(page, tups, n);
}

/*
 * Inside the critical section of an addition: put tups[0..n) on the page
 * in 'buf' (as fr_page_put_items) and, with 'slot' (slot->fbuf valid), their
 * keys into that leaf filter slot; both pages are marked dirty
 */
void
fr_page_put_items_slot(Buffer buf, IndexTuple *tups, OffsetNumber *offs, int n,
					   FrSlotAdd *slot)
{
	fr_page_put_items(BufferGetPage(buf), tups, offs, n, PANIC);
	MarkBufferDirty(buf);
	if (slot != NULL && BufferIsValid(slot->fbuf))
	{
		fr_filter_add_keys(FrLeafFilterSlot(FrPageGetLeafFilters(BufferGetPage(slot->fbuf)),
											slot->slot), tups, n);
		MarkBufferDirty(slot->fbuf);
	}
}

/* append one (offset, length, bytes) fragment of generic WAL's delta */
static void
fr_append_fragment(StringInfo buf, Page page, Size from, Size to)
{
	uint16		hdr[2];

	if (to <= from)
		return;
	hdr[0] = (uint16) from;
	hdr[1] = (uint16) (to - from);
	appendBinaryStringInfo(buf, (char *) hdr, sizeof(hdr));
	appendBinaryStringInfo(buf, (char *) page + from, to - from);
}

/*
 * fr_page_add_items without the resource manager: add the tuples and write
 * a generic WAL record (RM_GENERIC_ID) whose delta we build ourselves from
 * what we know changed, instead of through generic_xlog.c, which copies the
 * page, compares all its used bytes one by one and copies it back: for a
 * single appended message that was about half of an insert's index CPU
 * (perf, single-row transactions without preload).
 *
 * The record is what GenericXLogFinish would write for this change: one
 * block (REGBUF_STANDARD) whose data is a delta of (uint16 offset, uint16
 * length, bytes) fragments, the format generic_redo applies (PostgreSQL
 * 15's generic_xlog.c, applyPageRedo; no main data).  The fragments cover
 * every byte the change can touch: pd_flags, pd_lower and pd_upper; the
 * line pointers from the first one moved or added to the end of the array;
 * the new tuples, which PageAddItem puts contiguously below the old
 * pd_upper; and the bytes of the special area (a buffer page's filter) that
 * changed, found by comparing it with a copy.  Redo then zeroes the hole
 * between pd_lower and pd_upper, which the primary's page need not have
 * (generic_mask masks it, as for our own records); nothing reads it.
 */
#if PG_VERSION_NUM >= 150000 && PG_VERSION_NUM < 160000
static void
fr_generic_add_items(Relation index, Buffer buf, IndexTuple *tups,
					 OffsetNumber *offs, int n)
{
	Page		page = BufferGetPage(buf);
	PageHeader	ph = (PageHeader) page;
	Size		old_upper = ph->pd_upper;
	Size		special = ph->pd_special;
	Size		special_len = BLCKSZ - special;
	OffsetNumber first_lp = PageGetMaxOffsetNumber(page) + 1;
	bool		needwal = RelationNeedsWAL(index);
	char	   *old_special = NULL;
	StringInfoData delta;
	int			i;

	fr_page_check_room(page, tups, n);

	/* the first line pointer that can change, and the special area before */
	if (PageHasFreeLinePointers(page))
		first_lp = FirstOffsetNumber;	/* PageAddItem may reuse any */
	for (i = 0; offs && i < n; i++)
		first_lp = Min(first_lp, offs[i]);
	if (needwal)
	{
		old_special = palloc(special_len);
		memcpy(old_special, (char *) page + special, special_len);
		/*
		 * room for the whole delta before the critical section: the
		 * fragments cover disjoint parts of the page, and each of the
		 * special area's is followed by 8 unchanged bytes but the last, so
		 * there are at most 3 + special_len / 9 + 1 fragment headers
		 */
		initStringInfo(&delta);
		enlargeStringInfo(&delta, BLCKSZ + 4 * (special_len / 8 + 4));
	}

	START_CRIT_SECTION();
	fr_page_put_items(page, tups, offs, n, PANIC);
	MarkBufferDirty(buf);
	if (needwal)
	{
		XLogRecPtr	recptr;

		/* pd_flags, pd_lower, pd_upper: adjacent in the header */
		fr_append_fragment(&delta, page, offsetof(PageHeaderData, pd_flags),
						   offsetof(PageHeaderData, pd_special));
		fr_append_fragment(&delta, page,
						   (char *) PageGetItemId(page, first_lp) - (char *) page,
						   ph->pd_lower);
		fr_append_fragment(&delta, page, ph->pd_upper, old_upper);
		fr_append_diff(&delta, old_special, (char *) page + special,
					   special_len, special);
		XLogBeginInsert();
		XLogRegisterBuffer(0, buf, REGBUF_STANDARD);
		XLogRegisterBufData(0, delta.data, delta.len);
		recptr = fr_xlog_insert(RM_GENERIC_ID, 0);
		PageSetLSN(page, recptr);
	}
	END_CRIT_SECTION();
	if (needwal)
	{
		pfree(old_special);
		pfree(delta.data);
	}
}
#else
/* another major version: its generic WAL format is not ours to assume */
static void
fr_generic_add_items(Relation index, Buffer buf, IndexTuple *tups,
					 OffsetNumber *offs, int n)
{
	GenericXLogState *xs = GenericXLogStart(index);
	Page		page = GenericXLogRegisterBuffer(xs, buf, 0);

	fr_page_check_room(page, tups, n);
	fr_page_put_items(page, tups, offs, n, ERROR);
	fr_generic_finish(xs);
}
#endif

/*
 * Add tuples to the page in 'buf' (exclusively locked by the caller, who
 * has checked that they fit) and log the change.  offs[i] is the offset
 * tuple i goes to, in order of insertion (each later offset refers to the
 * page as changed by the earlier ones); NULL appends them all at the end.
 */
void
fr_page_add_items(Relation index, Buffer buf, IndexTuple *tups,
				  OffsetNumber *offs, int n)
{
	fr_leaf_add_items(index, buf, tups, offs, n, NULL);
}

/*
 * fr_page_add_items, and with 'slot' (not NULL, slot->fbuf valid: only with
 * the resource manager registered) also add the tuples' keys to slot
 * slot->slot of leaf filter page slot->fbuf (exclusively locked) in the same
 * record, whose replay adds them from the logged tuples.
 */
void
fr_leaf_add_items(Relation index, Buffer buf, IndexTuple *tups,
				  OffsetNumber *offs, int n, FrSlotAdd *slot)
{
	int			i;
	bool		withslot = (slot != NULL && BufferIsValid(slot->fbuf));

	if (n <= 0)
		return;
	Assert(!withslot || fr_custom_wal);

	if (!fr_custom_wal)
	{
		fr_generic_add_items(index, buf, tups, offs, n);
		return;
	}

	{
		Page		page = BufferGetPage(buf);
		Size		datalen = 0;
		char	   *data = NULL,
				   *p;
		bool		needwal = RelationNeedsWAL(index);
		xl_fr_add_items xlrec;

		fr_page_check_room(page, tups, n);
		for (i = 0; i < n; i++)
			datalen += IndexTupleSize(tups[i]);

		/* the record's block data, built before the critical section */
		if (needwal)
		{
			if (offs)
				datalen += sizeof(OffsetNumber) * n;
			data = p = palloc(datalen);
			if (offs)
			{
				memcpy(p, offs, sizeof(OffsetNumber) * n);
				p += sizeof(OffsetNumber) * n;
			}
			for (i = 0; i < n; i++)
			{
				memcpy(p, tups[i], IndexTupleSize(tups[i]));
				p += IndexTupleSize(tups[i]);
			}
		}

		START_CRIT_SECTION();
		fr_page_put_items_slot(buf, tups, offs, n, slot);
		if (needwal)
		{
			XLogRecPtr	recptr;
			uint16		slotno = (uint16) (withslot ? slot->slot : 0);

			memset(&xlrec, 0, sizeof(xlrec));
			xlrec.ntuples = (uint16) n;
			xlrec.has_offsets = (offs != NULL);
			XLogBeginInsert();
			XLogRegisterData((char *) &xlrec, SizeOfFrAddItems);
			/* the slot's replay needs the tuples even after a leaf image */
			XLogRegisterBuffer(0, buf, REGBUF_STANDARD |
							   (withslot ? REGBUF_KEEP_DATA : 0));
			XLogRegisterBufData(0, data, datalen);
			if (withslot)
			{
				XLogRegisterBuffer(1, slot->fbuf, REGBUF_STANDARD);
				XLogRegisterBufData(1, (char *) &slotno, sizeof(slotno));
			}
			recptr = fr_xlog_insert(FR_RMGR_ID, XLOG_FR_ADD_ITEMS);
			PageSetLSN(page, recptr);
			if (withslot)
				PageSetLSN(BufferGetPage(slot->fbuf), recptr);
		}
		END_CRIT_SECTION();
		if (data)
			pfree(data);
	}
}

/*
 * The next index tuple logged at *ptr (before 'end'), copied to aligned
 * memory; *ptr moves past it.  A record that does not hold it is PANIC.
 */
IndexTuple
fr_redo_next_tuple(char **ptr, char *end)
{
	IndexTupleData hdr;
	IndexTuple	itup;
	Size		sz;

	if (*ptr + sizeof(IndexTupleData) > end)
		elog(PANIC, "fractal redo: truncated record");
	memcpy(&hdr, *ptr, sizeof(IndexTupleData));
	sz = IndexTupleSize(&hdr);
	if (sz < sizeof(IndexTupleData) || *ptr + sz > end)
		elog(PANIC, "fractal redo: truncated tuple");
	itup = palloc(sz);
	memcpy(itup, *ptr, sz);
	*ptr += sz;
	return itup;
}

/*
 * The 'ntuples' index tuples concatenated in ptr[0..len), each copied to
 * aligned memory
 */
static IndexTuple *
fr_redo_tuples(char *ptr, Size len, int ntuples)
{
	IndexTuple *tups = palloc(sizeof(IndexTuple) * Max(ntuples, 1));
	char	   *end = ptr + len;
	int			i;

	for (i = 0; i < ntuples; i++)
		tups[i] = fr_redo_next_tuple(&ptr, end);
	return tups;
}

static void
fr_redo_tuples_free(IndexTuple *tups, int ntuples)
{
	int			i;

	for (i = 0; i < ntuples; i++)
		pfree(tups[i]);
	pfree(tups);
}

static void
fr_redo_add_items(XLogReaderState *record)
{
	XLogRecPtr	lsn = record->EndRecPtr;
	xl_fr_add_items *xlrec = (xl_fr_add_items *) XLogRecGetData(record);
	Buffer		buf,
				fbuf = InvalidBuffer;
	Size		len;
	char	   *ptr = XLogRecGetBlockData(record, 0, &len);
	OffsetNumber *offs = NULL;
	IndexTuple *tups;
	int			i;

	/* the block data: offsets (optional), then the tuples */
	if (ptr == NULL)
		len = 0;
	if (xlrec->has_offsets && ptr != NULL)
	{
		if (len < sizeof(OffsetNumber) * xlrec->ntuples)
			elog(PANIC, "fractal redo: truncated record");
		offs = palloc(sizeof(OffsetNumber) * xlrec->ntuples);
		memcpy(offs, ptr, sizeof(OffsetNumber) * xlrec->ntuples);
		ptr += sizeof(OffsetNumber) * xlrec->ntuples;
		len -= sizeof(OffsetNumber) * xlrec->ntuples;
	}

	if (XLogReadBufferForRedo(record, 0, &buf) == BLK_NEEDS_REDO)
	{
		Page		page = BufferGetPage(buf);

		tups = fr_redo_tuples(ptr, len, xlrec->ntuples);
		for (i = 0; i < xlrec->ntuples; i++)
		{
			OffsetNumber added;
			IndexTuple	itup;

			added = PageAddItem(page, (Item) tups[i], IndexTupleSize(tups[i]),
								offs ? offs[i] : InvalidOffsetNumber,
								false, false);
			if (added == InvalidOffsetNumber)
				elog(PANIC, "fractal redo: failed to add item");
			/* the filter bits, from the item as placed (aligned) */
			itup = (IndexTuple) PageGetItem(page, PageGetItemId(page, added));
			fr_filter_add_tuples(page, &itup, 1);
		}
		fr_redo_tuples_free(tups, xlrec->ntuples);
		PageSetLSN(page, lsn);
		MarkBufferDirty(buf);
	}

	/*
	 * block 1: the leaf's filter slot takes the tuples' keys, or for a chain
	 * page (slot 0, whose 'skip' names no leaf) the chain slot
	 */
	if (XLogRecHasBlockRef(record, 1) &&
		XLogReadBufferForRedo(record, 1, &fbuf) == BLK_NEEDS_REDO)
	{
		tups = fr_redo_tuples(ptr, len, xlrec->ntuples);
		fr_redo_slot_keys(record, fbuf, tups, xlrec->ntuples);
		fr_redo_tuples_free(tups, xlrec->ntuples);
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	if (BufferIsValid(fbuf))
		UnlockReleaseBuffer(fbuf);
}

/*
 * Redo of block 1 of an ADD_ITEMS or MOVE_ITEMS record, read as 'fbuf'
 * (needing redo): the slot named by the block data takes the keys of
 * tups[0..n), the tuples block 0 got.  The slot must name block 0's page
 * as its leaf, or be slot 0 (a chain slot, whose 'skip' names no leaf).
 */
void
fr_redo_slot_keys(XLogReaderState *record, Buffer fbuf, IndexTuple *tups, int n)
{
	Page		fpage = BufferGetPage(fbuf);
	Size		slen;
	char	   *sptr = XLogRecGetBlockData(record, 1, &slen);
	FrLeafFilters lf = FrPageGetLeafFilters(fpage);
	uint16		slot;
	BlockNumber leaf;

	if (sptr == NULL || slen != sizeof(uint16) || !FrPageIsLeafFilters(fpage))
		elog(PANIC, "fractal redo: bad leaf filter slot reference");
	memcpy(&slot, sptr, sizeof(uint16));
	XLogRecGetBlockTag(record, 0, NULL, NULL, &leaf);
	if (slot >= lf->nslots ||
		FrLeafFilterSlot(lf, slot)->skip != (slot == 0 ? 0 : leaf))
		elog(PANIC, "fractal redo: leaf filter slot %u does not name leaf %u",
			 slot, leaf);
	fr_filter_add_keys(FrLeafFilterSlot(lf, slot), tups, n);
	PageSetLSN(fpage, record->EndRecPtr);
	MarkBufferDirty(fbuf);
}

/*
 * Append to 'buf' the byte ranges where the 'len' bytes at 'new' differ
 * from those at 'old', which lie at offset 'off' of a page, as (uint16
 * offset in the page, uint16 length, bytes) fragments; differences less
 * than 8 bytes apart share a fragment (a fragment header costs 4).
 */
static void
fr_append_diff(StringInfo buf, const char *old, const char *new, Size len,
			   Size off)
{
	Size		i = 0;

	while (i < len)
	{
		Size		from,
					to,
					gap = 0;
		uint16		hdr[2];

		if (old[i] == new[i])
		{
			i++;
			continue;
		}
		from = to = i;
		while (i < len && gap < 8)
		{
			if (old[i] != new[i])
			{
				to = i + 1;
				gap = 0;
			}
			else
				gap++;
			i++;
		}
		hdr[0] = (uint16) (off + from);
		hdr[1] = (uint16) (to - from);
		appendBinaryStringInfo(buf, (char *) hdr, sizeof(hdr));
		appendBinaryStringInfo(buf, new + from, to - from);
	}
}

/*
 * Copy the fragments ptr[0..len) (see fr_append_diff) into the slots of
 * leaf filter page 'page': on redo, and on the primary inside the critical
 * section.
 */
static void
fr_apply_slot_fragments(Page page, const char *ptr, Size len)
{
	FrLeafFilters lf = FrPageGetLeafFilters(page);
	Size		head = (char *) FrLeafFilterSlot(lf, 0) - (char *) page;
	Size		tail = head + FrLeafFilterSlotOffset(lf, lf->nslots);
	const char *end = ptr + len;

	if (!FrPageIsLeafFilters(page))
		elog(PANIC, "fractal: leaf filter change for another kind of page");
	while (ptr < end)
	{
		uint16		hdr[2];

		if (ptr + sizeof(hdr) > end)
			elog(PANIC, "fractal: truncated leaf filter change");
		memcpy(hdr, ptr, sizeof(hdr));
		ptr += sizeof(hdr);
		if (hdr[0] < head || hdr[0] + hdr[1] > tail || ptr + hdr[1] > end)
			elog(PANIC, "fractal: leaf filter change outside the slots");
		memcpy(page + hdr[0], ptr, hdr[1]);
		ptr += hdr[1];
	}
}

/* apply and log (XLOG_FR_LFILTER_SLOTS) the fragments in 'data' */
static void
fr_log_slot_fragments(Relation index, Buffer buf, StringInfo data)
{
	Page		page = BufferGetPage(buf);

	if (data->len == 0)
		return;
	START_CRIT_SECTION();
	fr_apply_slot_fragments(page, data->data, data->len);
	MarkBufferDirty(buf);
	if (RelationNeedsWAL(index))
	{
		XLogRecPtr	recptr;

		XLogBeginInsert();
		XLogRegisterBuffer(0, buf, REGBUF_STANDARD);
		XLogRegisterBufData(0, data->data, data->len);
		recptr = fr_xlog_insert(FR_RMGR_ID, XLOG_FR_LFILTER_SLOTS);
		PageSetLSN(page, recptr);
	}
	END_CRIT_SECTION();
}

/*
 * Append to 'data' the fragments that turn the slots of leaf filter page
 * 'page' into those of 'copy', a changed copy of it whose only changes are
 * to slots.
 */
static void
fr_slot_fragments(Page page, Page copy, StringInfo data)
{
	FrLeafFilters lf = FrPageGetLeafFilters(page);
	Size		head = (char *) FrLeafFilterSlot(lf, 0) - (char *) page;
	Size		tail = head + FrLeafFilterSlotOffset(lf, lf->nslots);
	int			i;

	/* nothing outside the slots may have changed */
	if (memcmp(page, copy, head) != 0 ||
		memcmp(page + tail, copy + tail, BLCKSZ - tail) != 0)
		elog(ERROR, "fractal leaf filter page changed outside its slots");
	for (i = 0; i < lf->nslots; i++)
	{
		Size		o = head + FrLeafFilterSlotOffset(lf, i);
		Size		size = FrLeafFilterSlotSize(lf, i);

		if (memcmp(page + o, copy + o, size) != 0)
			fr_append_diff(data, page + o, copy + o, size, o);
	}
}

/*
 * Make the leaf filter page in 'buf' (exclusively locked) equal 'copy', a
 * changed copy of it whose only changes are to slots, logging the changed
 * bytes as one XLOG_FR_LFILTER_SLOTS record.  Used instead of generic WAL
 * when the resource manager is registered: a generic record compares the
 * whole page byte by byte to find its changes, which cost an in-memory
 * insert load about a seventh of its CPU; here only changed slots are.
 */
void
fr_lfilter_write_slots(Relation index, Buffer buf, Page copy)
{
	StringInfoData data;

	initStringInfo(&data);
	fr_slot_fragments(BufferGetPage(buf), copy, &data);
	fr_log_slot_fragments(index, buf, &data);
	pfree(data.data);
}

/*
 * The same for one slot: slot 'slot' of the leaf filter page in 'buf'
 * (exclusively locked) becomes 'image' (FrLeafFilterSlotSize bytes of it).
 */
void
fr_lfilter_write_slot(Relation index, Buffer buf, int slot, const char *image)
{
	Page		page = BufferGetPage(buf);
	FrLeafFilters lf = FrPageGetLeafFilters(page);
	char	   *cur = (char *) FrLeafFilterSlot(lf, slot);
	StringInfoData data;

	Assert(slot >= 0 && slot < lf->nslots);
	initStringInfo(&data);
	fr_append_diff(&data, cur, image, FrLeafFilterSlotSize(lf, slot), cur - (char *) page);
	fr_log_slot_fragments(index, buf, &data);
	pfree(data.data);
}

/*
 * Install a leaf split prepared in local copies (w->node, w->leaf,
 * w->right, w->filters: the pages' new contents) and log it as one
 * XLOG_FR_LEAF_SPLIT record (fr_xlog.h).  Only with the resource manager
 * registered; every buffer is exclusively locked by the caller.
 */
void
fr_write_leaf_split(Relation index, FrLeafSplitWrite *w)
{
	bool		needwal = RelationNeedsWAL(index);
	bool		filters = BufferIsValid(w->fbuf);
	StringInfoData frags;
	xl_fr_leaf_split xlrec;

	Assert(fr_custom_wal);
	initStringInfo(&frags);
	if (filters)
		fr_slot_fragments(BufferGetPage(w->fbuf), w->filters, &frags);

	START_CRIT_SECTION();
	memcpy(BufferGetPage(w->nodebuf), w->node, BLCKSZ);
	/* the leaf keeps its LSN, which decides whether it needs an image */
	PageSetLSN(w->leaf, PageGetLSN(BufferGetPage(w->lbuf)));
	memcpy(BufferGetPage(w->lbuf), w->leaf, BLCKSZ);
	memcpy(BufferGetPage(w->rbuf), w->right, BLCKSZ);
	MarkBufferDirty(w->nodebuf);
	MarkBufferDirty(w->lbuf);
	MarkBufferDirty(w->rbuf);
	if (filters)
	{
		fr_apply_slot_fragments(BufferGetPage(w->fbuf), frags.data, frags.len);
		MarkBufferDirty(w->fbuf);
	}
	if (needwal)
	{
		XLogRecPtr	recptr;

		memset(&xlrec, 0, sizeof(xlrec));
		xlrec.nold = w->nold;
		xlrec.nleft = w->nleft;
		xlrec.off = w->off;
		XLogBeginInsert();
		XLogRegisterData((char *) &xlrec, SizeOfFrLeafSplit);
		XLogRegisterBuffer(0, w->nodebuf, REGBUF_STANDARD);
		XLogRegisterBufData(0, (char *) w->pitem, w->pitem_sz);
		XLogRegisterBuffer(1, w->lbuf, REGBUF_STANDARD);
		XLogRegisterBufData(1, w->leafdata, w->leafdata_len);
		XLogRegisterBuffer(2, w->rbuf, REGBUF_STANDARD | REGBUF_FORCE_IMAGE);
		if (filters)
		{
			XLogRegisterBuffer(3, w->fbuf, REGBUF_STANDARD);
			XLogRegisterBufData(3, frags.data, frags.len);
		}
		recptr = fr_xlog_insert_whole(FR_RMGR_ID, XLOG_FR_LEAF_SPLIT);
		PageSetLSN(BufferGetPage(w->nodebuf), recptr);
		PageSetLSN(BufferGetPage(w->lbuf), recptr);
		PageSetLSN(BufferGetPage(w->rbuf), recptr);
		if (filters)
			PageSetLSN(BufferGetPage(w->fbuf), recptr);
	}
	END_CRIT_SECTION();
	pfree(frags.data);
}

/*
 * Replay block 1 of XLOG_FR_LEAF_SPLIT: rebuild the old leaf 'page' (as it
 * was before the split) from its first old entries and the logged new ones.
 */
static void
fr_redo_leaf_split_left(Page page, xl_fr_leaf_split *xlrec, char *ptr,
						Size len)
{
	PGAlignedBlock old;
	Size		maplen = (xlrec->nleft + 7) / 8;
	char	   *end = ptr + len;
	char	   *next = ptr + maplen;
	OffsetNumber oldoff = FirstOffsetNumber;
	int			k;

	if (PageGetMaxOffsetNumber(page) != xlrec->nold || maplen > len)
		elog(PANIC, "fractal redo: leaf split does not match the leaf");
	memcpy(old.data, page, BLCKSZ);
	fr_init_page(page, FR_LEAF, 0);
	for (k = 0; k < xlrec->nleft; k++)
	{
		Item		item;
		Size		sz;

		if (ptr[k / 8] & (1 << (k % 8)))
		{
			IndexTupleData hdr;

			if (next + sizeof(IndexTupleData) > end)
				elog(PANIC, "fractal redo: truncated record");
			memcpy(&hdr, next, sizeof(IndexTupleData));
			sz = IndexTupleSize(&hdr);
			if (next + sz > end)
				elog(PANIC, "fractal redo: truncated tuple");
			item = (Item) next;
			next += sz;
		}
		else
		{
			ItemId		iid;

			if (oldoff > xlrec->nold)
				elog(PANIC, "fractal redo: leaf split past the old entries");
			iid = PageGetItemId(old.data, oldoff++);
			item = PageGetItem(old.data, iid);
			sz = ItemIdGetLength(iid);
		}
		if (PageAddItem(page, item, sz, InvalidOffsetNumber, false, false) ==
			InvalidOffsetNumber)
			elog(PANIC, "fractal redo: failed to add item");
	}
}

static void
fr_redo_leaf_split(XLogReaderState *record)
{
	XLogRecPtr	lsn = record->EndRecPtr;
	xl_fr_leaf_split *xlrec = (xl_fr_leaf_split *) XLogRecGetData(record);
	Buffer		bufs[4] = {InvalidBuffer, InvalidBuffer, InvalidBuffer, InvalidBuffer};
	int			b;

	for (b = 0; b < 4; b++)
	{
		Page		page;
		Size		len;
		char	   *ptr;

		if (b == 3 && !XLogRecHasBlockRef(record, 3))
			break;
		if (XLogReadBufferForRedo(record, b, &bufs[b]) != BLK_NEEDS_REDO)
			continue;
		if (b == 2)
			elog(PANIC, "fractal redo: leaf split without the new leaf's image");
		page = BufferGetPage(bufs[b]);
		ptr = XLogRecGetBlockData(record, b, &len);
		if (b == 0 &&
			PageAddItem(page, (Item) ptr, len, xlrec->off + 1, false, false) ==
			InvalidOffsetNumber)
			elog(PANIC, "fractal redo: failed to add pivot");
		if (b == 1)
			fr_redo_leaf_split_left(page, xlrec, ptr, len);
		if (b == 3)
			fr_apply_slot_fragments(page, ptr, len);
		PageSetLSN(page, lsn);
		MarkBufferDirty(bufs[b]);
	}
	for (b = 0; b < 4; b++)
		if (BufferIsValid(bufs[b]))
			UnlockReleaseBuffer(bufs[b]);
}

static void
fr_redo_lfilter_slots(XLogReaderState *record)
{
	Buffer		buf;

	if (XLogReadBufferForRedo(record, 0, &buf) == BLK_NEEDS_REDO)
	{
		Page		page = BufferGetPage(buf);
		Size		len;
		char	   *ptr = XLogRecGetBlockData(record, 0, &len);

		fr_apply_slot_fragments(page, ptr, len);
		PageSetLSN(page, record->EndRecPtr);
		MarkBufferDirty(buf);
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
}

static void
fr_redo(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;

	switch (info)
	{
		case XLOG_FR_ADD_ITEMS:
			fr_redo_add_items(record);
			break;
		case XLOG_FR_LFILTER_SLOTS:
			fr_redo_lfilter_slots(record);
			break;
		case XLOG_FR_LEAF_SPLIT:
			fr_redo_leaf_split(record);
			break;
		case XLOG_FR_MOVE_ITEMS:
			fr_redo_move_items(record);
			break;
		default:
			elog(PANIC, "fractal redo: unknown op code %u", info);
	}
}

static void
fr_desc(StringInfo buf, XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;

	if (info == XLOG_FR_ADD_ITEMS)
	{
		xl_fr_add_items *xlrec = (xl_fr_add_items *) XLogRecGetData(record);

		appendStringInfo(buf, "ntuples %u, %s", xlrec->ntuples,
						 xlrec->has_offsets ? "at offsets" : "appended");
	}
	else if (info == XLOG_FR_LFILTER_SLOTS)
		appendStringInfoString(buf, "changed slot bytes");
	else if (info == XLOG_FR_LEAF_SPLIT)
	{
		xl_fr_leaf_split *xlrec = (xl_fr_leaf_split *) XLogRecGetData(record);

		appendStringInfo(buf, "off %u, nold %u, nleft %u", xlrec->off,
						 xlrec->nold, xlrec->nleft);
	}
	else if (info == XLOG_FR_MOVE_ITEMS)
	{
		xl_fr_move_items *xlrec = (xl_fr_move_items *) XLogRecGetData(record);
		int			n = xlrec->ntuples;
		Size		len;
		char	   *ptr = XLogRecGetBlockData(record, 0, &len);
		Size		at = (Size) n * sizeof(OffsetNumber) * (xlrec->has_offsets ? 2 : 1);

		appendStringInfo(buf, "ntuples %u, %s, into a %s, from %d pages", n,
						 xlrec->has_offsets ? "at offsets" : "appended",
						 (xlrec->flags & FR_MOVE_TO_LEAF) ? "leaf" : "chain page",
						 Max(XLogRecMaxBlockId(record) + 1 - FR_MOVE_FIRST_SOURCE, 0));
		/* the tuples logged inline, when the record kept its references */
		if (ptr != NULL && len >= at + n)
		{
			int			i,
						inl = 0;

			for (i = 0; i < n; i++)
				inl += (ptr[at + i] == 0);
			appendStringInfo(buf, ", %d inline", inl);
		}
	}
}

static const char *
fr_identify(uint8 info)
{
	switch (info & ~XLR_INFO_MASK)
	{
		case XLOG_FR_ADD_ITEMS:
			return "ADD_ITEMS";
		case XLOG_FR_LFILTER_SLOTS:
			return "LFILTER_SLOTS";
		case XLOG_FR_LEAF_SPLIT:
			return "LEAF_SPLIT";
		case XLOG_FR_MOVE_ITEMS:
			return "MOVE_ITEMS";
	}
	return NULL;
}

/*
 * wal_consistency_checking: only the LSN, checksum and the unused hole may
 * differ between a page and its replay.
 */
static void
fr_mask(char *pagedata, BlockNumber blkno)
{
	Page		page = (Page) pagedata;

	mask_page_lsn_and_checksum(page);
	mask_unused_space(page);
}
