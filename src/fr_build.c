/*-------------------------------------------------------------------------
 *
 * fr_build.c
 *	  CREATE INDEX for the fractal index: sort the heap's entries with a
 *	  tuplesort over a synthetic tuple descriptor (key columns + heap TID;
 *	  PG15's index tuplesorts are btree-only), pack leaves left to right to
 *	  fillfactor, build the internal levels above them with empty buffers,
 *	  and WAL-log the result with log_newpage_range.  Also ambuildempty.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "catalog/pg_operator_d.h"
#include "catalog/pg_type_d.h"
#include "commands/progress.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplesort.h"
#include "storage/itemptr.h"

#include "fractal.h"

/* one page of a level under construction */
typedef struct FrBuildLevel
{
	BlockNumber *blocks;		/* pages written at this level */
	IndexTuple *firsts;			/* first key of each page (NULL for the
								 * leftmost: minus infinity) */
	int			n;
	int			cap;
} FrBuildLevel;

typedef struct FrBuildState
{
	FrState		state;
	Relation	heap;
	Tuplesortstate *sort;
	int			natts;			/* key and INCLUDE columns */
	TupleDesc	sortdesc;		/* those, the heap TID, whether alive */
	bool		unique;			/* CREATE UNIQUE INDEX: check the keys */
	IndexTuple	last_alive;		/* unique: the last live entry loaded */
	TupleTableSlot *slot;		/* virtual: feeding the sort */
	TupleTableSlot *outslot;	/* minimal tuples read back */
	MemoryContext tmpcxt;
	double		indtuples;
	double		plainbytes;		/* the entries' bytes on plain pages */
	/* loading */
	PGAlignedBlock page;
	bool		page_has_data;
	bool		last_leaf_compressed;
	FrBuildLevel leaves;
	/* compressed leaves: entries waiting for a page */
	IndexTuple *pending;
	int			npending;
	int			pending_cap;
	Size		pending_raw;
	double		zratio;			/* raw bytes per page byte of the last page */
} FrBuildState;

static void
fr_level_add(FrBuildLevel *lvl, BlockNumber blk, IndexTuple first)
{
	if (lvl->n >= lvl->cap)
	{
		lvl->cap = Max(64, lvl->cap * 2);
		lvl->blocks = lvl->blocks ? repalloc(lvl->blocks, sizeof(BlockNumber) * lvl->cap)
			: palloc(sizeof(BlockNumber) * lvl->cap);
		lvl->firsts = lvl->firsts ? repalloc(lvl->firsts, sizeof(IndexTuple) * lvl->cap)
			: palloc(sizeof(IndexTuple) * lvl->cap);
	}
	lvl->blocks[lvl->n] = blk;
	lvl->firsts[lvl->n] = first;
	lvl->n++;
}

/*
 * Append a finished page to the index through shared buffers, without WAL
 * (the whole relation is logged at the end).  Returns its block number.
 */
static BlockNumber
fr_build_write_page(Relation index, Page page)
{
	Buffer		buf = ReadBuffer(index, P_NEW);
	BlockNumber blk = BufferGetBlockNumber(buf);

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	memcpy(BufferGetPage(buf), page, BLCKSZ);
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);
	return blk;
}

/* emit the current leaf page */
static void
fr_build_flush_leaf(FrBuildState *bs)
{
	Page		page = bs->page.data;
	IndexTuple	first;

	if (!bs->page_has_data)
		return;
	first = bs->leaves.n == 0 ? NULL :
		CopyIndexTuple((IndexTuple) PageGetItem(page, PageGetItemId(page, FirstOffsetNumber)));
	fr_level_add(&bs->leaves, fr_build_write_page(bs->state.index, page), first);
	bs->last_leaf_compressed = false;
	fr_init_page(page, FR_LEAF, 0);
	bs->page_has_data = false;
}

/*
 * Compressed leaves: write the longest prefix of the pending entries that
 * compresses into fillfactor of a page.
 */
