/*-------------------------------------------------------------------------
 *
 * fr_validate.c
 *	  operator class validation for the fractal index AM
 *
 * The fractal AM orders keys exactly like btree: an operator family has the
 * five btree comparison strategies (<, <=, =, >=, >) and a single support
 * function, the btree-style three-way comparison function int4(left, right).
 * There are no ordering (ORDER BY) operators and no optional support
 * functions; in particular btree's sortsupport, in_range and equalimage
 * procedures are not accepted.
 *
 * This file implements the amvalidate callback, which is what the SQL-level
 * amvalidate(opclass) function (used by regression tests) ends up calling.
 * Problems are reported as INFO messages, so that one call reports all of
 * them, and the result is false if there was any.
 *
 * IDENTIFICATION
 *	  src/fr_validate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/amvalidate.h"
#include "access/htup_details.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "nodes/pathnodes.h"	/* PlannerInfo, IndexPath for fractal.h */
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "fractal.h"

/* name used in messages; the SQL-level name of the access method */
#define FR_AM_NAME	"fractal"

/* operator of each strategy number, for messages; index 0 is unused */
static const char *const fr_strategy_names[] = {
	NULL, "<", "<=", "=", ">=", ">"
};

StaticAssertDecl(lengthof(fr_strategy_names) == FR_NSTRATEGIES + 1,
				 "fr_strategy_names must cover every fractal strategy");

/*
 * Bitmask, in identify_opfamily_groups() format (bit K set for member number
 * K), of the member numbers 1..n.
 */
static uint64
fr_member_mask(int n)
{
	uint64		mask = 0;
	int			k;

	for (k = 1; k <= n; k++)
		mask |= ((uint64) 1) << k;
	return mask;
}

/*
 * Check one support function of the family: its number, and the signature
 * that number requires.  Returns false after an INFO message if it is wrong.
 */
static bool
fr_validate_proc(Form_pg_amproc procform, const char *opfamilyname)
{
	bool		ok;

	if (procform->amprocnum < 1 || procform->amprocnum > FR_NPROCS)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator family \"%s\" of access method %s contains function %s with invalid support number %d",
						opfamilyname, FR_AM_NAME,
						format_procedure(procform->amproc),
						procform->amprocnum)));
		return false;
	}

	switch (procform->amprocnum)
	{
		case FR_CMP_PROC:
			/* int4 cmp(lefttype, righttype), exact argument types */
			ok = check_amproc_signature(procform->amproc, INT4OID, true,
										2, 2,
										procform->amproclefttype,
										procform->amprocrighttype);
			break;
		default:
			/* FR_NPROCS grew without a signature check being added */
			elog(ERROR, "no signature check for fractal support function %d",
				 procform->amprocnum);
			ok = false;			/* keep compiler quiet */
			break;
	}

	if (!ok)
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator family \"%s\" of access method %s contains function %s with wrong signature for support number %d",
						opfamilyname, FR_AM_NAME,
						format_procedure(procform->amproc),
						procform->amprocnum)));
	return ok;
}

/*
 * Check one operator of the family: strategy number, search purpose and
 * signature.  Reports every problem found; returns false if there was one.
 */
static bool
fr_validate_operator(Form_pg_amop oprform, const char *opfamilyname)
{
	bool		result = true;

	if (oprform->amopstrategy < 1 ||
		oprform->amopstrategy > FR_NSTRATEGIES)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator family \"%s\" of access method %s contains operator %s with invalid strategy number %d",
						opfamilyname, FR_AM_NAME,
						format_operator(oprform->amopopr),
						oprform->amopstrategy)));
		result = false;
	}

	/* only search operators: the AM has no ORDER BY support */
	if (oprform->amoppurpose != AMOP_SEARCH ||
		OidIsValid(oprform->amopsortfamily))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator family \"%s\" of access method %s contains invalid ORDER BY specification for operator %s",
						opfamilyname, FR_AM_NAME,
						format_operator(oprform->amopopr))));
		result = false;
	}

	/* every strategy is a boolean operator on (lefttype, righttype) */
	if (!check_amop_signature(oprform->amopopr, BOOLOID,
							  oprform->amoplefttype,
							  oprform->amoprighttype))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator family \"%s\" of access method %s contains operator %s with wrong signature",
						opfamilyname, FR_AM_NAME,
						format_operator(oprform->amopopr))));
		result = false;
	}
	return result;
}

