/*-------------------------------------------------------------------------
 *
 * fr_pending.c
 *	  Batched inserts: the messages a transaction inserts into a plain
 *	  (non-unique) fractal index wait in backend memory and go into the
 *	  root's buffer chains together, sorted, in one logged append per chain
 *	  page, instead of one root visit and one WAL record per message.
 *
 * Why the index may lag behind the heap inside a transaction: until the
 * inserting transaction commits, its heap tuples are visible to no other
 * MVCC snapshot, so no other backend's scan can miss an entry it should
 * return.  The backend itself can, so every scan of an index by this
 * backend first appends that index's waiting messages (frrescan), as do
 * fractal_check and fractal_stats.  The rest of the argument, in
 * src/README.md section 4 ("Batched inserts"):
 *
 *	- waiting messages are appended before the transaction commits or
 *	  prepares (XACT_EVENT_PRE_COMMIT / PRE_PREPARE); an error there aborts
 *	  the transaction, whose heap tuples then need no entries;
 *	- they are dropped when their transaction or subtransaction aborts, and
 *	  never appended after: once the inserter has aborted, VACUUM may remove
 *	  the heap tuple and reuse its TID, and a late entry would then point
 *	  at another row;
 *	- for the same reason, indexes that other backends read with dirty
 *	  snapshots (UNIQUE indexes, exclusion constraints) and speculative
 *	  insertions (INSERT ... ON CONFLICT, whose heap tuple can be
 *	  "super-deleted" while the transaction goes on) are never batched;
 *	- every utility command but transaction control appends them first
 *	  (TRUNCATE, REINDEX, rewrites, SET TABLESPACE and DROP then start from
 *	  a complete index), and so does a query that may start parallel
 *	  workers (they see this transaction's rows, not this backend's
 *	  memory); an index found dropped or with another relfilenode at an
 *	  append was rebuilt by a path that bypasses utility commands
 *	  (logical replication's TRUNCATE), and its entries are dropped;
 *	- an append interrupted by an error leaves its messages waiting, and a
 *	  second append of one is harmless (a (key, TID) pair found twice is
 *	  one entry, section 2).
 *
 * Every bound: at most FR_PENDING_INDEXES indexes (more are not batched)
 * and FR_PENDING_BYTES of messages per index (reaching it appends them).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_index.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "fractal.h"

/* indexes with waiting messages at once, per backend */
#define FR_PENDING_INDEXES		8
/* bytes of waiting messages per index before they are appended */
#define FR_PENDING_BYTES		(32 * 1024)

/* the waiting messages of one index */
typedef struct FrPendingIndex
{
	Oid			indexoid;
	RelFileNode node;			/* the index's relfilenode when they came */
	int			n;
	int			cap;
	Size		bytes;
	IndexTuple *tups;			/* in order of insertion */
	SubTransactionId *subids;	/* the subtransaction that inserted each */
} FrPendingIndex;

static FrPendingIndex fr_pending[FR_PENDING_INDEXES];
static int	fr_npending = 0;	/* slots in use (some may hold n = 0) */
static MemoryContext fr_pending_cxt = NULL;
static bool fr_pending_appending = false;	/* an append is under way */
static bool fr_pending_committing = false;	/* past our pre-commit append */

static ProcessUtility_hook_type fr_prev_utility = NULL;
static ExecutorStart_hook_type fr_prev_executor_start = NULL;

static void fr_pending_forget(int s);

/* fractal.batch_inserts: see fr_init_gucs */
bool		fr_batch_inserts = true;

/*
 * Is the heap tuple at 'tid' a speculative insertion (INSERT ... ON
 * CONFLICT), which may be super-deleted before its transaction ends?
 */
static bool
fr_heap_tuple_is_speculative(Relation heap, ItemPointer tid)
{
	Buffer		buf = ReadBuffer(heap, ItemPointerGetBlockNumber(tid));
	Page		page;
	ItemId		lp;
	bool		spec = false;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (ItemPointerGetOffsetNumber(tid) <= PageGetMaxOffsetNumber(page))
	{
		lp = PageGetItemId(page, ItemPointerGetOffsetNumber(tid));
		if (ItemIdIsNormal(lp))
			spec = HeapTupleHeaderIsSpeculative((HeapTupleHeader) PageGetItem(page, lp));
	}
	UnlockReleaseBuffer(buf);
	return spec;
}

/*
 * Could an INSERT ... ON CONFLICT into 'heap' super-delete a tuple: has it
 * a UNIQUE index or an exclusion constraint (an arbiter)?  From the
 * catalog caches; asked once per statement.
 */
static bool
fr_heap_may_speculate(Relation heap)
{
	List	   *ids = RelationGetIndexList(heap);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, ids)
	{
		HeapTuple	ix = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(ix))
			continue;
		found |= ((Form_pg_index) GETSTRUCT(ix))->indisunique ||
			((Form_pg_index) GETSTRUCT(ix))->indisexclusion;
		ReleaseSysCache(ix);
	}
	list_free(ids);
	return found;
}