static void
fr_build_emit_compressed(FrBuildState *bs)
{
	Page		page = bs->page.data;
	Size		target = FrPageUsable * bs->state.fillfactor / 100;
	FrState		mstate = bs->state;
	Size		raw = 0;
	int			i,
				k;

	/* the frames compressed to size the page are kept to fill it */
	mstate.zmemo = fr_zmemo_create(&mstate);
	k = fr_leaf_max_prefix(&mstate, bs->pending, bs->npending, target);
	fr_init_page(page, FR_LEAF, 0);
	if (!fr_leaf_fill(&mstate, page, bs->pending, k, true))
		elog(ERROR, "fractal build could not fill a leaf");
	fr_zmemo_free(mstate.zmemo);
	bs->last_leaf_compressed = FrPageIsCompressed(page);
	fr_level_add(&bs->leaves, fr_build_write_page(bs->state.index, page),
				 bs->leaves.n == 0 ? NULL : CopyIndexTuple(bs->pending[0]));
	for (i = 0; i < k; i++)
	{
		raw += IndexTupleSize(bs->pending[i]);
		pfree(bs->pending[i]);
	}
	bs->zratio = Max(1.0, (double) raw / target);
	bs->pending_raw -= raw;
	bs->npending -= k;
	memmove(bs->pending, bs->pending + k, sizeof(IndexTuple) * bs->npending);
	fr_init_page(page, FR_LEAF, 0);
}

/* add one sorted entry when leaves are compressed */
static void
fr_build_add_compressed(FrBuildState *bs, IndexTuple itup)
{
	Size		target = FrPageUsable * bs->state.fillfactor / 100;

	if (bs->npending >= bs->pending_cap)
	{
		bs->pending_cap = Max(1024, bs->pending_cap * 2);
		bs->pending = bs->pending ? repalloc(bs->pending, sizeof(IndexTuple) * bs->pending_cap)
			: palloc(sizeof(IndexTuple) * bs->pending_cap);
	}
	bs->pending[bs->npending++] = CopyIndexTuple(itup);
	bs->pending_raw += IndexTupleSize(itup);
	/* try a page once the pending entries probably fill one */
	if (bs->pending_raw > target * bs->zratio * 1.25 ||
		bs->pending_raw > FR_Z_MAX_RAW - FR_MAX_ITEM_SIZE ||
		bs->npending >= PG_UINT16_MAX)
		fr_build_emit_compressed(bs);
}

/* add one sorted entry to the leaf level */
static void
fr_build_add_entry(FrBuildState *bs, IndexTuple itup)
{
	Page		page = bs->page.data;

	if (bs->state.compression == FR_COMPRESSION_ZSTD)
	{
		fr_build_add_compressed(bs, itup);
		return;
	}
	{
	Size		space = fr_item_space(itup);
	Size		target = FrPageUsable * bs->state.fillfactor / 100;

	if (bs->page_has_data &&
		(FrPageUsable - PageGetExactFreeSpace(page) + space > target ||
		 PageGetFreeSpace(page) < MAXALIGN(IndexTupleSize(itup))))
		fr_build_flush_leaf(bs);
	if (PageAddItem(page, (Item) itup, IndexTupleSize(itup), InvalidOffsetNumber,
					false, false) == InvalidOffsetNumber)
		elog(ERROR, "failed to add entry to fractal leaf during build");
	bs->page_has_data = true;
	}
}

/*
 * Build the internal levels above 'lower' until one page remains; returns
 * the root block and sets *height.  Nodes are packed to fillfactor (but
 * always leave FR_NODE_SPLIT_FREE free so the first flushes do not split
 * them at once), with a partition boundary every fr_partition_limit items
 * (partition_children, fewer for wide pivots), as the runtime keeps them.
 * *level1 gets the level-1 nodes.
 */
static BlockNumber
fr_build_upper(FrBuildState *bs, FrBuildLevel *lower, uint32 *height,
			   FrBuildLevel *level1)
{
	Relation	index = bs->state.index;
	uint16		level = 0;
	PGAlignedBlock pagebuf;
	Page		page = pagebuf.data;

	/* at least one level: the root is never a compressed leaf */
	while (lower->n > 1 || level == 0)
	{
		FrBuildLevel upper = {NULL, NULL, 0, 0};
		int			i = 0;

		level++;
		while (i < lower->n)
		{
			int			nitems = 0,
						inpart = 0;
			IndexTuple	first = lower->firsts[i];

			fr_init_page(page, FR_NODE, level);
			while (i < lower->n)
			{
				Size		sz;
				FrNodeItem	item;

				item = fr_make_node_item(nitems == 0 ? NULL : lower->firsts[i],
										 lower->blocks[i], 0, &sz);
				/* a partition boundary as the runtime limit would put it */
				if (nitems == 0 ||
					inpart >= fr_partition_limit(&bs->state, MAXALIGN(sz) + sizeof(ItemIdData),
												level))
				{
					item->flags |= FR_ITEM_PART_START;
					inpart = 0;
				}
				if (nitems >= 2 &&
					PageGetExactFreeSpace(page) < sz + sizeof(ItemIdData) + FR_NODE_SPLIT_FREE + 64)
				{
					pfree(item);
					break;
				}
				if (PageAddItem(page, (Item) item, sz, InvalidOffsetNumber,
								false, false) == InvalidOffsetNumber)
					elog(ERROR, "failed to add item to fractal node during build");
				pfree(item);
				nitems++;
				inpart++;
				i++;
			}
			if (i == lower->n && upper.n == 0)
				FrPageGetOpaque(page)->flags |= FR_ROOT;
			fr_level_add(&upper, fr_build_write_page(index, page), first);
		}
		if (level == 1)
			*level1 = upper;
		*lower = upper;
	}
	*height = level;
	return lower->blocks[0];
}

