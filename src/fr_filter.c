/*-------------------------------------------------------------------------
 *
 * fr_filter.c
 *	  Key filters of buffer pages (format version 3): a blocked Bloom
 *	  filter on the first key column, so that an equality lookup skips
 *	  the buffer pages that cannot hold its key.
 *
 * A filter sits in the special area of a buffer page, after the opaque
 * data (FrFilterData, then 'nbytes' of bits).  Each key sets FR_FILTER_K
 * bits inside one FR_FILTER_BLOCK-byte block, so a test reads one cache
 * line.  A page's filter covers its own keys and, unless the page starts
 * a segment (FR_FILTER_SEG_START), every key of the older pages of its
 * segment: a new chain page copies the bits of the page it is linked in
 * front of while that filter is less than 3/4 loaded.
 *
 * Only the bytes of the key are hashed, so a filter is kept only for
 * column types whose equal values have equal bytes (fr_filter_supported);
 * the bits of a page are a function of its keys and its predecessor's
 * bits, so WAL redo of an item addition recomputes them (fr_xlog.c).
 * Bits are never cleared: a key that VACUUM removed only makes false
 * positives, which cost a page read, never a wrong answer.
 *
 * See src/README.md section 3c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/itup.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/lsyscache.h"

#include "fractal.h"

#define FR_FILTER_SEED			UINT64CONST(0x6672616374616c31)

/* what the first key column of an entry is, for a filter */
typedef enum FrFilterKey
{
	FR_FKEY_NULL,				/* NULL: never equal to anything */
	FR_FKEY_BYTES,				/* these bytes */
	FR_FKEY_OPAQUE				/* compressed: cannot be hashed cheaply */
} FrFilterKey;

/*
 * Is the first key column of 'index' one whose equal values always have
 * equal bytes (btree's "equalimage")?  Integers, bool, "char", oid, date,
 * time, timestamps, uuid, bytea, and text/varchar under a deterministic
 * collation.  Not float (-0 = 0), numeric (1.0 = 1.00), interval ('1 day'
 * = '24 hours'), bpchar (trailing blanks) or name.  Cached per backend.
 */
bool
fr_filter_supported(Relation index)
{
	FrAmCache  *cache = fr_amcache(index);
	Oid			type = index->rd_opcintype[0];
	Oid			coll = index->rd_indcollation[0];
	bool		ok;

	if (cache->filter_support != 0)
		return cache->filter_support > 0;
	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case BOOLOID:
		case CHAROID:
		case OIDOID:
		case DATEOID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case UUIDOID:
		case BYTEAOID:
			ok = true;
			break;
		case TEXTOID:
		case VARCHAROID:
			ok = OidIsValid(coll) && get_collation_isdeterministic(coll);
			break;
		default:
			ok = false;
	}
	/* the stored form must be the type's own: fixed width or varlena */
	if (ok)
	{
		int16		attlen = TupleDescAttr(RelationGetDescr(index), 0)->attlen;

		ok = (attlen > 0 || attlen == -1);
	}
	cache = fr_amcache(index);	/* a syscache lookup may have reset it */
	cache->filter_support = ok ? 1 : -1;
	return ok;
}

/*
 * Load into rd_amcache what fr_filter_page_bytes needs: whether the first
 * key column qualifies (a catalog lookup for text) and the metapage.  Call
 * with no buffer lock held (insert, flush and VACUUM entry points): both
 * may wait on locks that rank before index pages.
 */
void
fr_filter_prepare(Relation index)
{
	(void) fr_filter_supported(index);
	if (!fr_amcache(index)->meta_valid)
		(void) fr_get_root(index, NULL, false);
}

/*
 * Bytes of filter a new buffer page of 'index' gets: the filter_bytes
 * option, or 0 when the first key column cannot be filtered or the index
 * was built by a format version before 3 (whose library would not read
 * FR_FILTERED pages; such an index keeps its format until REINDEX).
 * Called under node locks, so it reads only rd_amcache, never a page or a
 * catalog: if a relcache invalidation emptied the cache since
 * fr_filter_prepare, the page simply gets no filter (always correct).
 */
