/*-------------------------------------------------------------------------
 *
 * fr_move.c
 *	  Logging a flush's appends to child chains as moves.
 *
 * A message is logged when it enters the root's buffers; a flush that
 * adds it to a child (a child node's chain page, or a leaf in place) used
 * to log its bytes again (XLOG_FR_ADD_ITEMS).  But the flush reads it from
 * its node's chain pages, which stay unchanged until the flush frees them
 * after the additions: the record can name the message instead (source
 * page, offset), 3 bytes where the copy cost its size.  XLOG_FR_MOVE_ITEMS
 * (fr_xlog.h).
 *
 * Why redo finds the messages.  Each source page is registered like any
 * page a record changes, with the standard full-page-image rule, and gets
 * the record's LSN.  So when redo reaches the record, the source page is
 * either restored from this record's image (its first registration since
 * the redo point), or was restored from an image of an earlier record
 * since the redo point and brought forward by every record after it, so it
 * is exactly as the primary's page was when the record was written.  A
 * page on disk newer than the record (the chain page freed and reused
 * later, that later state written out before the crash) is never read:
 * an image since the redo point always precedes.  That argument needs
 * full-page images, so a move is written only while this backend's
 * doPageWrites is on (GetFullPageWriteInfo: the value XLogInsert assembles
 * the record with; a record assembled with it on carries the images even
 * if full_page_writes was turned off meanwhile).  Redo refuses, with a
 * PANIC, a source page newer than a record whose destination needs redo.
 *
 * Which messages are named: naming a message on a page last changed before
 * the redo point would log the page's image, about what all its messages'
 * bytes cost, while the flush may add only a few of them here (a leaf
 * takes a few of each chain page's messages).  Such messages are logged
 * inline in the same record instead; a page named once since the redo
 * point (its LSN set by that record) is named from then on.  A record
 * with no message worth naming is not written: ADD_ITEMS is smaller.
 *
 * Costs: the named source pages are locked exclusively and dirtied (their
 * LSN) for each record, 8 bytes of block reference each.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xloginsert.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "utils/rel.h"

#include "fractal.h"
#include "fr_xlog.h"

/* a move record under construction: a run of tuples and its sources */
typedef struct FrMoveRecord
{
	int			ntups;
	int			nsrc;			/* source pages, block ids 2 .. */
	uint32		srcpage[FR_MOVE_MAX_SOURCES];	/* index into map->blocks */
	Buffer		srcbuf[FR_MOVE_MAX_SOURCES];
	OffsetNumber *srcoff;		/* per tuple */
	uint8	   *srcblk;			/* per tuple: its source's block id, or 0:
								 * logged inline */
	Size		inline_bytes;	/* of the tuples logged inline */
} FrMoveRecord;

/*
 * Fill 'rec' with the longest prefix of tups[0..n) whose sources fit one
 * record (at most FR_MOVE_MAX_SOURCES pages).  A tuple whose page was last
 * changed before the redo point 'redo' is logged inline instead: naming it
 * would cost the page's image.  pageid[] maps a chain page index to its
 * block id in this record (-1: none yet), reset here.
 */
static void
fr_move_plan(FrMoveMap *map, FrMoveSrc **src, IndexTuple *tups, int n,
			 XLogRecPtr redo, int16 *pageid, FrMoveRecord *rec)
{
	int			i;

	for (i = 0; i < rec->nsrc; i++)
		pageid[rec->srcpage[i]] = -1;
	rec->nsrc = 0;
	rec->inline_bytes = 0;
	for (i = 0; i < n; i++)
	{
		uint32		pg = src[i]->page;

		if (map->lsn[pg] <= redo)
		{
			rec->srcoff[i] = InvalidOffsetNumber;
			rec->srcblk[i] = 0;
			rec->inline_bytes += IndexTupleSize(tups[i]);
			continue;
		}
		if (pageid[pg] < 0)
		{
			if (rec->nsrc == FR_MOVE_MAX_SOURCES)
				break;
			pageid[pg] = (int16) (FR_MOVE_FIRST_SOURCE + rec->nsrc);
			rec->srcpage[rec->nsrc++] = pg;
		}
		rec->srcoff[i] = src[i]->off;
		rec->srcblk[i] = (uint8) pageid[pg];
	}
	rec->ntups = i;
}

