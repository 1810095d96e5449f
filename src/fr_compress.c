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
 *				FrZHeader followed by zstd frames.  The hole between
 *				pd_lower and pd_upper is free space, so full-page images and
 *				generic WAL skip it.
 *
 * A frame decompresses to index tuples, concatenated in key order
 * (FR_Z_CONCAT), or, when every tuple has the same size, to the same bytes
 * transposed column-wise (FR_Z_SHUFFLED: byte j of every tuple, then byte
 * j+1, ...), which lets zstd see the slowly changing high bytes of sorted
 * keys and heap TIDs as long runs.
 *
 * Format version 5 writes compressed leaves in blocks (FR_Z_BLOCKS): the
 * entries are cut, in order, into blocks of at most FR_Z_BLOCK_RAW bytes;
 * the header is followed by one FrZBlock per block, then every block's
 * first entry (its fence) stored plain, then one frame per block holding
 * its other entries:
 *
 *	FrZHeader | FrZBlock x nblocks | (MAXALIGN) fences | frames
 *
 * A scan binary-searches the fences and decompresses only the blocks its
 * window can touch (fr_leaf_fences, fr_leaf_view_part): a point lookup
 * decompresses one block, not the whole leaf.  Blocks are compressed
 * independently, so a leaf write that sizes a page and then fills it
 * compresses each block once (FrZMemo), and the longest prefix that fits
 * recompresses only its last block.  Older indexes keep the single-frame
 * format (FrZHeader and one frame of every entry), which is still read.
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

/* ------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------
 */

/*
 * Lay items[0..n) out in 'raw' as a frame's input: transposed when every
 * entry has the same size, else concatenated.  Returns the format.
 */
static uint8
fr_zframe_layout(IndexTuple *items, int n, char *raw)
{
	Size		tupsize = IndexTupleSize(items[0]);
	int			i;

	for (i = 1; i < n; i++)
		if (IndexTupleSize(items[i]) != tupsize)
			break;
	if (i == n)
	{
		/* transpose: byte j of tuple i goes to j * n + i */
		for (i = 0; i < n; i++)
		{
			const char *t = (const char *) items[i];
			Size		j;

			for (j = 0; j < tupsize; j++)
				raw[j * n + i] = t[j];
		}
		return FR_Z_SHUFFLED;
	}
	for (i = 0; i < n; i++)
	{
		memcpy(raw, items[i], IndexTupleSize(items[i]));
		raw += IndexTupleSize(items[i]);
	}
	return FR_Z_CONCAT;
}

/*
 * Compress items[0..n) (rawsize bytes) at 'level' into one frame at 'out'
 * (capacity outcap).  Returns its size, or 0 when it does not fit.
 */
static Size
fr_zframe_compress(IndexTuple *items, int n, Size rawsize, int level,
				   char *out, Size outcap, uint8 *format)
{
	char	   *raw = palloc(rawsize);
	size_t		csize;

	*format = fr_zframe_layout(items, n, raw);
	csize = ZSTD_compressCCtx(fr_zstd_cctx(), out, outcap, raw, rawsize, level);
	pfree(raw);
	if (ZSTD_isError(csize) &&
		ZSTD_getErrorCode(csize) == ZSTD_error_memory_allocation)
		fr_zstd_oom("compress");
	if (ZSTD_isError(csize))
		return 0;				/* typically: does not fit */
	return csize;
}

static bool fr_zblocks_enabled(FrState *state);
static void fr_zformat_pin(FrState *state);

/*
 * The frames a leaf write has compressed, keyed by the exact sequence of
 * entry pointers (and the level).  Valid only while the entries they point
 * to are unchanged: a memo lives for one leaf rewrite, one bulk-build page,
 * or one fr_leaf_max_prefix call, never longer.  A bounded number of slots
 * (reused in turn), each at most a page of frame.
 */
#define FR_ZMEMO_SLOTS	64