static void
fr_build_callback(Relation index, ItemPointer tid, Datum *values,
				  bool *isnull, bool tupleIsAlive, void *state)
{
	FrBuildState *bs = (FrBuildState *) state;
	MemoryContext oldcxt = MemoryContextSwitchTo(bs->tmpcxt);
	IndexTuple	itup = fr_form_tuple(&bs->state, values, isnull, tid);
	int			i;

	/*
	 * sort the formed (detoasted, size-checked) values of every column
	 * (keys, then INCLUDE columns) plus the TID
	 */
	ExecClearTuple(bs->slot);
	for (i = 0; i < bs->natts; i++)
		bs->slot->tts_values[i] = index_getattr(itup, i + 1, bs->state.tupdesc,
												&bs->slot->tts_isnull[i]);
	bs->slot->tts_values[bs->natts] = PointerGetDatum(&itup->t_tid);
	bs->slot->tts_isnull[bs->natts] = false;
	bs->slot->tts_values[bs->natts + 1] = BoolGetDatum(tupleIsAlive);
	bs->slot->tts_isnull[bs->natts + 1] = false;
	ExecStoreVirtualTuple(bs->slot);
	tuplesort_puttupleslot(bs->sort, bs->slot);
	bs->indtuples += 1;
	bs->plainbytes += MAXALIGN(IndexTupleSize(itup)) + sizeof(ItemIdData);

	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(bs->tmpcxt);
}

/*
 * Set up the tuplesort over columns (keys, INCLUDE columns, heap TID,
 * whether the heap tuple is alive, for unique checks): each
 * key column sorted by the opfamily's '<' (or '>' for DESC) with the
 * column's collation and NULLS order, then the heap TID ascending; the
 * INCLUDE columns are carried along unsorted.
 */
static void
fr_build_begin_sort(FrBuildState *bs)
{
	Relation	index = bs->state.index;
	int			nkeys = bs->state.nkeys;
	int			nsort = nkeys + 1;
	int			tidcol = bs->natts + 1;
	AttrNumber *attnums = palloc(sizeof(AttrNumber) * nsort);
	Oid		   *ops = palloc(sizeof(Oid) * nsort);
	Oid		   *colls = palloc(sizeof(Oid) * nsort);
	bool	   *nullsfirst = palloc(sizeof(bool) * nsort);
	int			i;

	bs->sortdesc = CreateTemplateTupleDesc(tidcol + 1);
	TupleDescInitEntry(bs->sortdesc, tidcol + 1, NULL, BOOLOID, -1, 0);
	for (i = nkeys; i < bs->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(bs->state.tupdesc, i);

		TupleDescInitEntry(bs->sortdesc, i + 1, NULL, att->atttypid,
						   att->atttypmod, 0);
	}
	for (i = 0; i < nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(bs->state.tupdesc, i);
		Oid			opcintype = index->rd_opcintype[i];
		int16		strategy = bs->state.desc[i] ? BTGreaterStrategyNumber : BTLessStrategyNumber;

		TupleDescInitEntry(bs->sortdesc, i + 1, NULL, att->atttypid,
						   att->atttypmod, 0);
		TupleDescInitEntryCollation(bs->sortdesc, i + 1, index->rd_indcollation[i]);
		attnums[i] = i + 1;
		ops[i] = get_opfamily_member(index->rd_opfamily[i], opcintype, opcintype,
									 strategy);
		if (!OidIsValid(ops[i]))
			elog(ERROR, "missing operator %d(%u,%u) in opfamily %u",
				 strategy, opcintype, opcintype, index->rd_opfamily[i]);
		colls[i] = index->rd_indcollation[i];
		nullsfirst[i] = bs->state.nulls_first[i];
	}
	TupleDescInitEntry(bs->sortdesc, tidcol, NULL, TIDOID, -1, 0);
	attnums[nkeys] = tidcol;
	ops[nkeys] = TIDLessOperator;
	colls[nkeys] = InvalidOid;
	nullsfirst[nkeys] = false;

	bs->sort = tuplesort_begin_heap(bs->sortdesc, nsort, attnums, ops, colls,
									nullsfirst, maintenance_work_mem, NULL,
									TUPLESORT_NONE);
	bs->slot = MakeSingleTupleTableSlot(bs->sortdesc, &TTSOpsVirtual);
	bs->outslot = MakeSingleTupleTableSlot(bs->sortdesc, &TTSOpsMinimalTuple);
}

