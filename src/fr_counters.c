/*-------------------------------------------------------------------------
 *
 * fr_counters.c
 *	  Cluster-wide activity counters of the fractal indexes (flushes, leaf
 *	  writes, messages moved, uniqueness checks), kept in shared memory
 *	  when the library is preloaded, and the SQL functions
 *	  fractal_counters() and fractal_counters_reset().
 *
 * Flush counters are bumped once per flush step, never per inserted row, so
 * the shared cache line is touched about once per leaf or chain write; the
 * two uniqueness counters once per insert into a UNIQUE index, which takes
 * a heavyweight key lock anyway.  They live only in shared memory: a
 * restart zeroes them, and a server that did not preload the library has
 * none (the SQL functions then raise an error).
 *
 * The same shared memory holds the key change counts of fr_unique.c:
 * FR_KEY_SLOTS counters, one of which every insert into a UNIQUE fractal
 * index bumps (the slot its key hashes to) before releasing its key lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/instrument.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"

#include "fractal.h"

/* names as fractal_counters() shows them, in FrCounter order */
static const char *const fr_counter_names[] = {
	"flushes",
	"flushed_messages",
	"chain_messages",
	"leaf_messages",
	"leaf_writes",
	"flush_blocks_read",
	"unique_checks",
	"unique_checks_skipped",
	"leaf_filter_probes",
	"leaf_filter_skips",
	"leaf_filter_chain_skips",
	"flush_prefetches",
	"flush_warm_reads",
	"node_blocks_read",
	"chain_blocks_read",
	"filter_blocks_read",
	"leaf_blocks_read",
	"leaf_filter_bypasses",
	"scan_leaf_prefetches",
	"batch_appends",
	"batched_inserts",
	"rightmost_inserts",
	"compressed_blocks_read",
	"compressed_blocks_skipped",
	"root_shared_flushes",
	"rightmost_spills",
	"compressed_blocks_kept",
	"heap_prefetches",
};

StaticAssertDecl(lengthof(fr_counter_names) == FR_NCOUNTERS,
				 "every counter has a name");

/* key change count slots (a power of two) */
#define FR_KEY_SLOTS			16384

/*
 * The counters in shared memory, then the key change counts; NULL when the
 * library was not preloaded.
 */
static pg_atomic_uint64 *fr_counters = NULL;

#define FR_SHMEM_SIZE	(sizeof(pg_atomic_uint64) * (FR_NCOUNTERS + FR_KEY_SLOTS))

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
fr_counters_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(FR_SHMEM_SIZE);
}

static void
fr_counters_shmem_startup(void)
{
	bool		found;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	fr_counters = ShmemInitStruct("fractal counters", FR_SHMEM_SIZE, &found);
	if (!found)
		for (i = 0; i < FR_NCOUNTERS + FR_KEY_SLOTS; i++)
			pg_atomic_init_u64(&fr_counters[i], 0);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Ask for the counters' shared memory; called from _PG_init, effective only
 * while shared_preload_libraries are being processed.
 */
void
fr_counters_register(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = fr_counters_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = fr_counters_shmem_startup;
}

/* add n to counter c (nothing when the library was not preloaded) */
void
fr_count(FrCounter c, uint64 n)
{
	if (fr_counters != NULL && n > 0)
		pg_atomic_fetch_add_u64(&fr_counters[c], n);
}

/*
 * Count one block read from outside shared buffers by what the (checked)
 * page holds: node, buffer page, leaf filter page or leaf.  The metapage
 * and free pages are not counted.
 */
void
fr_count_page_read(Page page)
{
	if (FrPageIsNode(page))
		fr_count(FR_CTR_NODE_READS, 1);
	else if (FrPageIsChain(page))
		fr_count(FR_CTR_CHAIN_READS, 1);
	else if (FrPageIsLeafFilters(page))
		fr_count(FR_CTR_FILTER_READS, 1);
	else if (FrPageIsLeaf(page))
		fr_count(FR_CTR_LEAF_READS, 1);
}

/*
 * The change count of the key change slot that 'hash' selects, into *count.
 * Returns false when the library was not preloaded (there are none).  A
 * full barrier: the read happens before whatever the caller does next.
 */
bool
fr_key_changes(uint32 hash, uint64 *count)
{
	if (fr_counters == NULL)
		return false;
	*count = pg_atomic_fetch_add_u64(&fr_counters[FR_NCOUNTERS + (hash & (FR_KEY_SLOTS - 1))], 0);
	return true;
}

/*
 * Bump the change count of the slot that 'hash' selects (a full barrier:
 * what the caller did before is visible first).
 */
void
fr_key_changed(uint32 hash)
{
	if (fr_counters != NULL)
		pg_atomic_fetch_add_u64(&fr_counters[FR_NCOUNTERS + (hash & (FR_KEY_SLOTS - 1))], 1);
}

/* blocks this backend has read from outside shared buffers so far */
uint64
fr_blocks_read_so_far(void)
{
	return (uint64) (pgBufferUsage.shared_blks_read +
					 pgBufferUsage.local_blks_read);
}

/* the counters exist only in a server that preloaded the library */
static void
fr_counters_required(void)
{
	if (fr_counters == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("fractal counters are not available"),
				 errhint("Add \"fractal\" to shared_preload_libraries and restart the server.")));
}

PG_FUNCTION_INFO_V1(fractal_counters);

/*
 * fractal_counters() returns (name text, value bigint), one row per counter.
 */
Datum
fractal_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	fr_counters_required();
	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < FR_NCOUNTERS; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(fr_counter_names[i]);
		values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&fr_counters[i]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(fractal_counters_reset);

/* fractal_counters_reset() sets every counter to zero */
Datum
fractal_counters_reset(PG_FUNCTION_ARGS)
{
	int			i;

	fr_counters_required();
	for (i = 0; i < FR_NCOUNTERS; i++)
		pg_atomic_write_u64(&fr_counters[i], 0);
	PG_RETURN_VOID();
}
