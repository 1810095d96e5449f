/*-------------------------------------------------------------------------
 *
 * fr_compress.c
 *	  zstd compression of fractal leaf pages, and the leaf "view" through
 *	  which every reader sees a leaf's entries whatever its format.
 *
 * A leaf is stored in one of two formats:
 *
 *	plain		line pointers + index tuples, like any index page;
 *	compressed	FR_COMPRESSED in the special area's flags, no line pointers
 *				(pd_lower at the end of the page header), and at pd_upper an
 *				FrZHeader followed by one zstd frame.  The hole between
 *				pd_lower and pd_upper is free space, so full-page images and
 *				generic WAL skip it.
 *
 * The frame decompresses to the entries' index tuples, concatenated in key
 * order (FR_Z_CONCAT), or, when every tuple has the same size, to the same
 * bytes transposed column-wise (FR_Z_SHUFFLED: byte j of every tuple, then
 * byte j+1, ...), which lets zstd see the slowly changing high bytes of
 * sorted keys and heap TIDs as long runs.
 *
 * A page is written compressed only when that holds more than the plain
 * format would (the writer falls back to plain otherwise), and a compressed
 * page always decompresses to at most FR_Z_MAX_RAW bytes.  Everything read
 * back is validated; impossible sizes or a failing frame are reported as
 * index corruption naming the block.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <zstd.h>
#include <zstd_errors.h>

#include "utils/memutils.h"
#include "utils/rel.h"

#include "fractal.h"

/*
 * zstd contexts, one of each per backend, made on first use and kept: zstd
 * allocates them with malloc, so running out of memory shows as a NULL
 * context or a memory_allocation error code, which fr_zstd_oom turns into
 * an ordinary out-of-memory ERROR (never an index corruption report).
 * Keeping them also saves zstd's context setup on every page.
 */
static ZSTD_CCtx *fr_zcctx = NULL;
static ZSTD_DCtx *fr_zdctx = NULL;

static void
fr_zstd_oom(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 errdetail("zstd could not allocate memory to %s a fractal leaf.", what)));
}

static ZSTD_CCtx *
fr_zstd_cctx(void)
{
	if (fr_zcctx == NULL && (fr_zcctx = ZSTD_createCCtx()) == NULL)
		fr_zstd_oom("compress");
	return fr_zcctx;
}

static ZSTD_DCtx *
fr_zstd_dctx(void)
{
	if (fr_zdctx == NULL && (fr_zdctx = ZSTD_createDCtx()) == NULL)
		fr_zstd_oom("decompress");
	return fr_zdctx;
}

/*
 * Compress items[0..n) (sorted entries) with zstd at 'level' into 'out'
 * (capacity 'outcap').  Returns the number of bytes written after the
 * FrZHeader, which is filled in at the start of 'out', or 0 when the
 * result does not fit or the raw size exceeds FR_Z_MAX_RAW.
 */
Size
fr_compress_entries(IndexTuple *items, int n, int level, char *out, Size outcap)
{
	FrZHeader  *hdr = (FrZHeader *) out;
	Size		rawsize = 0;
	Size		tupsize = n > 0 ? IndexTupleSize(items[0]) : 0;
	bool		same = true;
	char	   *raw,
			   *p;
	size_t		csize;
	int			i;

	if (outcap <= sizeof(FrZHeader) || n <= 0 || n > PG_UINT16_MAX)
		return 0;
	for (i = 0; i < n; i++)
	{
		rawsize += IndexTupleSize(items[i]);
		if (IndexTupleSize(items[i]) != tupsize)
			same = false;
	}
	if (rawsize > FR_Z_MAX_RAW)
		return 0;

	raw = palloc(rawsize);
	if (same)
	{
		/* transpose: byte j of tuple i goes to j * n + i */
		Size		j;

		for (i = 0; i < n; i++)
		{
			const char *t = (const char *) items[i];

			for (j = 0; j < tupsize; j++)
				raw[j * n + i] = t[j];
		}
	}
	else
	{
		p = raw;
		for (i = 0; i < n; i++)
		{
			memcpy(p, items[i], IndexTupleSize(items[i]));
			p += IndexTupleSize(items[i]);
		}
	}

	csize = ZSTD_compressCCtx(fr_zstd_cctx(), out + sizeof(FrZHeader),
							  outcap - sizeof(FrZHeader), raw, rawsize, level);
	pfree(raw);
	if (ZSTD_isError(csize) &&
		ZSTD_getErrorCode(csize) == ZSTD_error_memory_allocation)
		fr_zstd_oom("compress");
	if (ZSTD_isError(csize))
		return 0;				/* typically: does not fit */

	hdr->nitems = (uint16) n;
	hdr->format = same ? FR_Z_SHUFFLED : FR_Z_CONCAT;
	hdr->unused = 0;
	hdr->rawsize = (uint32) rawsize;
	hdr->csize = (uint32) csize;
	return csize;
}