/*
 * CREATE UNIQUE INDEX: 'itup', an entry of a live heap tuple, arrives in
 * key order; it violates uniqueness when the previous live entry has an
 * equal key (no NULL in it, or NULLS NOT DISTINCT).  Recently dead tuples
 * are indexed but not checked, as in nbtree.
 */
static void
fr_build_check_unique(FrBuildState *bs, IndexTuple itup)
{
	FrState    *state = &bs->state;

	if (!fr_unique_applies(state, itup))
		return;
	if (bs->last_alive != NULL && fr_compare_keys(state, bs->last_alive, itup) == 0)
		fr_unique_report(state, bs->heap, itup, true);
	if (bs->last_alive != NULL)
		pfree(bs->last_alive);
	bs->last_alive = CopyIndexTuple(itup);	/* in the caller's context */
}

/*
 * Fill leaf filter page 'fp' for the partition at 'part' of the level-1
 * node 'np': a slot for each of its leaves but the node's last (whose slot
 * readers ignore), each leaf read back once.
 */
static void
fr_build_partition_filters(FrBuildState *bs, Page np, OffsetNumber part,
						   Page fp)
{
	Relation	index = bs->state.index;
	OffsetNumber end = fr_node_partition_end(np, part),
				off;

	/* the chains are empty; the root's chain slots are never trusted */
	fr_lfilter_init_page(&bs->state, fp, !FrPageIsRoot(np));
	for (off = part; off < end && off < PageGetMaxOffsetNumber(np); off++)
	{
		BlockNumber leaf = fr_node_get_item(np, off)->child;
		Buffer		lbuf = fr_read_buffer(index, leaf, BUFFER_LOCK_SHARE);
		FrLeafView	view;

		fr_leaf_view(index, BufferGetPage(lbuf), leaf, &view);
		(void) fr_lfilter_set(fp, np, part, leaf, view.items, view.n, true);
		fr_leaf_view_release(&view);
		UnlockReleaseBuffer(lbuf);
	}
}

/*
 * Give every partition of the level-1 nodes 'level1' its leaf filter page
 * (format 4, src/README.md section 3d), written like the other pages and
 * logged with them.  Needs the metapage (fr_lfilter_enabled reads the
 * version through rd_amcache).
 */
