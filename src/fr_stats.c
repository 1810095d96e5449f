/*-------------------------------------------------------------------------
 *
 * fr_stats.c
 *	  Introspection: fractal_stats(regclass) and
 *	  fractal_level_stats(regclass).
 *
 * Extension 1.2 gives both a filter_pages column (leaf filter pages,
 * format 4); the 1.0/1.1 declarations have none, and there those pages
 * are counted with the nodes, as those versions did.  Which declaration
 * is installed is read off the result type the call expects, so one
 * library serves both until ALTER EXTENSION fractal UPDATE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_am.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "fractal.h"

#define FR_STATS_MAX_LEVEL 64

/* result columns as extension 1.2 declares them; 1.0 and 1.1 lack the last */
#define FR_STATS_COLUMNS		14
#define FR_LEVEL_STATS_COLUMNS	5

typedef struct FrPageCounts
{
	uint32		height;
	int64		meta,
				node,
				filter,			/* leaf filter pages (format 4) */
				chain,
				leaf,
				free;
	int64		messages;
	int64		entries;
	double		leaf_fill_sum;
	int64		zleaf;			/* compressed leaves */
	int64		zraw;			/* their entries' bytes uncompressed */
	int64		zstored;		/* their bytes stored */
	int64		plain_bytes;	/* bytes used by plain leaves */
	int64		level_nodes[FR_STATS_MAX_LEVEL + 1];
	int64		level_filters[FR_STATS_MAX_LEVEL + 1];
	int64		level_chain[FR_STATS_MAX_LEVEL + 1];
	int64		level_msgs[FR_STATS_MAX_LEVEL + 1];
} FrPageCounts;

/*
 * Open 'relid' and make sure it is a fractal index.
 */
static Relation
fr_open_fractal_index(Oid relid)
{
	Relation	index = relation_open(relid, AccessShareLock);

	if (!fr_is_fractal_index(index))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a fractal index",
						RelationGetRelationName(index))));
	if (RELATION_IS_OTHER_TEMP(index))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot access temporary indexes of other sessions")));
	/* this backend's batched inserts count */
	fr_pending_flush_index(index);
	return index;
}

/*
 * One pass over all pages, each read under a share lock.  The counts are a
 * snapshot per page, not of the whole index at one instant.
 */
static void
fr_count_pages(Relation index, FrPageCounts *c)
{
	BlockNumber blkno,
				nblocks = RelationGetNumberOfBlocks(index);

	memset(c, 0, sizeof(FrPageCounts));
	for (blkno = 0; blkno < nblocks; blkno++)
	{
		Buffer		buf = ReadBuffer(index, blkno);
		Page		page;
		FrPageOpaque opaque;
		uint16		level;

		CHECK_FOR_INTERRUPTS();
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (PageIsNew(page))
		{
			c->free++;
			UnlockReleaseBuffer(buf);
			continue;
		}
		fr_check_page(index, page, blkno);
		opaque = FrPageGetOpaque(page);
		level = Min(opaque->level, FR_STATS_MAX_LEVEL);
		if (opaque->flags & FR_META)
		{
			c->meta++;
			c->height = FrPageGetMeta(page)->height;
		}
		else if (FrPageIsFree(page))
			c->free++;
		else if (FrPageIsLeafFilters(page))
		{
			/* at the level of the nodes whose leaves they summarise (1) */
			c->filter++;
			c->level_filters[level]++;
		}
		else if (FrPageIsNode(page))
		{
			c->node++;
			c->level_nodes[level]++;
		}
		else if (FrPageIsChain(page))
		{
			c->chain++;
			c->messages += PageGetMaxOffsetNumber(page);
			c->level_chain[level]++;
			c->level_msgs[level] += PageGetMaxOffsetNumber(page);
		}
		else if (FrPageIsLeaf(page))
		{
			c->leaf++;
			c->level_nodes[0]++;
			c->leaf_fill_sum += 1.0 - (double) PageGetExactFreeSpace(page) / FrPageUsable;
			if (FrPageIsCompressed(page))
			{
				FrLeafView view;

				/* decompressing also validates the page */
				fr_leaf_view(index, page, blkno, &view);
				c->entries += view.n;
				c->zleaf++;
				c->zraw += view.rawsize + view.n * sizeof(ItemIdData);
				c->zstored += view.csize + sizeof(FrZHeader);
				fr_leaf_view_release(&view);
			}
			else
			{
				c->entries += PageGetMaxOffsetNumber(page);
				c->plain_bytes += FrPageUsable - PageGetExactFreeSpace(page);
			}
		}
		UnlockReleaseBuffer(buf);
	}
}