/*
 * May an insert of this entry into 'index' wait in backend memory?  Only
 * for plain indexes that no other backend reads with a dirty snapshot,
 * outside parallel mode, for a heap tuple that cannot be super-deleted.
 * *heap_may_speculate (looked up once per statement: *heap_checked is the
 * caller's per-statement flag) is false when the heap has no index that
 * could be an ON CONFLICT arbiter, which spares reading the heap tuple.
 */
bool
fr_pending_applies(Relation index, IndexUniqueCheck checkUnique,
				   Relation heap, ItemPointer tid, bool *heap_checked,
				   bool *heap_may_speculate)
{
	if (!fr_batch_inserts || checkUnique != UNIQUE_CHECK_NO ||
		index->rd_index->indisunique || index->rd_index->indisexclusion ||
		IsInParallelMode() || fr_pending_appending ||
		fr_pending_committing || heap == NULL ||
		heap->rd_rel->relam != HEAP_TABLE_AM_OID)
		return false;
	if (!*heap_checked)
	{
		*heap_may_speculate = fr_heap_may_speculate(heap);
		*heap_checked = true;
	}
	return !*heap_may_speculate || !fr_heap_tuple_is_speculative(heap, tid);
}

/* the slot of 'index', or a free one (-1 when all are taken) */
static int
fr_pending_slot(Relation index, bool create)
{
	int			i,
				free = -1;

	for (i = 0; i < fr_npending; i++)
	{
		if (fr_pending[i].indexoid == RelationGetRelid(index) &&
			RelFileNodeEquals(fr_pending[i].node, index->rd_node))
			return i;
		if (fr_pending[i].n == 0 && free < 0)
			free = i;
	}
	if (!create)
		return -1;
	if (free < 0 && fr_npending < FR_PENDING_INDEXES)
		free = fr_npending++;
	if (free >= 0)
	{
		FrPendingIndex *p = &fr_pending[free];

		p->indexoid = RelationGetRelid(index);
		p->node = index->rd_node;
		p->n = 0;
		p->bytes = 0;
	}
	return free;
}

/*
 * Keep a copy of 'itup' to be appended to 'index' later.  Returns false
 * when it cannot wait (every slot holds another index's messages): the
 * caller inserts it at once.
 */
