/*-------------------------------------------------------------------------
 *
 * fr_unique.c
 *	  Uniqueness checks of UNIQUE fractal indexes (aminsert's checkUnique).
 *
 * An insert no longer reaches the leaf where an equal key would sit, so
 * nbtree's interlock (the leaf's exclusive lock held across check and
 * insert) is not available.  Instead the check and the insert of a key run
 * under a heavyweight "key lock" on (index, hash of the key), held for
 * that step only: two backends inserting equal keys serialise on it, and
 * the second one's check, a point lookup started after the first one's
 * entry was appended, finds that entry wherever it has moved since (the
 * scan argument, src/README.md section 7).  Each entry found is checked
 * against the heap with a dirty snapshot, as nbtree's _bt_check_unique
 * does: a live committed row is a violation, an in-progress inserter or
 * deleter is waited for with the key lock released, then the check starts
 * over.  The hash is the key columns' default hash functions, so keys the
 * operator class calls equal (1.0 and 1.00, -0 and 0, case variants under
 * a nondeterministic collation) always take the same lock.  src/README.md
 * section 4b has the argument.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "fractal.h"

/* locktag_field4 of key locks: user advisory locks use 1 and 2 */
#define FR_KEY_LOCK_KIND		0x4655	/* "FU" */

/* what a uniqueness check found */
typedef enum FrUniqueResult
{
	FR_UNIQUE_OK,				/* no other live entry with this key */
	FR_UNIQUE_WAIT,				/* one whose transaction is in progress */
	FR_UNIQUE_VIOLATION			/* one of a live, committed row */
} FrUniqueResult;

/*
 * Per-statement lookup state (in the insert cache): the '=' function of
 * each key column for the check's scan keys, and its hash function for
 * the key lock (InvalidOid: the type has none, the column adds nothing).
 */
void
fr_unique_init(FrUnique *u, Relation index)
{
	int			nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	int			i;

	for (i = 0; i < nkeys; i++)
	{
		Oid			type = index->rd_opcintype[i];
		Oid			eqop = get_opfamily_member(index->rd_opfamily[i], type, type,
											   BTEqualStrategyNumber);
		TypeCacheEntry *tc = lookup_type_cache(TupleDescAttr(RelationGetDescr(index), i)->atttypid,
											   TYPECACHE_HASH_PROC_FINFO);

		if (!OidIsValid(eqop))
			elog(ERROR, "missing operator %d(%u,%u) in opfamily %u",
				 BTEqualStrategyNumber, type, type, index->rd_opfamily[i]);
		u->eqproc[i] = get_opcode(eqop);
		u->has_hash[i] = OidIsValid(tc->hash_proc);
		if (u->has_hash[i])
			fmgr_info_copy(&u->hash[i], &tc->hash_proc_finfo, CurrentMemoryContext);
	}
	u->ready = true;
}

/* the 32-bit hash of the key of 'itup' that names its key lock */
static uint32
fr_key_hash(FrUnique *u, FrState *state, IndexTuple itup)
{
	uint32		h = 0;
	int			i;

	for (i = 0; i < state->nkeys; i++)
	{
		bool		isnull;
		Datum		v = index_getattr(itup, i + 1, state->tupdesc, &isnull);
		uint32		hv = 0;

		if (!isnull && u->has_hash[i])
			hv = DatumGetUInt32(FunctionCall1Coll(&u->hash[i], state->collation[i], v));
		h = hash_combine(h, isnull ? 0x9e3779b9 : hv);
	}
	return h;
}

/* the key change count slot of key hash 'h' in 'index' (fr_key_changes) */
static uint32
fr_key_slot(Relation index, uint32 h)
{
	return hash_combine(hash_combine(h, RelationGetRelid(index)), MyDatabaseId);
}

/* ------------------------------------------------------------------------
 * Pre-checks: a key a dirty-snapshot scan just found absent
 *
 * INSERT ... ON CONFLICT looks the key up first (the executor's pre-check,
 * a dirty-snapshot index scan), then inserts with a check of its own.  When
 * the scan found no entry at all, the second check can only find one that
 * was inserted since.  Every insert into a UNIQUE fractal index bumps a
 * shared change count for its key's slot after its entry is in place and
 * before it releases the key lock, so: if the count, read before the scan
 * started, is unchanged when the insert holds the key lock, no entry for
 * the key exists and the check is skipped.  Only with the library preloaded
 * (the counts live in shared memory).  src/README.md section 4b.
 * ------------------------------------------------------------------------
 */