/*
 * Fill 'view' with the entries of the leaf 'page' (locked by the caller).
 * For a plain leaf the pointers point into the page and are valid while
 * the lock is held; for a compressed leaf they point into a palloc'd copy
 * (view->buf), valid until fr_leaf_view_release.
 */
void
fr_leaf_view(Relation index, Page page, BlockNumber blkno, FrLeafView *view)
{
	memset(view, 0, sizeof(FrLeafView));
	if (!FrPageIsCompressed(page))
	{
		OffsetNumber off,
					maxoff = PageGetMaxOffsetNumber(page);

		view->n = maxoff;
		view->items = palloc(sizeof(IndexTuple) * Max(maxoff, 1));
		for (off = FirstOffsetNumber; off <= maxoff; off++)
			view->items[off - 1] = (IndexTuple) PageGetItem(page, PageGetItemId(page, off));
		return;
	}

	{
		PageHeader	ph = (PageHeader) page;
		FrZHeader	hdr;
		char	   *raw;
		size_t		got;
		int			i;

		view->compressed = true;
		if (ph->pd_upper + sizeof(FrZHeader) > ph->pd_special)
			fr_report_corrupt(index, blkno, "compressed leaf: header does not fit");
		memcpy(&hdr, (char *) page + ph->pd_upper, sizeof(FrZHeader));
		if (hdr.csize == 0 ||
			ph->pd_upper + sizeof(FrZHeader) + hdr.csize > ph->pd_special)
			fr_report_corrupt(index, blkno, "compressed leaf: compressed size exceeds the page");
		if (hdr.rawsize == 0 || hdr.rawsize > FR_Z_MAX_RAW || hdr.nitems == 0 ||
			hdr.rawsize < hdr.nitems * sizeof(IndexTupleData) ||
			(hdr.format != FR_Z_CONCAT && hdr.format != FR_Z_SHUFFLED))
			fr_report_corrupt(index, blkno, "compressed leaf: impossible sizes in header");
		if (hdr.format == FR_Z_SHUFFLED && hdr.rawsize % hdr.nitems != 0)
			fr_report_corrupt(index, blkno, "compressed leaf: shuffled size is not a multiple of the entry count");

		raw = palloc(hdr.rawsize);
		got = ZSTD_decompressDCtx(fr_zstd_dctx(), raw, hdr.rawsize,
							  (char *) page + ph->pd_upper + sizeof(FrZHeader),
							  hdr.csize);
		if (ZSTD_isError(got) &&
			ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation)
			fr_zstd_oom("decompress");
		if (ZSTD_isError(got) || got != hdr.rawsize)
			fr_report_corrupt(index, blkno, "compressed leaf: zstd frame does not decompress to the recorded size");

		if (hdr.format == FR_Z_SHUFFLED)
		{
			Size		tupsize = hdr.rawsize / hdr.nitems;
			char	   *flat = palloc(hdr.rawsize);
			Size		j;

			for (i = 0; i < hdr.nitems; i++)
				for (j = 0; j < tupsize; j++)
					flat[i * tupsize + j] = raw[j * hdr.nitems + i];
			pfree(raw);
			raw = flat;
		}

		view->buf = raw;
		view->n = hdr.nitems;
		view->items = palloc(sizeof(IndexTuple) * hdr.nitems);
		{
			Size		pos = 0;

			for (i = 0; i < hdr.nitems; i++)
			{
				IndexTuple	it = (IndexTuple) (raw + pos);
				Size		sz;

				if (pos + sizeof(IndexTupleData) > hdr.rawsize)
					fr_report_corrupt(index, blkno, "compressed leaf: entries overrun the decompressed data");
				sz = IndexTupleSize(it);
				if (sz < sizeof(IndexTupleData) || sz > FR_MAX_ITEM_SIZE ||
					pos + sz > hdr.rawsize || sz != MAXALIGN(sz))
					fr_report_corrupt(index, blkno, "compressed leaf: an entry has an impossible size");
				view->items[i] = it;
				pos += sz;
			}
			if (pos != hdr.rawsize)
				fr_report_corrupt(index, blkno, "compressed leaf: entries do not fill the decompressed data");
		}
		view->rawsize = hdr.rawsize;
		view->csize = hdr.csize;
	}
}