typedef struct FrZMemoEntry
{
	IndexTuple *ptrs;			/* the entries, by address */
	int			n;
	int			level;
	uint8		format;
	bool		seeded;			/* from the leaf rewritten, not yet used */
	Size		csize;			/* 0: did not fit */
	char	   *frame;
} FrZMemoEntry;

struct FrZMemo
{
	MemoryContext cxt;
	int			next;			/* slot to reuse next */
	int			used;
	FrZMemoEntry e[FR_ZMEMO_SLOTS];
};

FrZMemo *
fr_zmemo_create(FrState *state)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "fractal leaf frames",
											  ALLOCSET_SMALL_SIZES);
	FrZMemo    *memo = MemoryContextAllocZero(cxt, sizeof(FrZMemo));

	memo->cxt = cxt;
	fr_zformat_pin(state);
	return memo;
}

void
fr_zmemo_free(FrZMemo *memo)
{
	if (memo != NULL)
		MemoryContextDelete(memo->cxt);
}

/* frames are compressed into at most this much (then they cannot fit) */
#define FR_Z_TARGET (FrPageUsable - FrPageUsable / 20)

/*
 * Remember the frame (csize bytes, 0: did not fit) of items[0..n), in the
 * next slot, which is returned.
 */
static FrZMemoEntry *
fr_zmemo_put(FrZMemo *memo, IndexTuple *items, int n, int level,
			 uint8 format, const char *frame, Size csize)
{
	FrZMemoEntry *e = &memo->e[memo->next];

	if (memo->next < memo->used)
	{
		pfree(e->ptrs);
		if (e->frame)
			pfree(e->frame);
	}
	else
		memo->used++;
	memo->next = (memo->next + 1) % FR_ZMEMO_SLOTS;
	e->ptrs = MemoryContextAlloc(memo->cxt, sizeof(IndexTuple) * n);
	memcpy(e->ptrs, items, sizeof(IndexTuple) * n);
	e->n = n;
	e->level = level;
	e->format = format;
	e->seeded = false;
	e->csize = csize;
	e->frame = NULL;
	if (csize > 0)
	{
		e->frame = MemoryContextAlloc(memo->cxt, csize);
		memcpy(e->frame, frame, csize);
	}
	return e;
}

/*
 * One frame of items[0..n) (rawsize bytes) at the state's level: from the
 * memo when the same entries were compressed before, else compressed (and
 * remembered).  Returns its size (0: larger than FR_Z_TARGET); *frame
 * points to its bytes until the next call.
 */
static Size
fr_zframe_get(FrState *state, IndexTuple *items, int n, Size rawsize,
			  uint8 *format, char **frame)
{
	static char scratch[BLCKSZ];
	FrZMemo    *memo = state->zmemo;
	FrZMemoEntry *e;
	Size		csize;
	int			i;

	if (memo != NULL)
	{
		for (i = 0; i < memo->used; i++)
		{
			e = &memo->e[i];
			if (e->n == n && e->level == state->compression_level &&
				e->ptrs[0] == items[0] && e->ptrs[n - 1] == items[n - 1] &&
				memcmp(e->ptrs, items, sizeof(IndexTuple) * n) == 0)
			{
				if (e->seeded)
					fr_count(FR_CTR_ZBLOCKS_KEPT, 1);
				e->seeded = false;
				*format = e->format;
				*frame = e->frame;
				return e->csize;
			}
		}
	}
	csize = fr_zframe_compress(items, n, rawsize, state->compression_level,
							   scratch, FR_Z_TARGET, format);
	*frame = scratch;
	if (memo != NULL)
		(void) fr_zmemo_put(memo, items, n, state->compression_level, *format,
							scratch, csize);
	return csize;
}

/* ------------------------------------------------------------------------
 * Writing a compressed leaf
 * ------------------------------------------------------------------------
 */