/*
 * Check that a cross-type group (members on one (lefttype, righttype)
 * pair) has every strategy and every support function, as in btree.
 */
static bool
fr_validate_crosstype_group(OpFamilyOpFuncGroup *group,
							const char *opfamilyname)
{
	uint64		allstrategies = fr_member_mask(FR_NSTRATEGIES);
	uint64		allprocs = fr_member_mask(FR_NPROCS);
	bool		result = true;

	if ((group->operatorset & allstrategies) != allstrategies)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator family \"%s\" of access method %s is missing operator(s) for types %s and %s",
						opfamilyname, FR_AM_NAME,
						format_type_be(group->lefttype),
						format_type_be(group->righttype))));
		result = false;
	}
	if ((group->functionset & allprocs) != allprocs)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator family \"%s\" of access method %s is missing support function for types %s and %s",
						opfamilyname, FR_AM_NAME,
						format_type_be(group->lefttype),
						format_type_be(group->righttype))));
		result = false;
	}
	return result;
}

/*
 * Check that the opclass's own group ('group', NULL if the family has none
 * on its input type) has every strategy and every support function,
 * reporting each one missing.
 */
static bool
fr_validate_opclass_group(OpFamilyOpFuncGroup *group,
						  const char *opclassname, Oid opcintype)
{
	bool		result = true;
	int			i;

	for (i = 1; i <= FR_NSTRATEGIES; i++)
	{
		if (group != NULL &&
			(group->operatorset & (((uint64) 1) << i)) != 0)
			continue;
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator class \"%s\" of access method %s is missing operator for strategy %d (%s) on type %s",
						opclassname, FR_AM_NAME, i, fr_strategy_names[i],
						format_type_be(opcintype))));
		result = false;
	}
	for (i = 1; i <= FR_NPROCS; i++)
	{
		if (group != NULL &&
			(group->functionset & (((uint64) 1) << i)) != 0)
			continue;
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator class \"%s\" of access method %s is missing support function %d on type %s",
						opclassname, FR_AM_NAME, i,
						format_type_be(opcintype))));
		result = false;
	}
	return result;
}

/*
 * Check the family's members grouped by (lefttype, righttype): every
 * cross-type group complete, the opclass's own group complete, and a group
 * for every combination of the family's data types.
 */
static bool
fr_validate_groups(CatCList *oprlist, CatCList *proclist,
				   const char *opfamilyname, const char *opclassname,
				   Oid opcintype)
{
	bool		result = true;
	List	   *grouplist = identify_opfamily_groups(oprlist, proclist);
	List	   *familytypes = NIL;
	OpFamilyOpFuncGroup *opclassgroup = NULL;
	int			usefulgroups = 0;
	uint64		allstrategies = fr_member_mask(FR_NSTRATEGIES);
	uint64		allprocs = fr_member_mask(FR_NPROCS);
	ListCell   *lc;

	foreach(lc, grouplist)
	{
		OpFamilyOpFuncGroup *group = (OpFamilyOpFuncGroup *) lfirst(lc);

		/*
		 * A group made only of members with invalid numbers (say, an in_range
		 * function copied from a btree family) has been complained about
		 * already, and does not stand for a supported pair of types.
		 */
		if ((group->operatorset & allstrategies) == 0 &&
			(group->functionset & allprocs) == 0)
			continue;

		usefulgroups++;
		familytypes = list_append_unique_oid(familytypes, group->lefttype);
		familytypes = list_append_unique_oid(familytypes, group->righttype);

		/* the opclass's own group is checked below, in more detail */
		if (group->lefttype == opcintype && group->righttype == opcintype)
			opclassgroup = group;
		else if (!fr_validate_crosstype_group(group, opfamilyname))
			result = false;
	}

	/* the opclass's own input type needs every strategy and support proc */
	if (!fr_validate_opclass_group(opclassgroup, opclassname, opcintype))
		result = false;

	/*
	 * Like btree, insist that the family provide every combination of its
	 * data types: a missing cross-type pair is not fatal for the index, but
	 * it limits what the planner can deduce from equivalence classes.
	 */
	if (usefulgroups != list_length(familytypes) * list_length(familytypes))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator family \"%s\" of access method %s is missing cross-type operator(s)",
						opfamilyname, FR_AM_NAME)));
		result = false;
	}

	list_free(familytypes);
	list_free_deep(grouplist);
	return result;
}