#define FR_PRECHECKS			4

typedef struct FrPrecheck
{
	Oid			indexoid;		/* InvalidOid: slot free */
	LocalTransactionId lxid;	/* the transaction that ran the scan */
	uint64		id;				/* which scan recorded it */
	uint32		hash;			/* fr_key_hash of the key */
	uint64		changes;		/* its slot's change count before the scan */
	bool		passed;			/* the scan ended without finding an entry */
	IndexTuple	key;			/* the key (TopMemoryContext) */
} FrPrecheck;

static FrPrecheck fr_prechecks[FR_PRECHECKS];
static uint64 fr_precheck_ids = 0;
static int	fr_precheck_next = 0;

/*
 * Can a key value be copied into a recorded key without surprises?  Not a
 * cstring, a toasted value, or a varlena larger than an entry may be (such
 * a key is refused by the insert with its own error; the pre-check just
 * records nothing).
 */
static bool
fr_precheck_value_fits(Form_pg_attribute att, Datum v)
{
	if (att->attlen == -2)
		return false;
	if (att->attlen == -1)
		return !VARATT_IS_EXTERNAL(DatumGetPointer(v)) &&
			VARSIZE_ANY(DatumGetPointer(v)) <= FR_MAX_ITEM_SIZE;
	return true;
}

/*
 * Do the scan keys ask for one whole key of 'index' by '=' with the
 * index's own types and collations?  Fills values[] with it.
 */
static bool
fr_precheck_keys(IndexScanDesc scan, int nkeys, Datum *values)
{
	Relation	index = scan->indexRelation;
	bool		seen[INDEX_MAX_KEYS] = {0};
	int			i;

	if (scan->numberOfKeys != nkeys)
		return false;
	for (i = 0; i < nkeys; i++)
	{
		ScanKey		k = &scan->keyData[i];
		int			col = k->sk_attno - 1;

		if (col < 0 || col >= nkeys || seen[col] || k->sk_flags != 0 ||
			k->sk_strategy != BTEqualStrategyNumber ||
			(OidIsValid(k->sk_subtype) && k->sk_subtype != index->rd_opcintype[col]) ||
			k->sk_collation != index->rd_indcollation[col] ||
			!fr_precheck_value_fits(TupleDescAttr(RelationGetDescr(index), col),
									k->sk_argument))
			return false;
		seen[col] = true;
		values[col] = k->sk_argument;
	}
	return true;
}

/*
 * Called when a scan of 'index' starts, before it reads any page: if it is
 * a dirty-snapshot lookup of one whole key of a UNIQUE index, record the
 * key and its slot's change count.  Returns the record's slot (with *id
 * naming this scan), or -1.
 */
int
fr_unique_precheck_start(IndexScanDesc scan, FrState *state, uint64 *id)
{
	Relation	index = scan->indexRelation;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	FrUnique	u;
	FrPrecheck *p;
	IndexTuple	key;
	uint64		changes;
	uint32		h;
	int			i,
				slot;

	/* 1. the executor's pre-check: '=' on every key column, dirty snapshot */
	if (!index->rd_index->indisunique || scan->xs_snapshot == NULL ||
		scan->xs_snapshot->snapshot_type != SNAPSHOT_DIRTY ||
		!fr_precheck_keys(scan, state->nkeys, values))
		return -1;

	/* 2. the key as an entry (INCLUDE columns NULL), its hash and count */
	for (i = 0; i < RelationGetDescr(index)->natts; i++)
		isnull[i] = i >= state->nkeys;
	key = index_form_tuple_context(RelationGetDescr(index), values, isnull,
								   TopMemoryContext);
	fr_unique_init(&u, index);
	h = fr_key_hash(&u, state, key);
	if (!fr_key_changes(fr_key_slot(index, h), &changes))
	{
		pfree(key);
		return -1;				/* not preloaded: no counts */
	}

	/* 3. record it, in this index's slot or the next one */
	for (slot = 0; slot < FR_PRECHECKS; slot++)
		if (fr_prechecks[slot].indexoid == RelationGetRelid(index))
			break;
	if (slot == FR_PRECHECKS)
		slot = fr_precheck_next++ % FR_PRECHECKS;
	p = &fr_prechecks[slot];
	if (p->key)
		pfree(p->key);
	p->indexoid = RelationGetRelid(index);
	p->lxid = MyProc->lxid;
	p->id = *id = ++fr_precheck_ids;
	p->hash = h;
	p->changes = changes;
	p->passed = false;
	p->key = key;
	return slot;
}