/* bytes of items[0..n), uncompressed */
static Size
fr_raw_size(IndexTuple *items, int n)
{
	Size		total = 0;
	int			i;

	for (i = 0; i < n; i++)
		total += IndexTupleSize(items[i]);
	return total;
}

/* the end of the block that starts at items[from]: FR_Z_BLOCK_RAW bytes at most, one entry at least */
static int
fr_zblock_end(IndexTuple *items, int from, int n)
{
	Size		raw = IndexTupleSize(items[from]);
	int			end = from + 1;

	while (end < n && raw + IndexTupleSize(items[end]) <= FR_Z_BLOCK_RAW)
		raw += IndexTupleSize(items[end++]);
	return end;
}

/*
 * Does this index write compressed leaves in blocks (format version 5)?
 * Asks the metapage copy in rd_amcache unless the state has pinned the
 * answer (fr_zformat_pin), so that sizing and filling a page agree.
 */
static bool
fr_zblocks_enabled(FrState *state)
{
	FrAmCache  *cache;

	if (state->zblocks != 0)
		return state->zblocks > 0;
	cache = fr_amcache(state->index);
	return cache->meta_valid && cache->meta.version >= 5;
}

/* pin the state's compressed format to what the index writes now */
static void
fr_zformat_pin(FrState *state)
{
	if (state->zblocks == 0)
		state->zblocks = fr_zblocks_enabled(state) ? 1 : -1;
}

/*
 * Encode items[0..n) in the single-frame format at 'out' (NULL: only
 * size them).  Returns the bytes from pd_upper on, or 0 when more than
 * 'limit' or the entries exceed FR_Z_MAX_RAW.
 */
static Size
fr_zsingle_encode(FrState *state, IndexTuple *items, int n, Size limit,
				  char *out)
{
	Size		rawsize = fr_raw_size(items, n);
	FrZHeader	hdr;
	char	   *frame;
	Size		csize;

	if (rawsize > FR_Z_MAX_RAW)
		return 0;
	csize = fr_zframe_get(state, items, n, rawsize, &hdr.format, &frame);
	if (csize == 0 || sizeof(FrZHeader) + csize > limit)
		return 0;
	if (out != NULL)
	{
		hdr.nitems = (uint16) n;
		hdr.nblocks = 0;
		hdr.rawsize = (uint32) rawsize;
		hdr.csize = (uint32) csize;
		memcpy(out, &hdr, sizeof(FrZHeader));
		memcpy(out + sizeof(FrZHeader), frame, csize);
	}
	return sizeof(FrZHeader) + csize;
}

/*
 * Encode items[0..n) in the block format at 'out' (NULL: only size them).
 * Returns the bytes from pd_upper on, or 0 when more than 'limit', the
 * entries exceed FR_Z_MAX_RAW or they make more than FR_Z_MAX_BLOCKS
 * blocks.  Stops compressing as soon as the limit is passed.
 */
