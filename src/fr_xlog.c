/*-------------------------------------------------------------------------
 *
 * fr_xlog.c
 *	  WAL of the fractal index.
 *
 * Every page change is logged.  Structural steps (new pages, splits, root
 * growth, freeing chains, VACUUM deletions) use generic WAL.  The two hot
 * operations, adding messages to a buffer chain page and merging entries
 * into a leaf in place, go through fr_page_add_items, which writes one of
 * two forms:
 *
 *	- a "fractal" custom resource manager record (XLOG_FR_ADD_ITEMS: the
 *	  tuples and their offsets) when the library was loaded through
 *	  shared_preload_libraries, which is the only time a custom resource
 *	  manager can be registered;
 *	- a generic WAL record otherwise.
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
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "utils/rel.h"

#include "fractal.h"
#include "fr_xlog.h"

bool		fr_custom_wal = false;

static void fr_redo(XLogReaderState *record);
static void fr_desc(StringInfo buf, XLogReaderState *record);
static const char *fr_identify(uint8 info);
static void fr_mask(char *pagedata, BlockNumber blkno);

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
	int			i;

	if (n <= 0)
		return;

	if (!fr_custom_wal)
	{
		GenericXLogState *xs = GenericXLogStart(index);
		Page		page = GenericXLogRegisterBuffer(xs, buf, 0);

		for (i = 0; i < n; i++)
			if (PageAddItem(page, (Item) tups[i], IndexTupleSize(tups[i]),
							offs ? offs[i] : InvalidOffsetNumber,
							false, false) == InvalidOffsetNumber)
				elog(ERROR, "failed to add item to fractal index page");
		fr_filter_add_tuples(page, tups, n);
		GenericXLogFinish(xs);
		return;
	}

	{
		Page		page = BufferGetPage(buf);
		Size		need = 0,
					datalen = 0;
		char	   *data = NULL,
				   *p;
		bool		needwal = RelationNeedsWAL(index);
		xl_fr_add_items xlrec;

		for (i = 0; i < n; i++)
		{
			need += fr_item_space(tups[i]);
			datalen += IndexTupleSize(tups[i]);
		}
		if (need > PageGetExactFreeSpace(page) || n > PG_UINT16_MAX)
			elog(ERROR, "fractal index page has no room for %d items", n);

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
		for (i = 0; i < n; i++)
			if (PageAddItem(page, (Item) tups[i], IndexTupleSize(tups[i]),
							offs ? offs[i] : InvalidOffsetNumber,
							false, false) == InvalidOffsetNumber)
				elog(PANIC, "failed to add item to fractal index page");
		fr_filter_add_tuples(page, tups, n);
		MarkBufferDirty(buf);
		if (needwal)
		{
			XLogRecPtr	recptr;

			memset(&xlrec, 0, sizeof(xlrec));
			xlrec.ntuples = (uint16) n;
			xlrec.has_offsets = (offs != NULL);
			XLogBeginInsert();
			XLogRegisterData((char *) &xlrec, SizeOfFrAddItems);
			XLogRegisterBuffer(0, buf, REGBUF_STANDARD);
			XLogRegisterBufData(0, data, datalen);
			recptr = XLogInsert(FR_RMGR_ID, XLOG_FR_ADD_ITEMS);
			PageSetLSN(page, recptr);
		}
		END_CRIT_SECTION();
		if (data)
			pfree(data);
	}
}

static void
fr_redo_add_items(XLogReaderState *record)
{
	XLogRecPtr	lsn = record->EndRecPtr;
	xl_fr_add_items *xlrec = (xl_fr_add_items *) XLogRecGetData(record);
	Buffer		buf;

	if (XLogReadBufferForRedo(record, 0, &buf) == BLK_NEEDS_REDO)
	{
		Page		page = BufferGetPage(buf);
		Size		len;
		char	   *ptr = XLogRecGetBlockData(record, 0, &len);
		char	   *end = ptr + len;
		OffsetNumber *offs = NULL;
		int			i;

		if (xlrec->has_offsets)
		{
			offs = palloc(sizeof(OffsetNumber) * xlrec->ntuples);
			memcpy(offs, ptr, sizeof(OffsetNumber) * xlrec->ntuples);
			ptr += sizeof(OffsetNumber) * xlrec->ntuples;
		}
		for (i = 0; i < xlrec->ntuples; i++)
		{
			IndexTupleData hdr;
			Size		sz;
			OffsetNumber added;
			IndexTuple	itup;

			if (ptr + sizeof(IndexTupleData) > end)
				elog(PANIC, "fractal redo: truncated record");
			memcpy(&hdr, ptr, sizeof(IndexTupleData));
			sz = IndexTupleSize(&hdr);
			if (ptr + sz > end)
				elog(PANIC, "fractal redo: truncated tuple");
			added = PageAddItem(page, (Item) ptr, sz,
								offs ? offs[i] : InvalidOffsetNumber,
								false, false);
			if (added == InvalidOffsetNumber)
				elog(PANIC, "fractal redo: failed to add item");
			/* the filter bits, from the item as placed (aligned) */
			itup = (IndexTuple) PageGetItem(page, PageGetItemId(page, added));
			fr_filter_add_tuples(page, &itup, 1);
			ptr += sz;
		}
		PageSetLSN(page, lsn);
		MarkBufferDirty(buf);
		if (offs)
			pfree(offs);
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
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
	Size		tail = head + lf->nslots * FrLeafFilterSlotSize(lf);
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
		recptr = XLogInsert(FR_RMGR_ID, XLOG_FR_LFILTER_SLOTS);
		PageSetLSN(page, recptr);
	}
	END_CRIT_SECTION();
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
	Page		page = BufferGetPage(buf);
	FrLeafFilters lf = FrPageGetLeafFilters(page);
	Size		size = FrLeafFilterSlotSize(lf);
	Size		head = (char *) FrLeafFilterSlot(lf, 0) - (char *) page;
	Size		tail = head + lf->nslots * size;
	StringInfoData data;
	int			i;

	/* nothing outside the slots may have changed */
	if (memcmp(page, copy, head) != 0 ||
		memcmp(page + tail, copy + tail, BLCKSZ - tail) != 0)
		elog(ERROR, "fractal leaf filter page changed outside its slots");
	initStringInfo(&data);
	for (i = 0; i < lf->nslots; i++)
	{
		Size		o = head + i * size;

		if (memcmp(page + o, copy + o, size) != 0)
			fr_append_diff(&data, page + o, copy + o, size, o);
	}
	fr_log_slot_fragments(index, buf, &data);
	pfree(data.data);
}

/*
 * The same for one slot: slot 'slot' of the leaf filter page in 'buf'
 * (exclusively locked) becomes 'image' (FrLeafFilterSlotSize bytes).
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
	fr_append_diff(&data, cur, image, FrLeafFilterSlotSize(lf), cur - (char *) page);
	fr_log_slot_fragments(index, buf, &data);
	pfree(data.data);
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