/*
 * frvalidate
 *		amvalidate callback: check an operator class of the fractal AM.
 *
 * Checks every member of the opclass's operator family:
 *	- support functions: number between 1 and FR_NPROCS; function 1 is
 *	  int4(lefttype, righttype) (fr_validate_proc);
 *	- operators: strategy between 1 and FR_NSTRATEGIES, search (not ORDER BY)
 *	  purpose, boolean binary operator on (lefttype, righttype)
 *	  (fr_validate_operator);
 * then, grouping the members by (lefttype, righttype) (fr_validate_groups):
 *	- the group of the opclass's own input type must have all strategies and
 *	  the comparison function;
 *	- every other (cross-type) group must be complete too, and the family
 *	  must cover every combination of its data types, as btree requires.
 *
 * Some checks cover the whole family and are thus repeated for each of its
 * opclasses; that is cheap and keeps the API simple.
 *
 * Each problem is reported with an INFO message and checking continues.
 * Returns true if no problem was found, false otherwise.  Errors out only if
 * a catalog lookup fails.
 */
bool
frvalidate(Oid opclassoid)
{
	bool		result = true;
	HeapTuple	classtup;
	Form_pg_opclass classform;
	HeapTuple	familytup;
	char	   *opfamilyname;
	CatCList   *oprlist;
	CatCList   *proclist;
	int			i;

	/* Look up the opclass and its family */
	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);

	familytup = SearchSysCache1(OPFAMILYOID,
								ObjectIdGetDatum(classform->opcfamily));
	if (!HeapTupleIsValid(familytup))
		elog(ERROR, "cache lookup failed for operator family %u",
			 classform->opcfamily);
	opfamilyname = NameStr(((Form_pg_opfamily) GETSTRUCT(familytup))->opfname);

	/* All operators and support functions of the family */
	oprlist = SearchSysCacheList1(AMOPSTRATEGY,
								  ObjectIdGetDatum(classform->opcfamily));
	proclist = SearchSysCacheList1(AMPROCNUM,
								   ObjectIdGetDatum(classform->opcfamily));

	/* Support functions, one by one */
	for (i = 0; i < proclist->n_members; i++)
		if (!fr_validate_proc((Form_pg_amproc) GETSTRUCT(&proclist->members[i]->tuple),
							  opfamilyname))
			result = false;

	/* Operators, one by one */
	for (i = 0; i < oprlist->n_members; i++)
		if (!fr_validate_operator((Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple),
								  opfamilyname))
			result = false;

	/* Now the members grouped by (lefttype, righttype) */
	if (!fr_validate_groups(oprlist, proclist, opfamilyname,
							NameStr(classform->opcname), classform->opcintype))
		result = false;

	ReleaseCatCacheList(proclist);
	ReleaseCatCacheList(oprlist);
	ReleaseSysCache(familytup);
	ReleaseSysCache(classtup);

	return result;
}