static Size
fr_zblocks_encode(FrState *state, IndexTuple *items, int n, Size limit,
				  char *out)
{
	int			starts[FR_Z_MAX_BLOCKS + 1];
	int			nb = 0,
				from,
				b;
	Size		rawsize = fr_raw_size(items, n),
				fpos,
				pos;

	/* the blocks; the fences follow the directory, the frames the fences */
	if (rawsize > FR_Z_MAX_RAW)
		return 0;
	for (from = 0; from < n; from = fr_zblock_end(items, from, n))
	{
		if (nb == FR_Z_MAX_BLOCKS)
			return 0;
		starts[nb++] = from;
	}
	starts[nb] = n;
	fpos = MAXALIGN(sizeof(FrZHeader) + nb * sizeof(FrZBlock));
	pos = fpos;
	for (b = 0; b < nb; b++)
		pos += IndexTupleSize(items[starts[b]]);
	if (pos > limit)
		return 0;

	/* each block: its fence, and one frame of its other entries */
	for (b = 0; b < nb; b++)
	{
		IndexTuple	fence = items[starts[b]];
		int			cnt = starts[b + 1] - starts[b] - 1;
		FrZBlock	blk;

		memset(&blk, 0, sizeof(FrZBlock));
		blk.nitems = (uint16) (cnt + 1);
		if (cnt > 0)
		{
			char	   *frame;

			blk.rawsize = (uint32) fr_raw_size(items + starts[b] + 1, cnt);
			blk.csize = (uint32) fr_zframe_get(state, items + starts[b] + 1, cnt,
											   blk.rawsize, &blk.format, &frame);
			if (blk.csize == 0 || pos + blk.csize > limit)
				return 0;
			if (out != NULL)
				memcpy(out + pos, frame, blk.csize);
			pos += blk.csize;
		}
		if (out != NULL)
		{
			memcpy(out + sizeof(FrZHeader) + b * sizeof(FrZBlock), &blk,
				   sizeof(FrZBlock));
			memcpy(out + fpos, fence, IndexTupleSize(fence));
		}
		fpos += IndexTupleSize(fence);
	}
	if (out != NULL)
	{
		FrZHeader	hdr;

		memset(out + sizeof(FrZHeader) + nb * sizeof(FrZBlock), 0,
			   MAXALIGN(sizeof(FrZHeader) + nb * sizeof(FrZBlock)) -
			   (sizeof(FrZHeader) + nb * sizeof(FrZBlock)));
		hdr.nitems = (uint16) n;
		hdr.format = FR_Z_BLOCKS;
		hdr.nblocks = (uint8) nb;
		hdr.rawsize = (uint32) rawsize;
		hdr.csize = (uint32) (pos - sizeof(FrZHeader));
		memcpy(out, &hdr, sizeof(FrZHeader));
	}
	return pos;
}

/*
 * Encode items[0..n) compressed in the index's format at 'out' (NULL: only
 * size them); see the two encoders.
 */
static Size
fr_zencode(FrState *state, IndexTuple *items, int n, Size limit, char *out)
{
	if (n <= 0 || n > PG_UINT16_MAX)
		return 0;
	if (fr_zblocks_enabled(state))
		return fr_zblocks_encode(state, items, n, limit, out);
	return fr_zsingle_encode(state, items, n, limit, out);
}

/* ------------------------------------------------------------------------
 * Reading a compressed leaf
 * ------------------------------------------------------------------------
 */

/* the header of the compressed leaf 'page', validated */
static void
fr_zheader_read(Relation index, Page page, BlockNumber blkno, FrZHeader *hdr)
{
	PageHeader	ph = (PageHeader) page;

	if (ph->pd_upper + sizeof(FrZHeader) > ph->pd_special)
		fr_report_corrupt(index, blkno, "compressed leaf: header does not fit");
	memcpy(hdr, (char *) page + ph->pd_upper, sizeof(FrZHeader));
	if (hdr->csize == 0 ||
		ph->pd_upper + sizeof(FrZHeader) + hdr->csize > ph->pd_special)
		fr_report_corrupt(index, blkno, "compressed leaf: compressed size exceeds the page");
	if (hdr->rawsize == 0 || hdr->rawsize > FR_Z_MAX_RAW || hdr->nitems == 0 ||
		hdr->rawsize < hdr->nitems * sizeof(IndexTupleData) ||
		(hdr->format != FR_Z_CONCAT && hdr->format != FR_Z_SHUFFLED &&
		 hdr->format != FR_Z_BLOCKS))
		fr_report_corrupt(index, blkno, "compressed leaf: impossible sizes in header");
	if (hdr->format == FR_Z_SHUFFLED && hdr->rawsize % hdr->nitems != 0)
		fr_report_corrupt(index, blkno, "compressed leaf: shuffled size is not a multiple of the entry count");
	if (hdr->format == FR_Z_BLOCKS &&
		(hdr->nblocks == 0 || hdr->nblocks > FR_Z_MAX_BLOCKS))
		fr_report_corrupt(index, blkno, "compressed leaf: impossible block count");
}