/*
 * The scan that recorded pre-check 'slot' as 'id' returned an entry
 * (found) or ended without one.
 */
void
fr_unique_precheck_end(int slot, uint64 id, bool found)
{
	FrPrecheck *p = &fr_prechecks[slot];

	if (p->id != id)
		return;					/* since replaced by another scan */
	if (found)
		p->indexoid = InvalidOid;
	else
		p->passed = true;
}

/*
 * Under the key lock of hash 'h': did a pre-check of this transaction find
 * no entry for the key of 'itup', with no insert of a key of its slot
 * since?  Then no entry for the key exists.  The record is used once.
 */
static bool
fr_unique_precheck_passed(FrState *state, uint32 h, IndexTuple itup)
{
	Relation	index = state->index;
	int			slot;

	for (slot = 0; slot < FR_PRECHECKS; slot++)
	{
		FrPrecheck *p = &fr_prechecks[slot];
		uint64		now;
		bool		same;

		if (p->indexoid != RelationGetRelid(index) || !p->passed ||
			p->lxid != MyProc->lxid || p->hash != h ||
			fr_compare_keys(state, p->key, itup) != 0)
			continue;
		same = fr_key_changes(fr_key_slot(index, h), &now) && now == p->changes;
		p->indexoid = InvalidOid;
		return same;
	}
	return false;
}

/* the key lock's tag for key hash 'h' */
static void
fr_key_locktag(FrState *state, uint32 h, LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, RelationGetRelid(state->index), h,
						 FR_KEY_LOCK_KIND);
}

/*
 * Does this key take part in uniqueness?  Not when a key column is NULL,
 * unless the index says NULLS NOT DISTINCT.
 */
bool
fr_unique_applies(FrState *state, IndexTuple itup)
{
	int			i;

	if (state->index->rd_index->indnullsnotdistinct)
		return true;
	for (i = 0; i < state->nkeys; i++)
	{
		bool		isnull;

		(void) index_getattr(itup, i + 1, state->tupdesc, &isnull);
		if (isnull)
			return false;
	}
	return true;
}

/*
 * The heap TIDs of every entry whose key equals that of 'itup' (a point
 * lookup through the ordinary scan: '=' or IS NULL on every key column).
 * Returns a palloc'd array.
 */
static ItemPointerData *
fr_unique_candidates(FrUnique *u, FrState *state, Relation heap,
					 IndexTuple itup, int *n)
{
	ScanKeyData keys[INDEX_MAX_KEYS];
	IndexScanDesc scan;
	ItemPointerData *tids;
	int			cap = 8;
	int			i;

	for (i = 0; i < state->nkeys; i++)
	{
		bool		isnull;
		Datum		v = index_getattr(itup, i + 1, state->tupdesc, &isnull);

		ScanKeyEntryInitialize(&keys[i], isnull ? (SK_ISNULL | SK_SEARCHNULL) : 0,
							   i + 1, isnull ? InvalidStrategy : BTEqualStrategyNumber,
							   InvalidOid, state->collation[i],
							   isnull ? InvalidOid : u->eqproc[i], v);
	}
	scan = frbeginscan(state->index, state->nkeys, 0);
	scan->heapRelation = heap;
	fr_scan_set_internal(scan);
	frrescan(scan, keys, state->nkeys, NULL, 0);
	tids = palloc(sizeof(ItemPointerData) * cap);
	*n = 0;
	while (frgettuple(scan, ForwardScanDirection))
	{
		if (*n >= cap)
		{
			cap *= 2;
			tids = repalloc(tids, sizeof(ItemPointerData) * cap);
		}
		tids[(*n)++] = scan->xs_heaptid;
	}
	frendscan(scan);
	IndexScanEnd(scan);
	return tids;
}

/*
 * Check the heap tuples of the entries equal to 'itup' (other than the one
 * at 'self' when it is valid) with a dirty snapshot.  On FR_UNIQUE_WAIT,
 * *xwait / *spec_token say what to wait for and *conflict where.
 */