int
fr_filter_page_bytes(Relation index)
{
	FrOptions  *opts = (FrOptions *) index->rd_options;
	FrAmCache  *cache = fr_amcache(index);
	int			nbytes = opts ? opts->filter_bytes : FR_DEFAULT_FILTER_BYTES;

	nbytes -= nbytes % FR_FILTER_BLOCK;
	if (nbytes <= 0 || nbytes > FR_MAX_FILTER_BYTES ||
		cache->filter_support <= 0 || !cache->meta_valid ||
		cache->meta.version < 3)
		return 0;
	return nbytes;
}

/* 64-bit hash of a key's bytes */
static inline uint64
fr_filter_hash_bytes(const char *data, Size len)
{
	return hash_bytes_extended((const unsigned char *) data, (int) len,
							   FR_FILTER_SEED);
}

/*
 * The bytes of the first key column of a stored entry, whose attlen is
 * 'typlen'.  The first attribute starts at the data offset, which is
 * maximally aligned.
 */
static FrFilterKey
fr_filter_tuple_key(IndexTuple itup, int16 typlen, const char **data,
					Size *len)
{
	char	   *p;
	Size		off,
				size;

	if (IndexTupleHasNulls(itup) &&
		att_isnull(0, (bits8 *) ((char *) itup + sizeof(IndexTupleData))))
		return FR_FKEY_NULL;
	/*
	 * Reads stay inside the tuple whatever the (possibly corrupt) typlen of
	 * the page's filter says: redo has no catalog to check it against.
	 */
	off = IndexInfoFindDataOffset(itup->t_info);
	size = IndexTupleSize(itup);
	p = (char *) itup + off;
	if (typlen > 0)
	{
		if (off + typlen > size)
			return FR_FKEY_OPAQUE;
		*data = p;
		*len = typlen;
		return FR_FKEY_BYTES;
	}
	if (off + 1 > size || (VARATT_IS_EXTENDED(p) && !VARATT_IS_SHORT(p)))
		return FR_FKEY_OPAQUE;
	if (typlen != -1 || (!VARATT_IS_SHORT(p) && off + VARHDRSZ > size) ||
		off + VARSIZE_ANY(p) > size)
		return FR_FKEY_OPAQUE;
	*data = VARDATA_ANY(p);
	*len = VARSIZE_ANY_EXHDR(p);
	return FR_FKEY_BYTES;
}

/* the block and the bits of hash 'h' */
static inline uint8 *
fr_filter_block(FrFilter f, uint64 h)
{
	uint32		nblocks = f->nbytes / FR_FILTER_BLOCK;
	uint32		block = (uint32) (((h >> 32) * (uint64) nblocks) >> 32);

	return FrFilterBits(f) + block * FR_FILTER_BLOCK;
}

static inline uint32
fr_filter_bit(uint64 h, int i)
{
	/* a second mix gives FR_FILTER_K independent 9-bit positions */
	uint64		g = (h & UINT64CONST(0xFFFFFFFF)) * UINT64CONST(0x9E3779B97F4A7C15);

	return (uint32) (g >> (64 - 9 * (i + 1))) & (FR_FILTER_BLOCK * 8 - 1);
}

static void
fr_filter_set(FrFilter f, uint64 h)
{
	uint8	   *b = fr_filter_block(f, h);
	int			i;

	for (i = 0; i < FR_FILTER_K; i++)
	{
		uint32		bit = fr_filter_bit(h, i);

		b[bit >> 3] |= (uint8) (1 << (bit & 7));
	}
}

static bool
fr_filter_test(FrFilter f, uint64 h)
{
	uint8	   *b = fr_filter_block(f, h);
	int			i;

	if (f->flags & FR_FILTER_ALL)
		return true;
	for (i = 0; i < FR_FILTER_K; i++)
	{
		uint32		bit = fr_filter_bit(h, i);

		if ((b[bit >> 3] & (1 << (bit & 7))) == 0)
			return false;
	}
	return true;
}