/*
 * Decompress the frame at 'src' (csize bytes, 'format', nitems entries of
 * rawsize bytes) into 'dst' as concatenated entries.
 */
static void
fr_zframe_decompress(Relation index, BlockNumber blkno, const char *src,
					 Size csize, uint8 format, int nitems, Size rawsize,
					 char *dst)
{
	char	   *raw = (format == FR_Z_SHUFFLED) ? palloc(rawsize) : dst;
	size_t		got;

	got = ZSTD_decompressDCtx(fr_zstd_dctx(), raw, rawsize, src, csize);
	if (ZSTD_isError(got) &&
		ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation)
		fr_zstd_oom("decompress");
	if (ZSTD_isError(got) || got != rawsize)
		fr_report_corrupt(index, blkno, "compressed leaf: zstd frame does not decompress to the recorded size");
	if (format == FR_Z_SHUFFLED)
	{
		Size		tupsize = rawsize / nitems;
		Size		j;
		int			i;

		for (i = 0; i < nitems; i++)
			for (j = 0; j < tupsize; j++)
				dst[i * tupsize + j] = raw[j * nitems + i];
		pfree(raw);
	}
}

/*
 * Point view->items at the nitems entries concatenated in 'buf' (size
 * bytes), checking that they tile it exactly.
 */
static void
fr_view_parse(Relation index, BlockNumber blkno, FrLeafView *view, char *buf,
			  Size size, int nitems)
{
	Size		pos = 0;
	int			i;

	view->buf = buf;
	view->n = nitems;
	view->items = palloc(sizeof(IndexTuple) * Max(nitems, 1));
	for (i = 0; i < nitems; i++)
	{
		IndexTuple	it = (IndexTuple) (buf + pos);
		Size		sz;

		if (pos + sizeof(IndexTupleData) > size)
			fr_report_corrupt(index, blkno, "compressed leaf: entries overrun the decompressed data");
		sz = IndexTupleSize(it);
		if (sz < sizeof(IndexTupleData) || sz > FR_MAX_ITEM_SIZE ||
			pos + sz > size || sz != MAXALIGN(sz))
			fr_report_corrupt(index, blkno, "compressed leaf: an entry has an impossible size");
		view->items[i] = it;
		pos += sz;
	}
	if (pos != size)
		fr_report_corrupt(index, blkno, "compressed leaf: entries do not fill the decompressed data");
}

/* a compressed leaf's block directory, validated; offsets from the page start */
typedef struct FrZDir
{
	int			nb;
	FrZBlock	blk[FR_Z_MAX_BLOCKS];
	Size		fence_off[FR_Z_MAX_BLOCKS];
	Size		frame_off[FR_Z_MAX_BLOCKS];
} FrZDir;