/*
 * Does the installed SQL declaration of a stats function have 'natts'
 * result columns of which the last is filter_pages (extension 1.2), or one
 * fewer (1.0, 1.1)?  Anything else is an error rather than a misread row.
 */
static bool
fr_stats_declared(int natts, int columns)
{
	if (natts != columns && natts != columns - 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the declaration of this fractal statistics function does not match the library"),
				 errhint("Run ALTER EXTENSION fractal UPDATE.")));
	return natts == columns;
}

PG_FUNCTION_INFO_V1(fractal_stats);

Datum
fractal_stats(PG_FUNCTION_ARGS)
{
	Relation	index = fr_open_fractal_index(PG_GETARG_OID(0));
	FrPageCounts c;
	TupleDesc	tupdesc;
	Datum		values[FR_STATS_COLUMNS];
	bool		nulls[FR_STATS_COLUMNS] = {0};
	bool		with_filters;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	with_filters = fr_stats_declared(tupdesc->natts, FR_STATS_COLUMNS);
	fr_count_pages(index, &c);
	relation_close(index, AccessShareLock);

	values[0] = Int32GetDatum((int32) c.height);
	values[1] = Int64GetDatum(c.meta);
	values[2] = Int64GetDatum(with_filters ? c.node : c.node + c.filter);
	values[3] = Int64GetDatum(c.chain);
	values[4] = Int64GetDatum(c.leaf);
	values[5] = Int64GetDatum(c.free);
	values[6] = Int64GetDatum(c.messages);
	values[7] = Int64GetDatum(c.entries);
	values[8] = Float8GetDatum(c.leaf > 0 ? c.leaf_fill_sum / c.leaf : 0.0);
	/* entries' bytes as plain leaves would hold them, and as stored */
	values[9] = Int64GetDatum(c.zleaf);
	values[10] = Int64GetDatum(c.zraw + c.plain_bytes);
	values[11] = Int64GetDatum(c.zstored + c.plain_bytes);
	values[12] = Float8GetDatum((c.zstored + c.plain_bytes) > 0 ?
								(double) (c.zraw + c.plain_bytes) / (c.zstored + c.plain_bytes) : 1.0);
	values[13] = Int64GetDatum(c.filter);	/* formed only when declared */
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(fractal_level_stats);

Datum
fractal_level_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	index = fr_open_fractal_index(PG_GETARG_OID(0));
	FrPageCounts c;
	int			level;
	bool		with_filters;

	InitMaterializedSRF(fcinfo, 0);
	with_filters = fr_stats_declared(rsinfo->setDesc->natts,
									 FR_LEVEL_STATS_COLUMNS);
	fr_count_pages(index, &c);
	relation_close(index, AccessShareLock);

	for (level = 0; level <= (int) Min(c.height, FR_STATS_MAX_LEVEL); level++)
	{
		Datum		values[FR_LEVEL_STATS_COLUMNS];
		bool		nulls[FR_LEVEL_STATS_COLUMNS] = {0};

		values[0] = Int32GetDatum(level);
		values[1] = Int64GetDatum(with_filters ? c.level_nodes[level] :
								  c.level_nodes[level] + c.level_filters[level]);
		values[2] = Int64GetDatum(c.level_chain[level]);
		values[3] = Int64GetDatum(c.level_msgs[level]);
		values[4] = Int64GetDatum(c.level_filters[level]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