void
fr_leaf_view_release(FrLeafView *view)
{
	if (view->items)
		pfree(view->items);
	if (view->buf)
		pfree(view->buf);
	memset(view, 0, sizeof(FrLeafView));
}

/* bytes items take on a plain page, line pointers included */
static Size
fr_plain_size(IndexTuple *items, int n)
{
	Size		total = 0;
	int			i;

	for (i = 0; i < n; i++)
		total += fr_item_space(items[i]);
	return total;
}

/*
 * Compressed pages are kept 5% below a full page, so that rewriting a
 * subset of their entries (VACUUM) practically always fits again.
 */
#define FR_Z_TARGET (FrPageUsable - FrPageUsable / 20)

/*
 * Bytes items[0..n) would occupy on a leaf: compressed (frame + header,
 * MAXALIGNed) when compression is on and that is smaller, else plain.
 * Returns a value above FrPageUsable when they fit in neither form.
 */
static Size
fr_leaf_size(FrState *state, IndexTuple *items, int n, bool allow_compress,
			 char *zbuf, Size *zlen)
{
	Size		plain = fr_plain_size(items, n);

	*zlen = 0;
	if (allow_compress && state->compression == FR_COMPRESSION_ZSTD && n > 0)
	{
		Size		csize = fr_compress_entries(items, n, state->compression_level,
												zbuf, FR_Z_TARGET);

		if (csize > 0)
		{
			Size		stored = MAXALIGN(sizeof(FrZHeader) + csize);

			if (stored <= FR_Z_TARGET && stored < plain)
			{
				*zlen = sizeof(FrZHeader) + csize;
				return stored;
			}
		}
	}
	return plain;
}

/*
 * Fill the empty, initialised leaf 'page' with items[0..n) (sorted):
 * compressed when compression is on, allowed, fits and saves space, plain
 * otherwise.  Returns false, leaving the page untouched, when they fit in
 * neither form.
 */
bool
fr_leaf_fill(FrState *state, Page page, IndexTuple *items, int n,
			 bool allow_compress)
{
	PGAlignedBlock zbuf;
	Size		zlen;
	Size		size = fr_leaf_size(state, items, n, allow_compress, zbuf.data, &zlen);
	int			i;

	if (size > FrPageUsable)
		return false;
	if (zlen > 0)
	{
		PageHeader	ph = (PageHeader) page;

		ph->pd_upper = ph->pd_special - MAXALIGN(zlen);
		memcpy((char *) page + ph->pd_upper, zbuf.data, zlen);
		FrPageGetOpaque(page)->flags |= FR_COMPRESSED;
		return true;
	}
	for (i = 0; i < n; i++)
		if (PageAddItem(page, (Item) items[i], IndexTupleSize(items[i]),
						InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to add entry to fractal leaf");
	return true;
}

/*
 * The largest k (at least 1) such that items[0..k) occupy at most 'target'
 * bytes of a (non-root) leaf in the current compression setting.
 */
int
fr_leaf_max_prefix(FrState *state, IndexTuple *items, int n, Size target)
{
	PGAlignedBlock zbuf;
	Size		zlen;
	int			lo = 1,
				hi = n;

	if (n <= 1 || fr_leaf_size(state, items, n, true, zbuf.data, &zlen) <= target)
		return Max(n, 1);
	hi = n - 1;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo + 1) / 2;

		if (fr_leaf_size(state, items, mid, true, zbuf.data, &zlen) <= target)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}