static void
fr_zdir_read(Relation index, Page page, BlockNumber blkno,
			 const FrZHeader *hdr, FrZDir *dir)
{
	Size		start = ((PageHeader) page)->pd_upper;
	Size		end = start + sizeof(FrZHeader) + hdr->csize;
	Size		fpos = start + MAXALIGN(sizeof(FrZHeader) + hdr->nblocks * sizeof(FrZBlock)),
				pos,
				rawsum = 0;
	int			b,
				nsum = 0;

	dir->nb = hdr->nblocks;
	if (fpos > end)
		fr_report_corrupt(index, blkno, "compressed leaf: block directory exceeds the page");
	memcpy(dir->blk, (char *) page + start + sizeof(FrZHeader),
		   dir->nb * sizeof(FrZBlock));

	/* the fences, then the frames, in block order */
	for (b = 0; b < dir->nb; b++)
	{
		Size		sz;

		if (fpos + sizeof(IndexTupleData) > end)
			fr_report_corrupt(index, blkno, "compressed leaf: a fence lies outside the page");
		sz = IndexTupleSize((IndexTuple) ((char *) page + fpos));
		if (sz < sizeof(IndexTupleData) || sz > FR_MAX_ITEM_SIZE ||
			sz != MAXALIGN(sz) || fpos + sz > end)
			fr_report_corrupt(index, blkno, "compressed leaf: a fence has an impossible size");
		dir->fence_off[b] = fpos;
		fpos += sz;
		rawsum += sz;
	}
	pos = fpos;
	for (b = 0; b < dir->nb; b++)
	{
		FrZBlock   *k = &dir->blk[b];
		int			m = k->nitems - 1;	/* entries in the frame */

		if (k->nitems == 0 ||
			(m == 0 && (k->format != 0 || k->rawsize != 0 || k->csize != 0)) ||
			(m > 0 && (k->csize == 0 || k->rawsize > FR_Z_MAX_RAW ||
					   k->rawsize < m * sizeof(IndexTupleData) ||
					   (k->format != FR_Z_CONCAT && k->format != FR_Z_SHUFFLED) ||
					   (k->format == FR_Z_SHUFFLED && k->rawsize % m != 0))))
			fr_report_corrupt(index, blkno, "compressed leaf: a block has impossible sizes");
		if (pos + k->csize > end)
			fr_report_corrupt(index, blkno, "compressed leaf: a frame lies outside the page");
		dir->frame_off[b] = pos;
		pos += k->csize;
		rawsum += k->rawsize;
		nsum += k->nitems;
	}
	if (pos != end || nsum != hdr->nitems || rawsum != hdr->rawsize)
		fr_report_corrupt(index, blkno, "compressed leaf: blocks do not add up to the header");
}

/*
 * The fences of the leaf 'page' (locked by the caller): each block's first
 * entry, pointing into the page.  Returns the number of blocks; 1, with
 * fences[0] NULL, for a plain or single-frame leaf (one block).
 */
int
fr_leaf_fences(Relation index, Page page, BlockNumber blkno,
			   IndexTuple *fences)
{
	FrZHeader	hdr;
	FrZDir		dir;
	int			b;

	fences[0] = NULL;
	if (!FrPageIsCompressed(page))
		return 1;
	fr_zheader_read(index, page, blkno, &hdr);
	if (hdr.format != FR_Z_BLOCKS)
		return 1;
	fr_zdir_read(index, page, blkno, &hdr, &dir);
	for (b = 0; b < dir.nb; b++)
		fences[b] = (IndexTuple) ((char *) page + dir.fence_off[b]);
	return dir.nb;
}

/*
 * Put the frames of the compressed leaf 'page' (locked by the caller) into
 * the state's memo, keyed by items[0..n), the leaf's entries as
 * fr_leaf_view gives them (block b's fence, then its frame's entries), so
 * that a write of entries that begin with them reuses each block it cuts
 * the same way instead of compressing it again: blocks are cut greedily
 * from the first entry (fr_zblock_end), so every block but the last comes
 * out the same when entries are added after the leaf's own (a spill, an
 * append of keys in order).  A frame compressed at another level is still
 * a valid frame of the same entries.  Nothing without a memo, or for a
 * plain or single-frame leaf.
 */
void
fr_zmemo_seed(FrState *state, Page page, BlockNumber blkno, IndexTuple *items,
			  int n)
{
	FrZHeader	hdr;
	FrZDir		dir;
	int			b,
				first = 0;

	if (state->zmemo == NULL || !FrPageIsCompressed(page) ||
		state->zblocks <= 0)
		return;
	fr_zheader_read(state->index, page, blkno, &hdr);
	if (hdr.format != FR_Z_BLOCKS || hdr.nitems != n)
		return;
	fr_zdir_read(state->index, page, blkno, &hdr, &dir);
	for (b = 0; b < dir.nb; b++)
	{
		int			m = dir.blk[b].nitems - 1;	/* entries in the frame */

		if (m > 0)
			fr_zmemo_put(state->zmemo, items + first + 1, m,
						 state->compression_level, dir.blk[b].format,
						 (char *) page + dir.frame_off[b],
						 dir.blk[b].csize)->seeded = true;
		first += dir.blk[b].nitems;
	}
}