bool
fr_pending_add(Relation index, IndexTuple itup)
{
	int			s = fr_pending_slot(index, true);
	FrPendingIndex *p;
	MemoryContext oldcxt;

	if (s < 0)
		return false;
	p = &fr_pending[s];
	if (fr_pending_cxt == NULL)
		fr_pending_cxt = AllocSetContextCreate(TopMemoryContext,
											   "fractal pending inserts",
											   ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(fr_pending_cxt);
	if (p->n == 0 && p->cap == 0)
	{
		p->cap = 64;
		p->tups = palloc(sizeof(IndexTuple) * p->cap);
		p->subids = palloc(sizeof(SubTransactionId) * p->cap);
	}
	else if (p->n == p->cap)
	{
		/* (cap grows only once both arrays have: an OOM error leaves it) */
		p->tups = repalloc(p->tups, sizeof(IndexTuple) * p->cap * 2);
		p->subids = repalloc(p->subids, sizeof(SubTransactionId) * p->cap * 2);
		p->cap *= 2;
	}
	p->tups[p->n] = CopyIndexTuple(itup);
	p->subids[p->n] = GetCurrentSubTransactionId();
	p->n++;
	p->bytes += IndexTupleSize(itup);
	MemoryContextSwitchTo(oldcxt);

	/* the bound: a full batch goes in now */
	if (p->bytes >= FR_PENDING_BYTES)
		fr_pending_flush_index(index);
	return true;
}

/*
 * Append the waiting messages of slot 's' to 'index' (whose relfilenode
 * is the slot's), sorted, then forget them.  On an error they stay.
 */
static void
fr_pending_append(Relation index, int s)
{
	FrPendingIndex *p = &fr_pending[s];
	MemoryContext cxt = AllocSetContextCreate(TopTransactionContext,
											  "fractal batch append",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	FrState    *state = palloc(sizeof(FrState));
	IndexTuple *tups = palloc(sizeof(IndexTuple) * p->n);

	/* sort a copy of the array: the slot keeps its order for aborts */
	memcpy(tups, p->tups, sizeof(IndexTuple) * p->n);
	fr_init_state(state, index);
	fr_filter_prepare(index);
	fr_sort_entries(state, tups, p->n);

	fr_pending_appending = true;
	PG_TRY();
	{
		fr_insert_batch(state, tups, p->n);
	}
	PG_FINALLY();
	{
		fr_pending_appending = false;
	}
	PG_END_TRY();

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	fr_count(FR_CTR_BATCH_APPENDS, 1);
	fr_count(FR_CTR_BATCHED_INSERTS, p->n);
	fr_pending_forget(s);
}

/* drop the waiting messages of slot 's' from the keep-th on */
static void
fr_pending_truncate(int s, int keep)
{
	FrPendingIndex *p = &fr_pending[s];

	while (p->n > keep)
	{
		p->n--;
		p->bytes -= IndexTupleSize(p->tups[p->n]);
		pfree(p->tups[p->n]);
	}
}

/* drop all the waiting messages of slot 's' */
static void
fr_pending_forget(int s)
{
	fr_pending_truncate(s, 0);
}

/*
 * Append the waiting messages of 'index', if any: before this backend
 * scans or checks it.
 */
void
fr_pending_flush_index(Relation index)
{
	int			s;

	if (fr_npending == 0 || fr_pending_appending)
		return;
	s = fr_pending_slot(index, false);
	if (s >= 0 && fr_pending[s].n > 0)
		fr_pending_append(index, s);
}

/*
 * Append every index's waiting messages (before commit or prepare).  An
 * index dropped or given a new relfilenode since gets none.
 */
static void
fr_pending_flush_all(void)
{
	int			s;

	for (s = 0; s < fr_npending; s++)
	{
		FrPendingIndex *p = &fr_pending[s];
		Relation	index;

		if (p->n == 0)
			continue;
		index = try_relation_open(p->indexoid, RowExclusiveLock);

		/*
		 * Utility commands append first, so a dropped index or a new file
		 * here comes from a path that bypasses them, and those rebuild
		 * (logical replication's apply of a TRUNCATE calls
		 * ExecuteTruncateGuts directly): the entries' rows are gone.
		 */
		if (index == NULL || !RelFileNodeEquals(index->rd_node, p->node))
			fr_pending_forget(s);
		else
			fr_pending_append(index, s);
		if (index != NULL)
			relation_close(index, NoLock);
	}
}

/* forget everything at the end of the transaction */
static void
fr_pending_reset(void)
{
	if (fr_pending_cxt != NULL)
		MemoryContextReset(fr_pending_cxt);
	memset(fr_pending, 0, sizeof(fr_pending));
	fr_npending = 0;
	fr_pending_appending = false;
	fr_pending_committing = false;
}

/*
 * Transaction callback: append before commit and prepare; forget after
 * abort (and after commit, when nothing is left).  An abort also restores
 * wal_compression, should an error have left the index's setting in it
 * (fr_image_compression_reset, fr_xlog.c).
 */
static void
fr_pending_xact_callback(XactEvent event, void *arg)
{
	int			s,
				left = 0;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			fr_pending_flush_all();
			/* inserts by later pre-commit callbacks are not batched */
			fr_pending_committing = true;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			for (s = 0; s < fr_npending; s++)
				left += fr_pending[s].n;
			if (left > 0)
				elog(WARNING, "%d batched fractal index entries were not appended before commit",
					 left);
			fr_pending_reset();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			fr_image_compression_reset();
			fr_pending_reset();
			break;
		case XACT_EVENT_PARALLEL_COMMIT:
			fr_pending_reset();
			break;
		default:
			break;
	}
}

/*
 * Subtransaction callback: when subtransaction 'mySubid' aborts, drop the
 * messages it and its children inserted.  They are the last ones of each
 * index (its parent inserts nothing while it runs), and a child has a
 * larger id than its parent.  And restore wal_compression, as at abort.
 */
static void
fr_pending_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	int			s;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	fr_image_compression_reset();
	for (s = 0; s < fr_npending; s++)
	{
		FrPendingIndex *p = &fr_pending[s];
		int			keep = p->n;

		while (keep > 0 && p->subids[keep - 1] >= mySubid)
			keep--;
		fr_pending_truncate(s, keep);
	}
}

/*
 * Before any utility command but transaction control: append everything.
 * A command may give an index a new file (TRUNCATE, REINDEX, a rewrite,
 * SET TABLESPACE, which copies the old one), empty it in place (TRUNCATE
 * of a table created in this transaction), or drop it; entries that waited
 * must be in the file the command starts from, so that a rebuild replaces
 * them with the heap's rows, a copy keeps them, and a ROLLBACK TO that
 * restores the old file finds them there.
 */
static void
fr_pending_utility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	if (fr_npending > 0 && !IsA(pstmt->utilityStmt, TransactionStmt) &&
		IsTransactionState())
		fr_pending_flush_all();
	if (fr_prev_utility)
		fr_prev_utility(pstmt, queryString, readOnlyTree, context, params,
						queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * Before a query that may run parallel workers: append everything.  The
 * workers see this transaction's rows but not this backend's memory.
 */
static void
fr_pending_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (fr_npending > 0 && queryDesc->plannedstmt->parallelModeNeeded &&
		!IsInParallelMode())
		fr_pending_flush_all();
	if (fr_prev_executor_start)
		fr_prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* Register the callbacks and hooks; called once from _PG_init. */
void
fr_pending_register(void)
{
	RegisterXactCallback(fr_pending_xact_callback, NULL);
	RegisterSubXactCallback(fr_pending_subxact_callback, NULL);
	fr_prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = fr_pending_utility;
	fr_prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = fr_pending_executor_start;
}