/* the tuples of 'rec' logged inline, concatenated (palloc'd, or NULL) */
static char *
fr_move_inline(IndexTuple *tups, FrMoveRecord *rec)
{
	char	   *data,
			   *p;
	int			i;

	if (rec->inline_bytes == 0)
		return NULL;
	data = p = palloc(rec->inline_bytes);
	for (i = 0; i < rec->ntups; i++)
		if (rec->srcblk[i] == 0)
		{
			memcpy(p, tups[i], IndexTupleSize(tups[i]));
			p += IndexTupleSize(tups[i]);
		}
	return data;
}

/*
 * Add rec->ntups tuples tups[] (at offs[], or appended) to the page in
 * 'buf', and the keys to 'slot' when given, logging one move record whose
 * sources are locked here.
 */
static void
fr_move_write(FrState *state, Buffer buf, IndexTuple *tups, OffsetNumber *offs,
			  FrSlotAdd *slot, FrMoveRecord *rec)
{
	Page		page = BufferGetPage(buf);
	bool		withslot = (slot != NULL && BufferIsValid(slot->fbuf));
	int			n = rec->ntups;
	char	   *inl = fr_move_inline(tups, rec);
	xl_fr_move_items xlrec;
	XLogRecPtr	recptr;
	uint16		slotno = (uint16) (withslot ? slot->slot : 0);
	int			i;

	/* the sources, newest chain page first, as fr_read_chain read them */
	for (i = 0; i < rec->nsrc; i++)
		rec->srcbuf[i] = fr_read_buffer(state->index,
										state->moves->blocks[rec->srcpage[i]],
										BUFFER_LOCK_EXCLUSIVE);
	fr_page_check_room(page, tups, n);
	XLogEnsureRecordSpace(XLR_MAX_BLOCK_ID, 0);
	memset(&xlrec, 0, sizeof(xlrec));
	xlrec.ntuples = (uint16) n;
	xlrec.has_offsets = (offs != NULL);
	xlrec.flags = FrPageIsLeaf(page) ? FR_MOVE_TO_LEAF : 0;

	START_CRIT_SECTION();
	fr_page_put_items_slot(buf, tups, offs, n, slot);
	for (i = 0; i < rec->nsrc; i++)
		MarkBufferDirty(rec->srcbuf[i]);

	XLogBeginInsert();
	XLogRegisterData((char *) &xlrec, SizeOfFrMoveItems);
	/* the slot's replay needs the references even after a page image */
	XLogRegisterBuffer(0, buf, REGBUF_STANDARD | (withslot ? REGBUF_KEEP_DATA : 0));
	if (offs)
		XLogRegisterBufData(0, (char *) offs, sizeof(OffsetNumber) * n);
	XLogRegisterBufData(0, (char *) rec->srcoff, sizeof(OffsetNumber) * n);
	XLogRegisterBufData(0, (char *) rec->srcblk, n);
	if (inl)
		XLogRegisterBufData(0, inl, rec->inline_bytes);
	if (withslot)
	{
		XLogRegisterBuffer(1, slot->fbuf, REGBUF_STANDARD);
		XLogRegisterBufData(1, (char *) &slotno, sizeof(slotno));
	}
	for (i = 0; i < rec->nsrc; i++)
		XLogRegisterBuffer(FR_MOVE_FIRST_SOURCE + i, rec->srcbuf[i], REGBUF_STANDARD);
	recptr = fr_xlog_insert(FR_RMGR_ID, XLOG_FR_MOVE_ITEMS);
	PageSetLSN(page, recptr);
	if (withslot)
		PageSetLSN(BufferGetPage(slot->fbuf), recptr);
	for (i = 0; i < rec->nsrc; i++)
		PageSetLSN(BufferGetPage(rec->srcbuf[i]), recptr);
	END_CRIT_SECTION();

	/* the sources are now newer than the redo point: later moves name them */
	for (i = 0; i < rec->nsrc; i++)
	{
		state->moves->lsn[rec->srcpage[i]] = recptr;
		UnlockReleaseBuffer(rec->srcbuf[i]);
	}
	if (inl)
		pfree(inl);
}

/*
 * Add sorted tups[0..n) of a flush to the page in 'buf' (a child's chain
 * page or a leaf, exclusively locked, room checked), as fr_leaf_add_items
 * would, but log them as moves from the flushed chain's pages (one record
 * per FR_MOVE_MAX_SOURCES source pages at most).  Returns false, having
 * changed nothing, when no move is worth logging: not in a flush
 * (state->moves), a tuple not read from the flushed chain, full-page
 * writes off, or every tuple's page last changed before the redo point
 * (all would be logged inline: ADD_ITEMS is smaller).
 */