/* view of the single-frame compressed leaf 'page' */
static void
fr_leaf_view_single(Relation index, Page page, BlockNumber blkno,
					const FrZHeader *hdr, FrLeafView *view)
{
	char	   *buf = palloc(hdr->rawsize);

	fr_zframe_decompress(index, blkno,
						 (char *) page + ((PageHeader) page)->pd_upper + sizeof(FrZHeader),
						 hdr->csize, hdr->format, hdr->nitems, hdr->rawsize, buf);
	fr_view_parse(index, blkno, view, buf, hdr->rawsize, hdr->nitems);
}

/*
 * Fill 'view' with the entries of blocks first..last of the compressed
 * leaf 'page' (locked by the caller), in a palloc'd copy (view->buf) that
 * stays valid after the lock is released, until fr_leaf_view_release.  A
 * single-frame leaf is one block, 0; a 'last' past the leaf's final block
 * stands for it.
 */
void
fr_leaf_view_part(Relation index, Page page, BlockNumber blkno, int first,
				  int last, FrLeafView *view)
{
	FrZHeader	hdr;
	FrZDir		dir;
	Size		size = 0,
				pos = 0;
	char	   *buf;
	int			b,
				nitems = 0;

	memset(view, 0, sizeof(FrLeafView));
	view->compressed = true;
	fr_zheader_read(index, page, blkno, &hdr);
	view->rawsize = hdr.rawsize;
	view->csize = hdr.csize;
	if (hdr.format != FR_Z_BLOCKS)
	{
		Assert(first == 0);
		fr_leaf_view_single(index, page, blkno, &hdr, view);
		return;
	}
	fr_zdir_read(index, page, blkno, &hdr, &dir);
	last = Min(last, dir.nb - 1);
	Assert(first >= 0 && first <= last);

	/* each block: its fence, then its frame's entries */
	for (b = first; b <= last; b++)
		size += IndexTupleSize((IndexTuple) ((char *) page + dir.fence_off[b])) +
			dir.blk[b].rawsize;
	buf = palloc(size);
	for (b = first; b <= last; b++)
	{
		IndexTuple	fence = (IndexTuple) ((char *) page + dir.fence_off[b]);

		memcpy(buf + pos, fence, IndexTupleSize(fence));
		pos += IndexTupleSize(fence);
		if (dir.blk[b].nitems > 1)
			fr_zframe_decompress(index, blkno, (char *) page + dir.frame_off[b],
								 dir.blk[b].csize, dir.blk[b].format,
								 dir.blk[b].nitems - 1, dir.blk[b].rawsize,
								 buf + pos);
		pos += dir.blk[b].rawsize;
		nitems += dir.blk[b].nitems;
	}
	fr_view_parse(index, blkno, view, buf, size, nitems);
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
	OffsetNumber off,
				maxoff = PageGetMaxOffsetNumber(page);

	if (FrPageIsCompressed(page))
	{
		/* every block: the header and directory are read once, there */
		fr_leaf_view_part(index, page, blkno, 0, FR_Z_MAX_BLOCKS - 1, view);
		return;
	}
	memset(view, 0, sizeof(FrLeafView));
	view->n = maxoff;
	view->items = palloc(sizeof(IndexTuple) * Max(maxoff, 1));
	for (off = FirstOffsetNumber; off <= maxoff; off++)
		view->items[off - 1] = (IndexTuple) PageGetItem(page, PageGetItemId(page, off));
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

/* ------------------------------------------------------------------------
 * Sizing and filling leaves
 * ------------------------------------------------------------------------
 */

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

/* may items be written compressed? */
static bool
fr_may_compress(FrState *state, int n, bool allow_compress)
{
	return allow_compress && state->compression == FR_COMPRESSION_ZSTD && n > 0;
}

/*
 * Do items[0..n) fit in 'target' bytes of a (non-root) leaf in the current
 * compression setting?  Plain when that fits (no compression needed to
 * tell); else compressed (compressed pages are kept within FR_Z_TARGET).
 */
bool
fr_leaf_fits_size(FrState *state, IndexTuple *items, int n, Size target)
{
	Size		zlen;

	if (fr_plain_size(items, n) <= target)
		return true;
	if (!fr_may_compress(state, n, true))
		return false;
	zlen = fr_zencode(state, items, n, Min(target, FR_Z_TARGET), NULL);
	return zlen > 0 && MAXALIGN(zlen) <= Min(target, FR_Z_TARGET);
}

/*
 * Note a leaf written that holds what 'pages' plain leaf pages would (1 for
 * a plain leaf, more for a compressed one): the backend's moving average
 * of it, by index, scales the buffer budget of level-1 nodes
 * (fr_node_budget), so that a compressed index buffers as many messages
 * per leaf entry as an uncompressed one instead of R times fewer.
 */
static void
fr_leaf_note_written(Relation index, double pages)
{
	FrAmCache  *cache = fr_amcache(index);

	if (cache->leaf_pages_each <= 0)
		cache->leaf_pages_each = 1.0;
	cache->leaf_pages_each += (Max(pages, 1.0) - cache->leaf_pages_each) / 16;
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
	Size		plain = fr_plain_size(items, n);
	Size		zlen = 0;
	int			i;

	if (fr_may_compress(state, n, allow_compress))
	{
		zlen = fr_zencode(state, items, n, FR_Z_TARGET, zbuf.data);
		if (MAXALIGN(zlen) > FR_Z_TARGET || MAXALIGN(zlen) >= plain)
			zlen = 0;
	}
	if (zlen > 0)
	{
		PageHeader	ph = (PageHeader) page;

		ph->pd_upper = ph->pd_special - MAXALIGN(zlen);
		memcpy((char *) page + ph->pd_upper, zbuf.data, zlen);
		FrPageGetOpaque(page)->flags |= FR_COMPRESSED;
		fr_leaf_note_written(state->index, (double) plain / FrPageUsable);
		return true;
	}
	if (plain > FrPageUsable)
		return false;
	fr_leaf_note_written(state->index, 1.0);
	for (i = 0; i < n; i++)
		if (PageAddItem(page, (Item) items[i], IndexTupleSize(items[i]),
						InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
			elog(ERROR, "failed to add entry to fractal leaf");
	return true;
}

/*
 * The largest k (at least 1) such that items[0..k) occupy at most 'target'
 * bytes of a (non-root) leaf in the current compression setting.  A
 * binary search above the longest prefix that fits plain; in the block
 * format each probe compresses only its last, partial block (the others
 * are the memo's), so the search costs little more than one compression
 * of the page.
 */
int
fr_leaf_max_prefix(FrState *state, IndexTuple *items, int n, Size target)
{
	FrState		mstate = *state;
	Size		plain = 0;
	int			lo = 0,
				hi;

	/* the longest prefix that fits plain */
	while (lo < n && plain + fr_item_space(items[lo]) <= target)
		plain += fr_item_space(items[lo++]);
	if (lo == n || !fr_may_compress(state, n, true))
		return Max(lo, 1);

	if (mstate.zmemo == NULL)
		mstate.zmemo = fr_zmemo_create(&mstate);
	lo = Max(lo, 1);
	if (fr_leaf_fits_size(&mstate, items, n, target))
		lo = n;
	hi = n - 1;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo + 1) / 2;

		if (fr_leaf_fits_size(&mstate, items, mid, target))
			lo = mid;
		else
			hi = mid - 1;
	}
	if (state->zmemo == NULL)
		fr_zmemo_free(mstate.zmemo);
	return lo;
}