static FrUniqueResult
fr_unique_scan(FrUnique *u, FrState *state, Relation heap, IndexTuple itup,
			   ItemPointer self, TransactionId *xwait, uint32 *spec_token,
			   ItemPointer conflict)
{
	ItemPointerData *tids;
	int			n,
				i;

	tids = fr_unique_candidates(u, state, heap, itup, &n);
	for (i = 0; i < n; i++)
	{
		SnapshotData dirty;
		bool		all_dead = false;
		ItemPointerData tid = tids[i];

		if (self != NULL && ItemPointerEquals(&tid, self))
			continue;
		InitDirtySnapshot(dirty);
		if (!table_index_fetch_tuple_check(heap, &tid, &dirty, &all_dead))
			continue;			/* dead, or never committed */
		*conflict = tid;
		*xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
		*spec_token = dirty.speculativeToken;
		pfree(tids);
		return TransactionIdIsValid(*xwait) ? FR_UNIQUE_WAIT : FR_UNIQUE_VIOLATION;
	}
	pfree(tids);
	return FR_UNIQUE_OK;
}

/*
 * The unique_violation error for the key of 'itup', as nbtree words it: on
 * insert, or (building) when CREATE UNIQUE INDEX finds it twice.
 */
void
fr_unique_report(FrState *state, Relation heap, IndexTuple itup, bool building)
{
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	char	   *key_desc;
	const char *name = RelationGetRelationName(state->index);

	index_deform_tuple(itup, state->tupdesc, values, isnull);
	key_desc = BuildIndexValueDescription(state->index, values, isnull);
	if (building)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("could not create unique index \"%s\"", name),
				 key_desc ? errdetail("Key %s is duplicated.", key_desc) :
				 errdetail("Duplicate keys exist."),
				 errtableconstraint(heap, name)));
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("duplicate key value violates unique constraint \"%s\"", name),
			 key_desc ? errdetail("Key %s already exists.", key_desc) : 0,
			 errtableconstraint(heap, name)));
}

/*
 * Check the key of 'itup' and, unless mode is UNIQUE_CHECK_EXISTING,
 * insert it, all under the key lock.  Returns false when mode is
 * UNIQUE_CHECK_PARTIAL and a conflict is possible (the entry is inserted
 * all the same; the executor rechecks or retries), true otherwise.
 * UNIQUE_CHECK_YES and _EXISTING raise unique_violation on a conflict,
 * after waiting for any in-progress transaction that decides it.
 */
bool
fr_unique_insert(FrUnique *u, FrState *state, Relation heap, IndexTuple itup,
				 IndexUniqueCheck mode)
{
	LOCKTAG		tag;
	ItemPointer self = (mode == UNIQUE_CHECK_EXISTING) ? &itup->t_tid : NULL;
	bool		unique = true;
	bool		first = true;
	uint32		h = fr_key_hash(u, state, itup);

	fr_key_locktag(state, h, &tag);
	for (;;)
	{
		TransactionId xwait = InvalidTransactionId;
		uint32		spec_token = 0;
		ItemPointerData conflict;
		FrUniqueResult r;

		/*
		 * 1. check under the key lock (on ERROR, abort releases it): not at
		 * all for UNIQUE_CHECK_NO, and not when a pre-check just proved the
		 * key absent
		 */
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		if (mode == UNIQUE_CHECK_NO)
			r = FR_UNIQUE_OK;
		else if (first && mode != UNIQUE_CHECK_EXISTING &&
				 fr_unique_precheck_passed(state, h, itup))
		{
			fr_count(FR_CTR_UNIQUE_SKIPPED, 1);
			r = FR_UNIQUE_OK;
		}
		else
		{
			fr_count(FR_CTR_UNIQUE_CHECKS, 1);
			r = fr_unique_scan(u, state, heap, itup, self, &xwait, &spec_token,
							   &conflict);
		}
		first = false;
		if (r != FR_UNIQUE_OK && mode == UNIQUE_CHECK_PARTIAL)
		{
			unique = false;		/* possible conflict: insert anyway */
			break;
		}
		if (r == FR_UNIQUE_VIOLATION)
			fr_unique_report(state, heap, itup, false);
		if (r == FR_UNIQUE_OK)
			break;

		/* 2. an in-progress transaction decides: wait, unlocked, retry */
		LockRelease(&tag, ExclusiveLock, false);
		if (spec_token != 0)
			SpeculativeInsertionWait(xwait, spec_token);
		else
			XactLockTableWait(xwait, heap, &conflict, XLTW_InsertIndex);
	}

	/*
	 * 3. the insert, still under the key lock, then the key's change count
	 * (after the entry is in place, before the lock is released)
	 */
	if (mode != UNIQUE_CHECK_EXISTING)
	{
		fr_insert_tuple(state, itup);
		fr_key_changed(fr_key_slot(state->index, h));
	}
	LockRelease(&tag, ExclusiveLock, false);
	return unique;
}