/*
 * Add the keys of tups[0..n) to filter 'f' (of a buffer page or a leaf
 * filter slot).
 */
void
fr_filter_add_keys(FrFilter f, IndexTuple *tups, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		const char *data;
		Size		len;

		switch (fr_filter_tuple_key(tups[i], f->typlen, &data, &len))
		{
			case FR_FKEY_NULL:
				break;
			case FR_FKEY_BYTES:
				fr_filter_set(f, fr_filter_hash_bytes(data, len));
				f->nkeys++;
				break;
			case FR_FKEY_OPAQUE:
				f->flags |= FR_FILTER_ALL;
				f->nkeys++;
				break;
		}
	}
}

/* may filter 'f' contain a key of hash 'h' (fr_filter_key_hash)? */
bool
fr_filter_test_hash(FrFilter f, uint64 h)
{
	return fr_filter_test(f, h);
}

/*
 * Add the keys of tups[0..n) to the filter of 'page' (a buffer page, or
 * any other page, which is left alone).  Used when items are added, and by
 * their WAL redo, which therefore needs nothing but the page.
 */
void
fr_filter_add_tuples(Page page, IndexTuple *tups, int n)
{
	if (!FrPageIsChain(page) || !FrPageIsFiltered(page))
		return;
	fr_filter_add_keys(FrPageGetFilter(page), tups, n);
}

/*
 * Give the freshly initialised buffer page 'page' a filter of 'nbytes'
 * bytes for first key column attlen 'typlen'.  'pred' is the page it is
 * linked in front of (share-locked by the caller), or NULL when it starts
 * a chain or must start a segment (a chain rewritten by a partial flush,
 * whose old pages are about to be cut off).  The page continues pred's
 * segment, copying its bits, while pred's filter is of the same shape and
 * less than 3/4 loaded; otherwise it starts a segment.  The caller adds
 * the page's own keys with fr_filter_add_tuples and logs the page whole.
 */
void
fr_filter_init_page(Page page, int nbytes, int16 typlen, Page pred)
{
	PageHeader	ph = (PageHeader) page;
	Size		extra = sizeof(FrFilterData) + nbytes;
	FrFilter	f;
	FrFilter	pf = NULL;

	Assert(nbytes > 0 && nbytes % FR_FILTER_BLOCK == 0 &&
		   nbytes <= FR_MAX_FILTER_BYTES);
	Assert(PageGetMaxOffsetNumber(page) == 0);

	/* grow the special area below the opaque data by the filter */
	memmove((char *) page + ph->pd_special - extra,
			(char *) page + ph->pd_special, MAXALIGN(sizeof(FrPageOpaqueData)));
	ph->pd_special -= extra;
	ph->pd_upper -= extra;
	FrPageGetOpaque(page)->flags |= FR_FILTERED;
	f = FrPageGetFilter(page);
	memset(f, 0, extra);
	f->typlen = typlen;
	f->nbytes = (uint16) nbytes;

	if (pred != NULL && FrPageIsFiltered(pred))
		pf = FrPageGetFilter(pred);
	if (pf != NULL && pf->nbytes == nbytes && pf->typlen == typlen &&
		(pf->flags & FR_FILTER_ALL) == 0 &&
		pf->nkeys < (uint32) nbytes * 8 / FR_FILTER_BITS_PER_KEY * 3 / 4)
	{
		memcpy(FrFilterBits(f), FrFilterBits(pf), nbytes);
		f->nkeys = pf->nkeys;
		f->skip = (pf->flags & FR_FILTER_SEG_START) ?
			FrPageGetOpaque(pred)->link : pf->skip;
	}
	else
	{
		f->flags = FR_FILTER_SEG_START;
		f->skip = InvalidBlockNumber;
	}
}

/*
 * The hash a lookup of first-column value 'value' (of the column's own
 * type, never NULL) tests, as fr_filter_add_tuples would compute it for an
 * entry holding that value.
 */
