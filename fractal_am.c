/*-------------------------------------------------------------------------
 *
 * fractal_am.c
 *	  Entry point of the fractal index access method: module magic, library
 *	  initialisation and the IndexAmRoutine handler.  Each callback lives in
 *	  the src/ file of its concern; see src/README.md for the design.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/amapi.h"
#include "commands/vacuum.h"
#include "fmgr.h"

#include "fractal.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	fr_init_reloptions();
	fr_init_gucs();
	fr_xlog_register();
	fr_counters_register();
	fr_onconflict_register();
	fr_pending_register();
}

PG_FUNCTION_INFO_V1(fractal_handler);

Datum
fractal_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = FR_NSTRATEGIES;
	amroutine->amsupport = FR_NPROCS;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = true;
	amroutine->amcanorderbyop = false;
	amroutine->amcanbackward = true;
	amroutine->amcanunique = true;
	amroutine->amcanmulticol = true;
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = true;
	amroutine->amsearchnulls = true;
	amroutine->amstorage = false;
	amroutine->amclusterable = true;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = true;
	amroutine->amusemaintenanceworkmem = false;
	amroutine->amparallelvacuumoptions =
		VACUUM_OPTION_PARALLEL_BULKDEL | VACUUM_OPTION_PARALLEL_COND_CLEANUP;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = frbuild;
	amroutine->ambuildempty = frbuildempty;
	amroutine->aminsert = frinsert;
	amroutine->ambulkdelete = frbulkdelete;
	amroutine->amvacuumcleanup = frvacuumcleanup;
	amroutine->amcanreturn = frcanreturn;
	amroutine->amcostestimate = frcostestimate;
	amroutine->amoptions = froptions;
	amroutine->amproperty = NULL;
	amroutine->ambuildphasename = frbuildphasename;
	amroutine->amvalidate = frvalidate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = frbeginscan;
	amroutine->amrescan = frrescan;
	amroutine->amgettuple = frgettuple;
	amroutine->amgetbitmap = frgetbitmap;
	amroutine->amendscan = frendscan;
	amroutine->ammarkpos = frmarkpos;
	amroutine->amrestrpos = frrestrpos;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}