bool
fr_move_items(FrState *state, Buffer buf, IndexTuple *tups,
			  OffsetNumber *offs, int n, FrSlotAdd *slot)
{
	FrMoveMap  *map = state->moves;
	FrMoveSrc **src;
	FrMoveRecord rec;
	int16	   *pageid;
	XLogRecPtr	redo;
	bool		fpw,
				named = false;
	int			i;

	if (map == NULL || n <= 0)
		return false;
	GetFullPageWriteInfo(&redo, &fpw);
	if (!fpw)
		return false;

	/* every tuple's source, or no move; and one at least worth naming */
	src = palloc(sizeof(FrMoveSrc *) * n);
	for (i = 0; i < n; i++)
	{
		if ((src[i] = fr_move_map_find(map, tups[i])) == NULL)
			break;
		named |= map->lsn[src[i]->page] > redo;
	}
	if (i < n || !named)
	{
		pfree(src);
		return false;
	}

	/* one record per run of tuples whose sources fit one */
	pageid = palloc(sizeof(int16) * map->nblocks);
	for (i = 0; i < map->nblocks; i++)
		pageid[i] = -1;
	rec.nsrc = 0;
	rec.srcoff = palloc(sizeof(OffsetNumber) * n);
	rec.srcblk = palloc(n);
	for (i = 0; i < n; i += rec.ntups)
	{
		fr_move_plan(map, src + i, tups + i, n - i, redo, pageid, &rec);
		fr_move_write(state, buf, tups + i, offs ? offs + i : NULL, slot, &rec);
	}
	pfree(rec.srcoff);
	pfree(rec.srcblk);
	pfree(pageid);
	pfree(src);
	return true;
}

/*
 * Redo: the item at 'off' of the source page with block id 'blk' (read into
 * srcbuf[blk], newer[blk] when it is newer than the record)
 */
static IndexTuple
fr_redo_move_source(Buffer *srcbuf, bool *newer, uint8 blk, OffsetNumber off)
{
	Page		page;
	ItemId		iid;
	IndexTuple	itup;

	if (blk < FR_MOVE_FIRST_SOURCE || blk > XLR_MAX_BLOCK_ID)
		elog(PANIC, "fractal redo: move from block id %u", blk);
	if (newer[blk])
		elog(PANIC, "fractal redo: a move's source page is newer than the record (was full_page_writes off?)");
	if (!BufferIsValid(srcbuf[blk]))
		elog(PANIC, "fractal redo: a move's source page is missing");
	page = BufferGetPage(srcbuf[blk]);
	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page))
		elog(PANIC, "fractal redo: move from offset %u of a page of %u items",
			 off, (unsigned) PageGetMaxOffsetNumber(page));
	iid = PageGetItemId(page, off);
	itup = (IndexTuple) PageGetItem(page, iid);
	if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) != IndexTupleSize(itup))
		elog(PANIC, "fractal redo: move from a bad item");
	return itup;
}

/*
 * Redo: the references of a move record's block 0 data, which a record
 * whose page came as an image has only when it also names a slot
 * (REGBUF_KEEP_DATA).  *inl gets the inline tuples, *inl_len their bytes.
 */
static void
fr_redo_move_refs(XLogReaderState *record, xl_fr_move_items *xlrec,
				  OffsetNumber *offs, OffsetNumber *srcoff, uint8 *srcblk,
				  char **inl, Size *inl_len)
{
	int			n = xlrec->ntuples;
	Size		len;
	char	   *ptr = XLogRecGetBlockData(record, 0, &len);
	Size		refs = (Size) n * (sizeof(OffsetNumber) * (xlrec->has_offsets ? 2 : 1) + 1);

	if (ptr == NULL || len < refs)
		elog(PANIC, "fractal redo: bad move record");
	if (xlrec->has_offsets)
	{
		memcpy(offs, ptr, sizeof(OffsetNumber) * n);
		ptr += sizeof(OffsetNumber) * n;
	}
	memcpy(srcoff, ptr, sizeof(OffsetNumber) * n);
	memcpy(srcblk, ptr + sizeof(OffsetNumber) * n, n);
	*inl = ptr + (sizeof(OffsetNumber) + 1) * n;
	*inl_len = len - refs;
}

/*
 * Redo: the tuples a move record adds, each named (fr_redo_move_source) or
 * the next inline one (copied to aligned memory; the record must hold
 * exactly those)
 */