static uint64
fr_filter_hash_datum(Datum value, int16 typlen, bool byval)
{
	if (typlen > 0 && byval)
	{
		char		buf[sizeof(Datum)];

		store_att_byval(buf, value, typlen);
		return fr_filter_hash_bytes(buf, typlen);
	}
	if (typlen > 0)
		return fr_filter_hash_bytes(DatumGetPointer(value), typlen);
	{
		struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
		uint64		h = fr_filter_hash_bytes(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));

		if ((Pointer) v != DatumGetPointer(value))
			pfree(v);
		return h;
	}
}

/*
 * Convert integer 'value' of type 'from' to integer type 'to'; false when
 * either is not an integer type or the value is out of the target's range
 * (the key then does not use the filters; it can match nothing anyway).
 */
static bool
fr_filter_cast_int(Oid from, Oid to, Datum *value)
{
	int64		v;

	switch (from)
	{
		case INT2OID:
			v = DatumGetInt16(*value);
			break;
		case INT4OID:
			v = DatumGetInt32(*value);
			break;
		case INT8OID:
			v = DatumGetInt64(*value);
			break;
		default:
			return false;
	}
	if (to == INT2OID && v >= PG_INT16_MIN && v <= PG_INT16_MAX)
		*value = Int16GetDatum((int16) v);
	else if (to == INT4OID && v >= PG_INT32_MIN && v <= PG_INT32_MAX)
		*value = Int32GetDatum((int32) v);
	else if (to == INT8OID)
		*value = Int64GetDatum(v);
	else
		return false;
	return true;
}

/*
 * The hash a lookup of first-column value 'value' of type 'keytype'
 * (InvalidOid: the column's type; never NULL) tests, as
 * fr_filter_add_tuples would compute it for an entry holding that value.
 * False when the filters cannot serve the key: a column without filters,
 * or a cross-type key other than between integer types (converted when in
 * range) and between text and varchar, whose equal values then have equal
 * bytes.
 */
bool
fr_filter_key_hash(Relation index, Oid keytype, Datum value, uint64 *hash)
{
	Oid			coltype = index->rd_opcintype[0];
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(index), 0);

	if (!fr_filter_supported(index))
		return false;
	if (!OidIsValid(keytype))
		keytype = coltype;
	if (keytype != coltype &&
		!((keytype == TEXTOID || keytype == VARCHAROID) &&
		  (coltype == TEXTOID || coltype == VARCHAROID)) &&
		!fr_filter_cast_int(keytype, coltype, &value))
		return false;
	*hash = fr_filter_hash_datum(value, att->attlen, att->attbyval);
	return true;
}

/*
 * May the buffer page 'page' (or, when it continues a segment, an older
 * page of its segment) hold a message whose first key column hashes to
 * 'h'?  Pages without a filter always may.
 */
bool
fr_filter_may_contain(Page page, uint64 h)
{
	if (!FrPageIsFiltered(page))
		return true;
	return fr_filter_test(FrPageGetFilter(page), h);
}

/*
 * Where a chain walk goes on when the filter of 'page' ruled the key out:
 * past the whole segment, or just past this page when it starts one.
 */
BlockNumber
fr_filter_next(Page page)
{
	FrFilter	f = FrPageGetFilter(page);

	if (!FrPageIsFiltered(page) || (f->flags & FR_FILTER_SEG_START))
		return FrPageGetOpaque(page)->link;
	return f->skip;
}

/*
 * fractal_check: does filter 'f' contain the first key column of entry
 * 'itup'?
 */
bool
fr_filter_contains_tuple(FrFilter f, IndexTuple itup)
{
	const char *data;
	Size		len;

	if (f->flags & FR_FILTER_ALL)
		return true;
	switch (fr_filter_tuple_key(itup, f->typlen, &data, &len))
	{
		case FR_FKEY_NULL:
			return true;
		case FR_FKEY_BYTES:
			return fr_filter_test(f, fr_filter_hash_bytes(data, len));
		case FR_FKEY_OPAQUE:
			return false;		/* must have set FR_FILTER_ALL */
	}
	return false;
}