static void
fr_build_leaf_filters(FrBuildState *bs, FrBuildLevel *level1)
{
	Relation	index = bs->state.index;
	PGAlignedBlock fpage;
	int			i;

	fr_filter_prepare(index);
	if (!fr_lfilter_enabled(index))
		return;
	for (i = 0; i < level1->n; i++)
	{
		Buffer		nbuf = fr_read_buffer(index, level1->blocks[i], BUFFER_LOCK_EXCLUSIVE);
		Page		np = BufferGetPage(nbuf);
		OffsetNumber part;

		for (part = FirstOffsetNumber; part <= PageGetMaxOffsetNumber(np);
			 part = fr_node_partition_end(np, part))
		{
			BlockNumber fblk;

			fr_build_partition_filters(bs, np, part, fpage.data);
			fblk = fr_build_write_page(index, fpage.data);
			FrItemSetFilter(fr_node_get_item(np, part), fblk);
		}
		MarkBufferDirty(nbuf);
		UnlockReleaseBuffer(nbuf);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Write the metapage (block 0, reserved first), the leaf filters of the
 * level-1 nodes 'level1' (none when the root is a leaf), and log every
 * page.
 */
static void
fr_build_finish(FrBuildState *bs, BlockNumber root, uint32 height,
				FrBuildLevel *level1)
{
	Relation	index = bs->state.index;
	Buffer		mbuf = ReadBuffer(index, FR_META_BLKNO);

	LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
	fr_init_metapage(BufferGetPage(mbuf), root, height, bs->state.buffer_pages,
					 bs->state.partition_children);
	MarkBufferDirty(mbuf);
	UnlockReleaseBuffer(mbuf);
	if (height >= 1)
		fr_build_leaf_filters(bs, level1);

	/* the whole index, its page images compressed as new pages' are */
	if (RelationNeedsWAL(index))
	{
		int			saved = fr_image_compression_push(true);

		PG_TRY();
		{
			log_newpage_range(index, MAIN_FORKNUM, 0,
							  RelationGetNumberOfBlocks(index), true);
		}
		PG_FINALLY();
		{
			fr_image_compression_pop(saved);
		}
		PG_END_TRY();
	}
}

IndexBuildResult *
frbuild(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result;
	FrBuildState *bs;
	double		reltuples;
	BlockNumber root;
	uint32		height = 0;
	FrBuildLevel level1 = {NULL, NULL, 0, 0};
	PGAlignedBlock metaplaceholder;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data",
			 RelationGetRelationName(index));

	bs = palloc0(sizeof(FrBuildState));
	fr_init_state(&bs->state, index);
	bs->state.zblocks = 1;		/* a new index has the newest format */
	bs->natts = IndexRelationGetNumberOfAttributes(index);
	bs->unique = indexInfo->ii_Unique;
	bs->zratio = 1.0;
	bs->heap = heap;
	bs->tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "fractal build",
									   ALLOCSET_DEFAULT_SIZES);

	/* reserve block 0 for the metapage */
	fr_init_page(metaplaceholder.data, FR_META, 0);
	if (fr_build_write_page(index, metaplaceholder.data) != FR_META_BLKNO)
		elog(ERROR, "fractal metapage is not block 0");

	fr_build_begin_sort(bs);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, FR_PHASE_TABLESCAN);
	reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
									   fr_build_callback, (void *) bs, NULL);

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, FR_PHASE_SORT);
	tuplesort_performsort(bs->sort);

	/* compression = auto: by the leaf pages the entries would fill plain */
	bs->state.compression =
		fr_compression_for(fr_compression_option(index),
						   (BlockNumber) Min(bs->plainbytes /
											 (FrPageUsable * bs->state.fillfactor / 100.0),
											 (double) MaxBlockNumber));

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, FR_PHASE_LOAD);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, (int64) bs->indtuples);
	fr_init_page(bs->page.data, FR_LEAF, 0);
	{
		int64		done = 0;

		while (tuplesort_gettupleslot(bs->sort, true, false, bs->outslot, NULL))
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(bs->tmpcxt);
			IndexTuple	itup;

			slot_getallattrs(bs->outslot);
			itup = index_form_tuple(bs->state.tupdesc, bs->outslot->tts_values,
									bs->outslot->tts_isnull);
			itup->t_tid = *((ItemPointer) DatumGetPointer(bs->outslot->tts_values[bs->natts]));
			MemoryContextSwitchTo(oldcxt);
			if (bs->unique && DatumGetBool(bs->outslot->tts_values[bs->natts + 1]))
				fr_build_check_unique(bs, itup);
			fr_build_add_entry(bs, itup);
			MemoryContextReset(bs->tmpcxt);
			if (++done % 10000 == 0)
			{
				pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, done);
				CHECK_FOR_INTERRUPTS();
			}
		}
	}
	tuplesort_end(bs->sort);

	while (bs->npending > 0)
		fr_build_emit_compressed(bs);
	/* an empty index still has one (empty) leaf */
	if (bs->page_has_data || bs->leaves.n == 0)
	{
		bs->page_has_data = true;
		fr_build_flush_leaf(bs);
	}
	if (bs->leaves.n == 1 && !bs->last_leaf_compressed)
	{
		Buffer		buf = ReadBuffer(index, bs->leaves.blocks[0]);

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		FrPageGetOpaque(BufferGetPage(buf))->flags |= FR_ROOT;
		MarkBufferDirty(buf);
		UnlockReleaseBuffer(buf);
		root = bs->leaves.blocks[0];
	}
	else
		root = fr_build_upper(bs, &bs->leaves, &height, &level1);

	fr_build_finish(bs, root, height, &level1);
	ExecDropSingleTupleTableSlot(bs->slot);
	ExecDropSingleTupleTableSlot(bs->outslot);
	MemoryContextDelete(bs->tmpcxt);

	result = palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = bs->indtuples;
	return result;
}

/*
 * ambuildempty: the init fork of an unlogged index.
 */
void
frbuildempty(Relation index)
{
	fr_build_empty_index(index, INIT_FORKNUM);
}