static void
fr_redo_move_tuples(Buffer *srcbuf, bool *newer, int n, OffsetNumber *srcoff,
					uint8 *srcblk, char *inl, Size inl_len, IndexTuple *tups)
{
	char	   *end = inl + inl_len;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (srcblk[i] != 0)
			tups[i] = fr_redo_move_source(srcbuf, newer, srcblk[i], srcoff[i]);
		else
			tups[i] = fr_redo_next_tuple(&inl, end);
	}
	if (inl != end)
		elog(PANIC, "fractal redo: move record has trailing bytes");
}

/*
 * Redo: lock the source pages of a move record (block ids from
 * FR_MOVE_FIRST_SOURCE) into srcbuf[], giving each that needs redo the
 * record's LSN, and note in newer[] those newer than the record
 */
static void
fr_redo_move_sources(XLogReaderState *record, Buffer *srcbuf, bool *newer)
{
	int			b;

	for (b = 0; b <= XLR_MAX_BLOCK_ID; b++)
	{
		srcbuf[b] = InvalidBuffer;
		newer[b] = false;
		if (b < FR_MOVE_FIRST_SOURCE || !XLogRecHasBlockRef(record, b))
			continue;
		switch (XLogReadBufferForRedo(record, b, &srcbuf[b]))
		{
			case BLK_NEEDS_REDO:
				PageSetLSN(BufferGetPage(srcbuf[b]), record->EndRecPtr);
				MarkBufferDirty(srcbuf[b]);
				break;
			case BLK_DONE:
				newer[b] = true;
				break;
			default:			/* restored from its image, or not found */
				break;
		}
	}
}

/*
 * Redo of XLOG_FR_MOVE_ITEMS: lock the sources (parent level first), then
 * the chain page, then the leaf filter page; where either of those needs
 * redo, add the named items to the chain page and their keys to the slot
 * (a source newer than the record is then an error).
 */
void
fr_redo_move_items(XLogReaderState *record)
{
	xl_fr_move_items *xlrec = (xl_fr_move_items *) XLogRecGetData(record);
	int			n = xlrec->ntuples;
	Buffer		srcbuf[XLR_MAX_BLOCK_ID + 1];
	bool		newer[XLR_MAX_BLOCK_ID + 1];
	Buffer		buf = InvalidBuffer,
				fbuf = InvalidBuffer;
	OffsetNumber *offs = palloc(sizeof(OffsetNumber) * Max(n, 1));
	OffsetNumber *srcoff = palloc(sizeof(OffsetNumber) * Max(n, 1));
	uint8	   *srcblk = palloc0(Max(n, 1));
	IndexTuple *tups = palloc0(sizeof(IndexTuple) * Max(n, 1));
	char	   *inl = NULL;
	Size		inl_len = 0;
	XLogRedoAction daction,
				faction;
	int			b;

	fr_redo_move_sources(record, srcbuf, newer);
	daction = XLogReadBufferForRedo(record, 0, &buf);
	faction = XLogRecHasBlockRef(record, 1) ?
		XLogReadBufferForRedo(record, 1, &fbuf) : BLK_NOTFOUND;

	/* the items, where either page needs them */
	if (daction == BLK_NEEDS_REDO || faction == BLK_NEEDS_REDO)
	{
		fr_redo_move_refs(record, xlrec, offs, srcoff, srcblk, &inl, &inl_len);
		fr_redo_move_tuples(srcbuf, newer, n, srcoff, srcblk, inl, inl_len, tups);
	}
	if (daction == BLK_NEEDS_REDO)
	{
		Page		page = BufferGetPage(buf);

		if (FrPageIsLeaf(page) != ((xlrec->flags & FR_MOVE_TO_LEAF) != 0))
			elog(PANIC, "fractal redo: a move's page is not of the kind the record names");
		fr_page_put_items(page, tups, xlrec->has_offsets ? offs : NULL, n, PANIC);
		PageSetLSN(page, record->EndRecPtr);
		MarkBufferDirty(buf);
	}
	if (faction == BLK_NEEDS_REDO)
		fr_redo_slot_keys(record, fbuf, tups, n);

	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	if (BufferIsValid(fbuf))
		UnlockReleaseBuffer(fbuf);
	for (b = 0; b <= XLR_MAX_BLOCK_ID; b++)
		if (BufferIsValid(srcbuf[b]))
			UnlockReleaseBuffer(srcbuf[b]);
	/* the inline tuples' copies (named ones lie on the source pages) */
	for (b = 0; b < n; b++)
		if (srcblk[b] == 0 && tups[b] != NULL)
			pfree(tups[b]);
	pfree(tups);
	pfree(offs);
	pfree(srcoff);
	pfree(srcblk);
}
