/*-------------------------------------------------------------------------
 *
 * fr_onconflict.c
 *	  INSERT ... ON CONFLICT with UNIQUE fractal indexes on PostgreSQL 15.
 *
 * PostgreSQL 15 opens a table's indexes for an INSERT ... ON CONFLICT with
 * ExecOpenIndices(..., speculative = true), which calls
 * BuildSpeculativeIndexInfo for every unique index of the table, and that
 * function refuses any index that is not a btree ("unexpected non-btree
 * speculative unique index"): with a unique fractal index, every ON
 * CONFLICT into the table would fail, whatever its arbiter.  The
 * information it builds (the '=' operator, its function and strategy of
 * each key column) is what the executor's pre-check needs from any
 * ordered index, and a fractal index provides it exactly as a btree does.
 *
 * So an ExecutorStart hook opens the indexes of each ON CONFLICT target
 * itself, right after the executor has been set up and before the first
 * row, the way ExecOpenIndices does (ExecInsert then finds them open and
 * skips its own call): btree and other indexes get BuildSpeculativeIndexInfo
 * as before, unique fractal indexes the same information from
 * fr_speculative_info.  Limits, stated in README.md: the library must be
 * loaded when the statement starts (it is once the index has been used in
 * the session, once the statement names a conflict target, or when it is
 * preloaded), and partitions opened by tuple routing are opened by the
 * executor itself, so ON CONFLICT into a partitioned table whose partitions
 * have unique fractal indexes still fails as in core.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/stratnum.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "fractal.h"

static ExecutorStart_hook_type fr_prev_executor_start = NULL;

/*
 * What BuildSpeculativeIndexInfo fills in, for a unique fractal index: the
 * '=' member of each key column's operator family (btree numbering).
 */
static void
fr_speculative_info(Relation index, IndexInfo *ii)
{
	int			nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	int			i;

	ii->ii_UniqueOps = palloc(sizeof(Oid) * nkeys);
	ii->ii_UniqueProcs = palloc(sizeof(Oid) * nkeys);
	ii->ii_UniqueStrats = palloc(sizeof(uint16) * nkeys);
	for (i = 0; i < nkeys; i++)
	{
		ii->ii_UniqueStrats[i] = BTEqualStrategyNumber;
		ii->ii_UniqueOps[i] = get_opfamily_member(index->rd_opfamily[i],
												  index->rd_opcintype[i],
												  index->rd_opcintype[i],
												  BTEqualStrategyNumber);
		if (!OidIsValid(ii->ii_UniqueOps[i]))
			elog(ERROR, "missing operator %d(%u,%u) in opfamily %u",
				 BTEqualStrategyNumber, index->rd_opcintype[i],
				 index->rd_opcintype[i], index->rd_opfamily[i]);
		ii->ii_UniqueProcs[i] = get_opcode(ii->ii_UniqueOps[i]);
	}
}

/*
 * Does 'rel' have a unique fractal index?  From the catalog caches, without
 * opening the indexes.
 */
static bool
fr_has_fractal_unique(Relation rel)
{
	Oid			am = get_am_oid("fractal", true);
	List	   *ids = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, ids)
	{
		HeapTuple	ix = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		HeapTuple	cl;

		if (!HeapTupleIsValid(ix))
			continue;
		if (((Form_pg_index) GETSTRUCT(ix))->indisunique)
		{
			cl = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));
			if (HeapTupleIsValid(cl))
			{
				found |= ((Form_pg_class) GETSTRUCT(cl))->relam == am;
				ReleaseSysCache(cl);
			}
		}
		ReleaseSysCache(ix);
	}
	list_free(ids);
	return found && OidIsValid(am);
}

/*
 * Open the indexes of ON CONFLICT target 'rri' as ExecOpenIndices(rri,
 * true) would, with unique fractal indexes allowed.
 */
static void
fr_open_target_indexes(ResultRelInfo *rri)
{
	int			i;

	ExecOpenIndices(rri, false);
	for (i = 0; i < rri->ri_NumIndices; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];
		IndexInfo  *ii = rri->ri_IndexRelationInfo[i];

		if (!ii->ii_Unique)
			continue;
		if (fr_is_fractal_index(index))
			fr_speculative_info(index, ii);
		else
			BuildSpeculativeIndexInfo(index, ii);
	}
}

/* planstate_tree_walker callback: the ON CONFLICT inserts of a plan */
static bool
fr_find_onconflict(PlanState *ps, void *context)
{
	if (ps == NULL)
		return false;
	if (IsA(ps, ModifyTableState))
	{
		ModifyTableState *mt = (ModifyTableState *) ps;
		ModifyTable *node = (ModifyTable *) ps->plan;
		int			i;

		for (i = 0; node->onConflictAction != ONCONFLICT_NONE && i < mt->mt_nrels; i++)
		{
			ResultRelInfo *rri = &mt->resultRelInfo[i];
			Relation	rel = rri->ri_RelationDesc;

			if (rel->rd_rel->relhasindex &&
				rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE &&
				rri->ri_IndexRelationDescs == NULL &&
				fr_has_fractal_unique(rel))
				fr_open_target_indexes(rri);
		}
	}
	return planstate_tree_walker(ps, fr_find_onconflict, context);
}

static void
fr_executor_start(QueryDesc *queryDesc, int eflags)
{
	ListCell   *lc;
	MemoryContext oldcxt;

	if (fr_prev_executor_start)
		fr_prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	/* only INSERTs (top level or in a WITH) can have ON CONFLICT */
	if (queryDesc->plannedstmt->commandType != CMD_INSERT &&
		!queryDesc->plannedstmt->hasModifyingCTE)
		return;
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	oldcxt = MemoryContextSwitchTo(queryDesc->estate->es_query_cxt);
	(void) fr_find_onconflict(queryDesc->planstate, NULL);
	foreach(lc, queryDesc->estate->es_subplanstates)
		(void) fr_find_onconflict((PlanState *) lfirst(lc), NULL);
	MemoryContextSwitchTo(oldcxt);
}

void
fr_onconflict_register(void)
{
	fr_prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = fr_executor_start;
}
