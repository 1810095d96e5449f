/*-------------------------------------------------------------------------
 *
 * fractal.h
 *	  Shared declarations of the fractal (B-epsilon tree) index access method.
 *
 * The on-disk format, the message flow, the flush policy, the locking order
 * and the WAL discipline are described in src/README.md; keep the two in
 * step.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRACTAL_H
#define FRACTAL_H

#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/itup.h"
#include "access/rmgr.h"
#include "access/sdir.h"
#include "access/skey.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "nodes/tidbitmap.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/lockdefs.h"
#include "utils/rel.h"
#include "utils/sortsupport.h"

/* ------------------------------------------------------------------------
 * Operator strategies and support functions (btree numbering)
 * ------------------------------------------------------------------------
 */
#define FR_NSTRATEGIES			5	/* <, <=, =, >=, > */
#define FR_NPROCS				1	/* 1 = three-way comparison */
#define FR_CMP_PROC				1

/* ------------------------------------------------------------------------
 * Page layout
 *
 * Every page is a standard PostgreSQL page with an FrPageOpaque special
 * area.  Block 0 is the metapage.  Other pages are one of:
 *
 *	LEAF	sorted (key, heap TID) index tuples; no high key, no siblings
 *	NODE	internal node: FrNodeItem array sorted by pivot; item 0's pivot is
 *			minus infinity.  A run of items starting with one flagged
 *			FR_ITEM_PART_START is a "partition"; its message chain is
 *			described on that first item.
 *	CHAIN	message buffer page: index tuples, linked to the previous
 *			(older) page of the same chain through 'link'; in key order
 *			when FR_SORTED, in arrival order otherwise (below the root, a
 *			small index's chain tail until the next page seals it; pages
 *			left by format version 1)
 *	FREE	recyclable page (also recorded in the free space map)
 * ------------------------------------------------------------------------
 */
#define FR_META_BLKNO			0

#define FR_META					(1 << 0)
#define FR_LEAF					(1 << 1)
#define FR_NODE					(1 << 2)
#define FR_CHAIN				(1 << 3)
#define FR_FREE					(1 << 4)
#define FR_ROOT					(1 << 5)	/* LEAF or NODE that is the root */
#define FR_COMPRESSED			(1 << 6)	/* LEAF stored as a zstd frame */
#define FR_SORTED				(1 << 7)	/* CHAIN: messages in key order
											 * (format version 2) */
#define FR_FILTERED				(1 << 8)	/* CHAIN: a key filter follows the
											 * opaque data (format version 3) */
#define FR_LFILTERS				(1 << 9)	/* page kind: key filters of a
											 * partition's leaves (format
											 * version 4) */

#define FR_PAGE_ID				0xFF8A	/* for pg_filedump and sanity checks */

typedef struct FrPageOpaqueData
{
	BlockNumber link;			/* CHAIN: previous (older) chain page */
	uint16		level;			/* 0 = leaf; node level otherwise */
	uint16		flags;
	uint16		unused;
	uint16		page_id;		/* always FR_PAGE_ID */
} FrPageOpaqueData;

typedef FrPageOpaqueData *FrPageOpaque;

#define FrPageGetOpaque(page) ((FrPageOpaque) PageGetSpecialPointer(page))
#define FrPageIsLeaf(page)	((FrPageGetOpaque(page)->flags & FR_LEAF) != 0)
#define FrPageIsNode(page)	((FrPageGetOpaque(page)->flags & FR_NODE) != 0)
#define FrPageIsChain(page) ((FrPageGetOpaque(page)->flags & FR_CHAIN) != 0)
#define FrPageIsFree(page)	((FrPageGetOpaque(page)->flags & FR_FREE) != 0)
#define FrPageIsRoot(page)	((FrPageGetOpaque(page)->flags & FR_ROOT) != 0)
#define FrPageIsCompressed(page) ((FrPageGetOpaque(page)->flags & FR_COMPRESSED) != 0)
#define FrPageIsSorted(page)	((FrPageGetOpaque(page)->flags & FR_SORTED) != 0)
#define FrPageIsFiltered(page)	((FrPageGetOpaque(page)->flags & FR_FILTERED) != 0)
#define FrPageIsLeafFilters(page) ((FrPageGetOpaque(page)->flags & FR_LFILTERS) != 0)

/*
 * Key filter of a buffer page (FR_FILTERED, format version 3; fr_filter.c
 * and src/README.md section 3c): a blocked Bloom filter on the first key
 * column, in the special area after FrPageOpaqueData.  Unless
 * FR_FILTER_SEG_START, it also covers every key of the older pages of its
 * segment, down to and including the segment's first page; a lookup that
 * the filter rules out then goes on at 'skip', the page after that first
 * page.
 */
typedef struct FrFilterData
{
	BlockNumber skip;			/* not SEG_START: the page older than the
								 * segment's first page (or Invalid) */
	uint32		nkeys;			/* keys summarised, this page and older */
	int16		typlen;			/* first key column's attlen */
	uint16		nbytes;			/* bytes of bits, a multiple of
								 * FR_FILTER_BLOCK */
	uint16		flags;			/* FR_FILTER_* */
	uint16		unused;
	/* nbytes of filter bits follow */
} FrFilterData;

typedef FrFilterData *FrFilter;

#define FR_FILTER_SEG_START		(1 << 0)	/* covers this page only */
#define FR_FILTER_ALL			(1 << 1)	/* a key could not be hashed:
											 * every lookup passes */
#define FR_FILTER_BLOCK			64	/* bytes per Bloom block (a cache line) */
#define FR_FILTER_K				4	/* bits set per key, all in one block */
#define FR_FILTER_BITS_PER_KEY	8	/* a segment is closed near this load */

#define FrPageGetFilter(page) \
	((FrFilter) (PageGetSpecialPointer(page) + MAXALIGN(sizeof(FrPageOpaqueData))))
#define FrFilterBits(f)			((uint8 *) (f) + sizeof(FrFilterData))

/*
 * Leaf filter page (FR_LFILTERS, format version 4; fr_leaffilter.c and
 * src/README.md section 3d): the key filters of the leaves of one
 * partition of a level-1 node, which names the page in its PART_START
 * item.  In the page contents: this header, then 'nslots' slots, each an
 * FrFilterData whose 'skip' names the leaf it summarises (Invalid: a free
 * slot) followed by 'slot_bytes' of bits.  Slot 0, whose 'skip' is 0 (the
 * metapage), summarises the partition's buffer chain instead, in
 * 'chain_bytes' of bits (more than a leaf slot: a chain holds more keys).
 * A slot contains every key of its leaf whenever the leaf is a child of
 * the partition other than the node's last; a leaf without a slot is
 * simply read.
 */
typedef struct FrLeafFiltersData
{
	uint16		nslots;
	uint16		slot_bytes;		/* bytes of bits per slot, a multiple of
								 * FR_FILTER_BLOCK */
	int16		typlen;			/* first key column's attlen */
	uint16		chain_bytes;	/* bytes of bits of slot 0, the chain slot
								 * (a multiple of FR_FILTER_BLOCK); 0 on
								 * pages made before 2026-12-05: slot_bytes */
	/* nslots slots follow: the chain slot, then nslots - 1 leaf slots */
} FrLeafFiltersData;

typedef FrLeafFiltersData *FrLeafFilters;

#define FrPageGetLeafFilters(page) ((FrLeafFilters) PageGetContents(page))
/* 'skip' of slot 0, the chain slot: the metapage, never a leaf */
#define FR_LFILTER_CHAIN		((BlockNumber) 0)

/* bytes of bits of slot i of a page laid out as 'lf' */
static inline Size
FrLeafFilterBytes(FrLeafFilters lf, int i)
{
	return (i == 0 && lf->chain_bytes != 0) ? lf->chain_bytes : lf->slot_bytes;
}

/* bytes slot i takes, header included */
static inline Size
FrLeafFilterSlotSize(FrLeafFilters lf, int i)
{
	return sizeof(FrFilterData) + FrLeafFilterBytes(lf, i);
}

/* where slot i starts, from the first slot (i = nslots: the slots' end) */
static inline Size
FrLeafFilterSlotOffset(FrLeafFilters lf, int i)
{
	return i == 0 ? 0 :
		FrLeafFilterSlotSize(lf, 0) + (Size) (i - 1) * FrLeafFilterSlotSize(lf, 1);
}

static inline FrFilter
FrLeafFilterSlot(FrLeafFilters lf, int i)
{
	return (FrFilter) ((char *) lf + MAXALIGN(sizeof(FrLeafFiltersData)) +
					   FrLeafFilterSlotOffset(lf, i));
}

/* Metapage contents, stored at the start of block 0's content area */
#define FR_MAGIC				0x46524354	/* "FRCT" */
#define FR_VERSION				5	/* 2: sorted buffer pages (FR_SORTED);
									 * 3: buffer page filters (FR_FILTERED);
									 * 4: leaf filter pages (FR_LFILTERS);
									 * 5: compressed leaves in blocks
									 * (FR_Z_BLOCKS) */
#define FR_MIN_VERSION			1	/* oldest format still read and written */

typedef struct FrMetaPageData
{
	uint32		magic;
	uint32		version;
	BlockNumber root;
	uint32		height;			/* level of the root; 0 = root is a leaf */
	uint32		buffer_pages;	/* frozen at build: node buffer budget */
	uint32		partition_children; /* frozen at build: max children per
									 * partition before it is split */
} FrMetaPageData;

typedef FrMetaPageData *FrMetaPage;

#define FrPageGetMeta(page) ((FrMetaPage) PageGetContents(page))

/*
 * Internal-node item: a fixed header followed by the pivot index tuple
 * (key columns + heap TID tiebreak in t_tid).  Item 1 of every node is the
 * minus-infinity item: its pivot is a bare IndexTupleData header with no
 * attributes and must never be deformed.
 */
typedef struct FrNodeItemData
{
	BlockNumber child;			/* child page (leaf or node one level down) */
	BlockNumber chain_tail;		/* PART_START only: newest chain page, or
								 * InvalidBlockNumber when the chain is empty */
	/*
	 * Formats 1-3 stored chain_pages as a uint32 below 2^16 and zeros in
	 * filter_lo, so an item they wrote reads here as having no leaf filter
	 * page on either byte order.
	 */
#ifdef WORDS_BIGENDIAN
	uint16		filter_hi;
	uint16		chain_pages;	/* PART_START only: pages in the chain */
#else
	uint16		chain_pages;	/* PART_START only: pages in the chain */
	uint16		filter_hi;		/* PART_START of a level-1 node only: high */
#endif
	uint16		flags;
	uint16		filter_lo;		/* ... and low half of the partition's leaf
								 * filter page (format 4), 0 = none */
	/* pivot IndexTupleData follows, MAXALIGNed */
} FrNodeItemData;

typedef FrNodeItemData *FrNodeItem;

#define FR_ITEM_PART_START		(1 << 0)
#define FR_ITEM_MINUS_INF		(1 << 1)

#define FrNodeItemHeaderSize	MAXALIGN(sizeof(FrNodeItemData))
#define FR_MAX_CHAIN_PAGES		PG_UINT16_MAX

/* the leaf filter page of a partition (its PART_START item), 0 = none */
#define FrItemGetFilter(item) \
	((BlockNumber) (((uint32) (item)->filter_hi << 16) | (item)->filter_lo))
static inline void
FrItemSetFilter(FrNodeItem item, BlockNumber blk)
{
	item->filter_hi = (uint16) (blk >> 16);
	item->filter_lo = (uint16) (blk & 0xFFFF);
}
#define FrNodeItemGetPivot(item) \
	((IndexTuple) (((char *) (item)) + FrNodeItemHeaderSize))

/* usable bytes of a page for items (line pointers included) */
#define FrPageUsable \
	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(FrPageOpaqueData)))

/*
 * Largest index tuple accepted: small enough that every node holds at least
 * eight pivots and every leaf at least eight entries, so that splits and
 * partition boundaries always exist.
 */
#define FR_MAX_ITEM_SIZE \
	MAXALIGN_DOWN(FrPageUsable / 8 - sizeof(ItemIdData) - FrNodeItemHeaderSize)

/* defaults of the tuning knobs (see fr_options.c) */
#define FR_DEFAULT_BUFFER_PAGES			256
#define FR_MIN_BUFFER_PAGES				4
#define FR_MAX_BUFFER_PAGES				4096
#define FR_DEFAULT_BUFFER_PERCENT		10
#define FR_UPPER_BUFFER_PERCENT			60	/* above level 1, index large */
#define FR_ROOT_PARTITIONS				8	/* an in-memory root's partitions
											 * (fr_root_spread) */
#define FR_MIN_BUFFER_PERCENT			1
#define FR_MAX_BUFFER_PERCENT			100
#define FR_DEFAULT_PARTITION_CHILDREN	32
#define FR_MIN_PARTITION_CHILDREN		2
#define FR_MAX_PARTITION_CHILDREN		256
#define FR_DEFAULT_FILLFACTOR			90
#define FR_MIN_FILLFACTOR				10
#define FR_COMPRESSION_NONE				0
#define FR_COMPRESSION_ZSTD				1
#define FR_COMPRESSION_AUTO				2	/* the option only: zstd once the
											 * index is large (fr_compression_for) */
#define FR_DEFAULT_COMPRESSION			FR_COMPRESSION_AUTO	/* none until
															 * 2026-12-07 */
#define FR_COMPRESSION_LEVEL_AUTO		0	/* by column types (fr_zstd_level) */
#define FR_DEFAULT_COMPRESSION_LEVEL	FR_COMPRESSION_LEVEL_AUTO	/* 3 until
																	 * 2026-12-07 */
#define FR_MIN_COMPRESSION_LEVEL		(-7)	/* zstd's fast levels */
#define FR_Z_LEVEL_FIXED				(-1)	/* auto: fixed-width columns */
#define FR_Z_LEVEL_VARYING				1	/* auto: a variable-width one */
#define FR_MAX_COMPRESSION_LEVEL		19
#define FR_DEFAULT_FILTER_BYTES			1024
#define FR_MAX_FILTER_BYTES				(BLCKSZ / 2)	/* 4096 at 8 kB */

/* a node with less free space than this is split before it is flushed into */
#define FR_NODE_SPLIT_FREE		(FrPageUsable / 4)

/* reloptions */
typedef struct FrOptions
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int			buffer_pages;	/* cap of a node's buffer budget, pages */
	int			buffer_percent; /* budget as a percentage of the children */
	int			partition_children; /* children per buffer partition */
	int			fillfactor;		/* leaf fill for CREATE INDEX */
	int			compression;	/* FR_COMPRESSION_* for leaves written */
	int			compression_level;	/* zstd level */
	int			filter_bytes;	/* key filter per buffer page; 0 = none */
} FrOptions;

/*
 * Compressed leaf (see fr_compress.c): at pd_upper, this header and then
 * either one zstd frame of the entries (FR_Z_CONCAT, FR_Z_SHUFFLED: the
 * single-frame format, the only one before format version 5) or, with
 * FR_Z_BLOCKS, a directory of 'nblocks' FrZBlock, each block's first entry
 * stored plain (its "fence"), and one zstd frame per block of the block's
 * other entries, so that a reader decompresses only the blocks it needs.
 */
typedef struct FrZHeader
{
	uint16		nitems;			/* entries in the leaf */
	uint8		format;			/* FR_Z_CONCAT, FR_Z_SHUFFLED or FR_Z_BLOCKS */
	uint8		nblocks;		/* FR_Z_BLOCKS: blocks; otherwise 0 */
	uint32		rawsize;		/* bytes of all entries, uncompressed */
	uint32		csize;			/* bytes after this header */
} FrZHeader;

typedef struct FrZBlock
{
	uint16		nitems;			/* entries, the fence included */
	uint8		format;			/* the frame's: FR_Z_CONCAT or FR_Z_SHUFFLED;
								 * 0 when the fence is the only entry */
	uint8		unused;
	uint32		rawsize;		/* bytes of the frame's entries (not the fence) */
	uint32		csize;			/* bytes of the frame */
} FrZBlock;

#define FR_Z_CONCAT				1
#define FR_Z_SHUFFLED			2
#define FR_Z_BLOCKS				3
#define FR_Z_MAX_RAW			(8 * BLCKSZ)
#define FR_Z_BLOCK_RAW			(BLCKSZ / 2)	/* entry bytes per block, at most
											 * (unless one entry is larger) */
#define FR_Z_MAX_BLOCKS			32

/* scratch of the compressed frames a leaf write computed (fr_compress.c) */
typedef struct FrZMemo FrZMemo;

/* the entries of a leaf, whatever its format */
typedef struct FrLeafView
{
	IndexTuple *items;
	int			n;
	bool		compressed;
	char	   *buf;			/* decompressed data, if compressed */
	Size		rawsize;
	Size		csize;
} FrLeafView;

/*
 * What an index keeps in rd_amcache (per backend): a copy of the metapage,
 * the relation size last seen, and how many inserts in a row went to the
 * root's last child.  All may be stale; see their users.
 */
/*
 * A backend's record of where a page of an index was last found in shared
 * buffers (fr_read_buffer): direct mapped by block number, nodes, buffer
 * pages and leaf filter pages only.
 */
#define FR_RECENT_SLOTS		1024
typedef struct FrRecentBuffer
{
	BlockNumber blkno;
	Buffer		buf;			/* InvalidBuffer: slot unused */
} FrRecentBuffer;

typedef struct FrAmCache
{
	FrMetaPageData meta;
	bool		meta_valid;
	BlockNumber nblocks;
	uint32		rightmost_run;
	int8		filter_support; /* fr_filter_supported: 0 unknown, 1, -1 */
	bool		ssup_known;		/* ssup_proc/ssup_cmp filled */
	Oid			ssup_proc[INDEX_MAX_KEYS];	/* btree sort support function */
	Oid			ssup_cmp[INDEX_MAX_KEYS];	/* comparison function, or
											 * Invalid: no sort support */
	uint32		recent_reads;	/* fr_read_buffer calls, for the bumps */
	FrRecentBuffer recent[FR_RECENT_SLOTS];
	float4		leaf_pages_each;	/* plain leaf pages the leaves this
									 * backend wrote would have taken, per
									 * leaf (moving average; 0 = none
									 * written yet, read as 1) */
} FrAmCache;

/* CREATE INDEX progress subphases (after PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE) */
#define FR_PHASE_TABLESCAN		2
#define FR_PHASE_SORT			3
#define FR_PHASE_LOAD			4

/* consecutive rightmost inserts after which they go straight to the leaf */
#define FR_RIGHTMOST_RUN		100

/*
 * Where the messages of a flushed chain were read from (fr_read_chain), so
 * that appending them to a child's chain can be logged as a move naming
 * them instead of copying their bytes (fr_move_items, src/README.md
 * section 6)
 */
typedef struct FrMoveSrc
{
	IndexTuple	msg;			/* the flush's copy of the message */
	uint32		page;			/* its chain page: an index into blocks */
	OffsetNumber off;			/* its offset on that page */
} FrMoveSrc;

typedef struct FrMoveMap
{
	FrMoveSrc  *src;			/* one per message read, by msg address */
	int			n;
	int			cap;
	BlockNumber *blocks;		/* the chain's pages, newest first */
	XLogRecPtr *lsn;			/* ... and each one's LSN (kept current) */
	int			nblocks;
} FrMoveMap;

/* ------------------------------------------------------------------------
 * Per-index state used by inserts, flushes and scans
 * ------------------------------------------------------------------------
 */
typedef struct FrState
{
	Relation	index;
	TupleDesc	tupdesc;
	int			nkeys;
	int16		key1_len;		/* > 0: column 1 is fixed-length, by value,
								 * compared through ssup[0] (the fast path
								 * of fr_compare_keys) */
	int			buffer_pages;
	int			buffer_percent;
	int			partition_children;
	int			fillfactor;
	int			compression;
	int			compression_level;	/* zstd level in use (fr_zstd_level) */
	/* set for a leaf write: frames compressed to plan it, reused to fill */
	FrZMemo    *zmemo;
	int8		zblocks;		/* compressed leaves in blocks: 1 yes, -1 no,
								 * 0 ask the metapage (fr_compress.c) */
	/* set only while bulk delete flushes: entries it reports dead are dropped */
	IndexBulkDeleteCallback vac_callback;
	void	   *vac_callback_state;
	double		vac_removed;	/* entries so dropped */
	/* set only while a flush appends to child chains (fr_flush_partition) */
	FrMoveMap  *moves;

	/*
	 * Per key column, last: fr_init_state fills entries [0, nkeys) only
	 * (zeroing all of them cost every lookup and insert 4 kB of stores).
	 */
	FmgrInfo	cmp[INDEX_MAX_KEYS];
	SortSupportData ssup[INDEX_MAX_KEYS];	/* used when use_ssup[i] */
	bool		use_ssup[INDEX_MAX_KEYS];
	Oid			collation[INDEX_MAX_KEYS];
	bool		desc[INDEX_MAX_KEYS];
	bool		nulls_first[INDEX_MAX_KEYS];
} FrState;

/* A (key, TID) entry held in backend memory */
typedef struct FrEntry
{
	IndexTuple	itup;			/* palloc'd copy */
} FrEntry;

/* bytes an item takes on a page, line pointer included */
static inline Size
fr_item_space(IndexTuple itup)
{
	return MAXALIGN(IndexTupleSize(itup)) + sizeof(ItemIdData);
}

/* ------------------------------------------------------------------------
 * Prototypes, by layer: page -> node/chain -> insert/flush/split ->
 * scan/vacuum/build -> check/stats.  AM callbacks are named fr<callback>
 * (as nbtree's bt<callback>); internals fr_<name>.
 * ------------------------------------------------------------------------
 */

/* fractal_am.c */
extern Datum fractal_handler(PG_FUNCTION_ARGS);

/* fr_options.c: reloptions, settings, cost estimate, build phase names */
extern bool fr_scan_prefetch;
extern void fr_init_gucs(void);
extern void fr_init_reloptions(void);
extern bytea *froptions(Datum reloptions, bool validate);
extern void frcostestimate(PlannerInfo *root, IndexPath *path,
						   double loop_count, Cost *indexStartupCost,
						   Cost *indexTotalCost, Selectivity *indexSelectivity,
						   double *indexCorrelation, double *indexPages);
extern char *frbuildphasename(int64 phasenum);

/* fr_compare.c: key order */
extern void fr_init_state(FrState *state, Relation index);
extern int	fr_zstd_level(TupleDesc tupdesc, int level);
extern int	fr_compression_option(Relation index);
extern int	fr_compression_for(int opt, BlockNumber blocks);
extern int	fr_compare_tuples(FrState *state, IndexTuple a, IndexTuple b);
extern int	fr_compare_keys(FrState *state, IndexTuple a, IndexTuple b);
extern void fr_sort_entries(FrState *state, IndexTuple *items, int nitems);
extern int	fr_dedup_sorted(FrState *state, IndexTuple *items, int nitems);

/* fr_page.c: page layout, metapage, node items, page allocation */
extern void fr_init_page(Page page, uint16 flags, uint16 level);
extern void fr_init_metapage(Page page, BlockNumber root, uint32 height,
							 int buffer_pages, int partition_children);
extern void fr_check_page(Relation index, Page page, BlockNumber blkno);
extern void fr_report_corrupt(Relation index, BlockNumber blkno,
							  const char *detail) pg_attribute_noreturn();
extern Buffer fr_read_chain_buffer(Relation index, BlockNumber blkno, int mode);
extern Buffer fr_new_buffer(Relation index);
extern void fr_free_page_in_place(Page page);
extern void fr_record_free_page(Relation index, BlockNumber blkno);
extern Buffer fr_read_buffer(Relation index, BlockNumber blkno, int mode);
extern bool fr_prefetch_buffer(Relation index, BlockNumber blkno);
extern void fr_warm_buffer(Relation index, BlockNumber blkno);
extern bool fr_index_large(Relation index);
extern bool fr_blocks_large(BlockNumber blocks);
extern BlockNumber fr_index_blocks(Relation index);
extern bool fr_buffer_cached(Relation index, BlockNumber blkno);
extern Buffer fr_read_kind_buffer(Relation index, BlockNumber blkno, int mode,
								  uint16 kind, const char *what);
extern FrMetaPageData fr_get_meta(Relation index);
extern BlockNumber fr_get_root(Relation index, uint32 *height, bool refresh);
extern bool fr_is_fractal_index(Relation rel);
extern FrAmCache *fr_amcache(Relation index);
extern FrNodeItem fr_make_node_item(IndexTuple pivot, BlockNumber child,
									uint16 flags, Size *size);
extern FrNodeItem fr_node_get_item(Page page, OffsetNumber off);
extern OffsetNumber fr_node_partition_start(Page page, OffsetNumber off);
extern OffsetNumber fr_node_partition_end(Page page, OffsetNumber start);
extern void fr_build_empty_index(Relation index, ForkNumber fork);

/* fr_filter.c: key filters of buffer pages */
extern bool fr_filter_supported(Relation index);
extern void fr_filter_prepare(Relation index);
extern int	fr_filter_page_bytes(Relation index);
extern void fr_filter_init_page(Page page, int nbytes, int16 typlen, Page pred);
extern void fr_filter_add_tuples(Page page, IndexTuple *tups, int n);
extern bool fr_filter_key_hash(Relation index, Oid keytype, Datum value,
							   uint64 *hash);
extern bool fr_filter_may_contain(Page page, uint64 h);
extern BlockNumber fr_filter_next(Page page);
extern bool fr_filter_contains_tuple(FrFilter f, IndexTuple itup);
extern void fr_filter_add_keys(FrFilter f, IndexTuple *tups, int n);
extern bool fr_filter_test_hash(FrFilter f, uint64 h);

/* fr_leaffilter.c: key filters of leaves, beside level-1 nodes */
extern bool fr_lfilter_enabled(Relation index);
extern bool fr_lfilter_page_valid(Relation index, Page page);
extern bool fr_lfilter_slots_valid(Page page);
extern Buffer fr_lfilter_read(Relation index, BlockNumber fblk, int mode);
extern void fr_lfilter_init_page(FrState *state, Page fp, bool chain_empty);
extern Buffer fr_lfilter_lock(FrState *state, Buffer nodebuf, OffsetNumber partoff);
extern void fr_lfilter_split(FrState *state, Buffer nodebuf,
							 OffsetNumber oldstart, OffsetNumber newstart);
extern bool fr_lfilter_set(Page fpage, Page np, OffsetNumber partoff,
						   BlockNumber leaf, IndexTuple *items, int n, bool keep);
/*
 * A leaf filter slot that is to take the keys of an in-place leaf addition
 * in the addition's own record (fr_lfilter_before_add, fr_page_add_items)
 */
typedef struct FrSlotAdd
{
	Buffer		fbuf;			/* the leaf filter page, exclusively locked,
								 * or InvalidBuffer: nothing to add */
	int			slot;			/* the leaf's slot on it */
} FrSlotAdd;

extern void fr_lfilter_before_add(FrState *state, Buffer nodebuf,
								  OffsetNumber off, IndexTuple *old, int nold,
								  IndexTuple *newi, int n, FrSlotAdd *defer);
extern void fr_lfilter_forget(Relation index, Buffer fbuf, BlockNumber *leaves,
							  int n);
extern bool fr_lfilter_chain_append(FrState *state, Buffer nodebuf,
									OffsetNumber partoff, IndexTuple *msgs, int n);
extern void fr_lfilter_chain_add(FrState *state, Buffer nodebuf,
								 OffsetNumber partoff, IndexTuple *msgs, int n);
extern void fr_lfilter_chain_reset(FrState *state, Buffer nodebuf,
								   OffsetNumber partoff);
extern bool fr_lfilter_worth_reading(Relation index, Page page,
									 OffsetNumber off, bool *cold);
extern void fr_lfilter_probe(Relation index, Page page, OffsetNumber off,
							 uint64 h, bool *chain_may, bool *leaf_may);

/* fr_compress.c: leaf formats (plain, zstd) and the leaf view */
extern void fr_leaf_view(Relation index, Page page, BlockNumber blkno,
						 FrLeafView *view);
extern void fr_leaf_view_release(FrLeafView *view);
extern bool fr_leaf_fill(FrState *state, Page page, IndexTuple *items, int n,
						 bool allow_compress);
extern int	fr_leaf_max_prefix(FrState *state, IndexTuple *items, int n,
							   Size target);
extern bool fr_leaf_fits_size(FrState *state, IndexTuple *items, int n,
							  Size target);
extern FrZMemo *fr_zmemo_create(FrState *state);
extern void fr_zmemo_seed(FrState *state, Page page, BlockNumber blkno,
						  IndexTuple *items, int n);
extern void fr_zmemo_free(FrZMemo *memo);
extern int	fr_leaf_fences(Relation index, Page page, BlockNumber blkno,
						   IndexTuple *fences);
extern void fr_leaf_view_part(Relation index, Page page, BlockNumber blkno,
							  int first, int last, FrLeafView *view);

/* fr_xlog.c: the custom resource manager, and logged item additions */
extern bool fr_custom_wal;
extern int	fr_wal_image_compression;

/*
 * fractal.wal_image_compression = auto: images of pages a record logs whole
 * (new or rewritten pages) compressed with the fast method, images a
 * checkpoint causes with the best (fr_xlog.c); outside WalCompression
 */
#define FR_IMAGES_AUTO		100

/* the best image compression this server was built with (smallest images) */
#if defined(USE_ZSTD)
#define FR_BEST_IMAGE_COMPRESSION	WAL_COMPRESSION_ZSTD
#elif defined(USE_LZ4)
#define FR_BEST_IMAGE_COMPRESSION	WAL_COMPRESSION_LZ4
#else
#define FR_BEST_IMAGE_COMPRESSION	WAL_COMPRESSION_PGLZ
#endif
extern int	fr_image_compression_push(bool whole);
extern void fr_image_compression_pop(int saved);
extern void fr_image_compression_reset(void);
extern XLogRecPtr fr_xlog_insert(RmgrId rmid, uint8 info);
extern XLogRecPtr fr_xlog_insert_whole(RmgrId rmid, uint8 info);
extern Page fr_generic_register_whole(GenericXLogState *xs, Buffer buf);
extern XLogRecPtr fr_generic_finish(GenericXLogState *xs);
extern void fr_generic_abort(GenericXLogState *xs);
extern void fr_lfilter_write_slots(Relation index, Buffer buf, Page copy);
extern void fr_lfilter_write_slot(Relation index, Buffer buf, int slot,
								  const char *image);
extern void fr_xlog_register(void);

/* a leaf split prepared in local pages, for fr_write_leaf_split */
typedef struct FrLeafSplitWrite
{
	Buffer		nodebuf,		/* level-1 node, old leaf, new leaf and */
				lbuf,			/* leaf filter page (or InvalidBuffer), */
				rbuf,			/* all exclusively locked */
				fbuf;
	Page		node,			/* ... and their new contents */
				leaf,
				right,
				filters;
	OffsetNumber off;			/* the old leaf's item in the node */
	FrNodeItem	pitem;			/* the new leaf's item, added at off + 1 */
	Size		pitem_sz;
	uint16		nold;			/* the old leaf's entries before */
	uint16		nleft;			/* ... and after */
	char	   *leafdata;		/* bitmap and new entries (fr_xlog.h) */
	Size		leafdata_len;
} FrLeafSplitWrite;
extern void fr_write_leaf_split(Relation index, FrLeafSplitWrite *w);
extern void fr_page_add_items(Relation index, Buffer buf, IndexTuple *tups,
							  OffsetNumber *offs, int n);
extern void fr_leaf_add_items(Relation index, Buffer buf, IndexTuple *tups,
							  OffsetNumber *offs, int n, FrSlotAdd *slot);
extern void fr_page_check_room(Page page, IndexTuple *tups, int n);
extern void fr_page_put_items(Page page, IndexTuple *tups, OffsetNumber *offs,
							  int n, int elevel);
extern void fr_page_put_items_slot(Buffer buf, IndexTuple *tups,
								   OffsetNumber *offs, int n, FrSlotAdd *slot);

/* fr_move.c: what a flush adds to a child, logged as moves */
extern bool fr_move_items(FrState *state, Buffer buf, IndexTuple *tups,
						  OffsetNumber *offs, int n, FrSlotAdd *slot);

/* fr_node.c: node search, leaf search, budgets, chains, the flush lock */
typedef bool (*FrPivotTest) (void *arg, IndexTuple pivot);
typedef IndexTuple (*FrEntryGetter) (void *arg, int i);
/* returns true when the walk may skip the rest of the page's filter segment */
typedef bool (*FrChainVisitor) (void *arg, Page page, BlockNumber blkno);

extern bool fr_flush_lock(Relation index, LOCKMODE mode, bool wait);
extern Buffer fr_lock_root(Relation index, int mode);
extern void fr_flush_unlock(Relation index, LOCKMODE mode);
extern bool fr_scan_lock(Relation index, LOCKMODE mode, bool wait);
extern void fr_scan_unlock(Relation index, LOCKMODE mode);
extern bool fr_root_flush_lock(Relation index, bool wait);
extern void fr_root_flush_unlock(Relation index);
extern OffsetNumber fr_node_search(Page page, FrPivotTest test, void *arg);
extern OffsetNumber fr_node_find_child(FrState *state, Page page,
									   IndexTuple key);
extern OffsetNumber fr_node_find_child_last_first(FrState *state, Page page,
												  IndexTuple key);
extern IndexTuple fr_page_entry(void *arg, int i);
extern IndexTuple fr_array_entry(void *arg, int i);
extern int	fr_lower_bound(FrState *state, IndexTuple key, int n,
						   FrEntryGetter get, void *arg);
extern int	fr_lower_bound_from(FrState *state, IndexTuple key, int from, int n,
								FrEntryGetter get, void *arg);
extern OffsetNumber fr_leaf_search(FrState *state, Page page, IndexTuple key);
extern OffsetNumber fr_leaf_search_last_first(FrState *state, Page page,
											  IndexTuple key);
extern int	fr_node_buffer_pages(Page page);
extern int	fr_node_partitions(Page page);
extern bool fr_root_spread(FrState *state, Page page);
extern int	fr_node_budget(FrState *state, Page page);
extern bool fr_node_over_budget(FrState *state, Page page);
extern int	fr_partition_limit(FrState *state, Size item_space, int level);
extern double fr_leaf_scale(Relation index);
extern OffsetNumber fr_fullest_partition(Page page);
extern bool fr_chain_costs_read(Relation index, FrNodeItem pitem);
extern void fr_chain_walk(Relation index, BlockNumber tail, uint32 npages,
						  FrChainVisitor visit, void *arg);
extern IndexTuple *fr_read_chain(Relation index, FrNodeItem pitem, int *nmsgs,
								 BlockNumber **blocks, int *nblocks,
								 FrMoveMap *moves);
extern FrMoveSrc *fr_move_map_find(FrMoveMap *m, IndexTuple msg);
extern int	fr_count_fitting(IndexTuple *msgs, int n, Size avail);
extern void fr_chain_tail_add(FrState *state, Buffer tbuf, IndexTuple *msgs,
							  int n, FrSlotAdd *slot);
extern void fr_chain_append(FrState *state, Buffer nodebuf,
							OffsetNumber partoff, IndexTuple *msgs, int nmsgs,
							bool sorted);
extern void fr_chain_release(Relation index, Buffer nodebuf,
							 OffsetNumber partoff, BlockNumber *blocks,
							 int nblocks);
extern void fr_chain_replace(FrState *state, Buffer nodebuf,
							 OffsetNumber partoff, BlockNumber *blocks,
							 int nblocks, IndexTuple *msgs, int n);
extern bool fr_chain_seal_tail(FrState *state, Buffer nodebuf,
							   OffsetNumber partoff);
extern void fr_chain_empty_pages(Relation index, BlockNumber *blocks,
								 int nblocks);
extern int	fr_chain_find_seal(Relation index, FrNodeItem pitem,
							   BlockNumber seal, BlockNumber *behind);
extern bool fr_chain_cut_behind(Relation index, Buffer nodebuf,
								OffsetNumber partoff, BlockNumber seal);

/* fr_insert.c: aminsert */
extern bool frinsert(Relation index, Datum *values, bool *isnull,
					 ItemPointer ht_ctid, Relation heapRel,
					 IndexUniqueCheck checkUnique, bool indexUnchanged,
					 struct IndexInfo *indexInfo);
extern IndexTuple fr_form_tuple(FrState *state, Datum *values, bool *isnull,
								ItemPointer tid);
extern void fr_insert_tuple(FrState *state, IndexTuple itup);
extern void fr_insert_batch(FrState *state, IndexTuple *msgs, int n);

/* fr_pending.c: batched inserts of plain indexes, appended before commit */
extern bool fr_batch_inserts;
extern bool fr_pending_applies(Relation index, IndexUniqueCheck checkUnique,
							   Relation heap, ItemPointer tid,
							   bool *heap_checked, bool *heap_may_speculate);
extern bool fr_pending_add(Relation index, IndexTuple itup);
extern void fr_pending_flush_index(Relation index);
extern void fr_pending_register(void);

/* fr_unique.c: uniqueness checks (UNIQUE indexes) */
typedef struct FrUnique
{
	bool		ready;			/* filled by fr_unique_init */
	Oid			eqproc[INDEX_MAX_KEYS]; /* '=' of each key column */
	bool		has_hash[INDEX_MAX_KEYS];
	FmgrInfo	hash[INDEX_MAX_KEYS];	/* its type's hash function */
} FrUnique;

extern void fr_unique_init(FrUnique *u, Relation index);
extern int	fr_unique_precheck_start(IndexScanDesc scan, FrState *state,
									 uint64 *id);
extern void fr_unique_precheck_end(int slot, uint64 id, bool found);
extern bool fr_unique_applies(FrState *state, IndexTuple itup);
extern bool fr_unique_insert(FrUnique *u, FrState *state, Relation heap,
							 IndexTuple itup, IndexUniqueCheck mode);
extern void fr_unique_report(FrState *state, Relation heap, IndexTuple itup,
							 bool building);

/* fr_onconflict.c: ON CONFLICT arbiters (an ExecutorStart hook) */
extern void fr_onconflict_register(void);

/* fr_flush.c: moving messages down */

/* result of flushing one partition */
typedef struct FrFlushResult
{
	List	   *overfull;		/* child node blocks now over budget */
	bool		node_full;		/* the node ran out of room for pivots */
	bool		parent_shared;	/* the node is only share-locked: children
								 * short of room are not split but go to
								 * 'splits' */
	List	   *splits;			/* FrSplitRequests of such children */
} FrFlushResult;

/* a request to split the node at 'level' covering 'key' */
typedef struct FrSplitRequest
{
	IndexTuple	key;
	int			level;
} FrSplitRequest;

extern void fr_maintain(FrState *state, BlockNumber start);
extern int	fr_flush_apply(FrState *state, Buffer nodebuf, IndexTuple *msgs,
						   int n, FrFlushResult *res);
extern FrSplitRequest *fr_split_request(Page page);
extern void fr_flush_partition(FrState *state, Buffer nodebuf,
							   OffsetNumber partoff, FrFlushResult *res);
extern void fr_flush_toward(FrState *state, IndexTuple key);
extern int	fr_child_run(FrState *state, Page page, IndexTuple *msgs, int from,
						 int n, OffsetNumber *off);
extern int	fr_partition_run(FrState *state, Page page, IndexTuple *msgs,
							 int from, int n, OffsetNumber *part);

/* fr_rootflush.c: the in-memory root's flush under a share lock */
extern bool fr_root_flush_shared(FrState *state, BlockNumber blkno,
								 List **todo, List **splits);

/* fr_flushread.c: reading what a flush will touch before it needs it */
extern void fr_flush_prefetch(FrState *state, Buffer nodebuf,
							  OffsetNumber partoff, IndexTuple *msgs, int n);
extern void fr_flush_warm(FrState *state, BlockNumber blkno, IndexTuple key);

/* fr_split.c: leaf rewrites and splits, node splits, root growth */
extern int	fr_leaf_rewrite(FrState *state, Buffer nodebuf, OffsetNumber off,
							Buffer lbuf, IndexTuple *old, int nold,
							IndexTuple *newi, int nn);
extern bool fr_leaf_past_end(FrState *state, Page page, BlockNumber blkno,
							 IndexTuple itup);
extern bool fr_leaf_spill_left(FrState *state, Buffer nodebuf, OffsetNumber off,
							   Buffer pbuf, IndexTuple itup);
extern bool fr_leaf_close_right(FrState *state, Buffer nodebuf, OffsetNumber off,
								Buffer pbuf, IndexTuple itup);
extern bool fr_split_node(FrState *state, Buffer pbuf, OffsetNumber poff,
						  Buffer cbuf, Buffer metabuf);
extern void fr_split_descend(FrState *state, IndexTuple key, int level);
extern void fr_partition_maybe_split(FrState *state, Buffer nodebuf,
									 OffsetNumber start);
extern bool fr_partition_too_wide(FrState *state, Page page,
								  OffsetNumber start);
extern void fr_partition_split_at(FrState *state, Buffer nodebuf,
								  OffsetNumber start, OffsetNumber at);
extern void fr_split_root_leaf(FrState *state, IndexTuple itup);

/* fr_scan.c: amgettuple, amgetbitmap */
extern IndexScanDesc frbeginscan(Relation r, int nkeys, int norderbys);
extern void frrescan(IndexScanDesc scan, ScanKey scankey, int nscankeys,
					 ScanKey orderbys, int norderbys);
extern bool frgettuple(IndexScanDesc scan, ScanDirection dir);
extern int64 frgetbitmap(IndexScanDesc scan, TIDBitmap *tbm);
extern void frendscan(IndexScanDesc scan);
extern void frmarkpos(IndexScanDesc scan);
extern void frrestrpos(IndexScanDesc scan);
extern bool frcanreturn(Relation index, int attno);
extern void fr_scan_set_internal(IndexScanDesc scan);

/* fr_heapprefetch.c: heap reads started ahead of index and index-only scans */
#define FR_DEFAULT_HEAP_PREFETCH	8	/* fractal.heap_prefetch */
#define FR_MAX_HEAP_PREFETCH		1000	/* as effective_io_concurrency */
#define FR_DEFAULT_HEAP_PREFETCH_MIN_US	20	/* fractal.heap_prefetch_min_us */

typedef struct FrHeapPrefetch	/* zeroed by frbeginscan */
{
	int			state;			/* undecided, off or on (fr_heapprefetch.c) */
	int			returned;		/* entries returned since amrescan */
	int			hits;			/* prefetches in a row that found the block
								 * in shared buffers */
	bool		stopped;		/* so many that this scan stopped */
	bool		positioned;		/* 'next' is set for the current chunk */
	int			next;			/* next chunk entry to prefetch */
	BlockNumber last;			/* last heap block prefetched */
	BlockNumber nblocks;		/* heap blocks when the scan decided */
	Buffer		vmbuf;			/* visibility map page an index-only scan
								 * keeps pinned, or InvalidBuffer */
	instr_time	first_at;		/* when the first entry was returned */
} FrHeapPrefetch;

extern int	fr_heap_prefetch_distance;
extern int	fr_heap_prefetch_min_us;
extern void fr_heap_prefetch_rescan(FrHeapPrefetch *hp);
extern void fr_heap_prefetch_chunk(FrHeapPrefetch *hp);
extern void fr_heap_prefetch_end(FrHeapPrefetch *hp);
extern void fr_heap_prefetch(IndexScanDesc scan, FrHeapPrefetch *hp,
							 IndexTuple *items, int nitems, int cur, bool fwd);

/* fr_arraykeys.c: '=' array keys (amsearcharray) */
typedef struct FrArrayKey
{
	int			keyno;			/* its scan key in scan->keyData */
	int			nelems;
	int			cur;			/* the current element */
	Datum	   *elems;			/* sorted in index order, distinct */
} FrArrayKey;

typedef struct FrArrayKeys
{
	int			n;
	FrArrayKey	keys[FLEXIBLE_ARRAY_MEMBER];	/* by column */
} FrArrayKeys;

extern FrArrayKeys *fr_array_keys_prepare(IndexScanDesc scan, FrState *state,
										  MemoryContext cxt, bool *empty);
extern void fr_array_keys_start(IndexScanDesc scan, FrArrayKeys *ak,
								ScanDirection dir);
extern bool fr_array_keys_advance(IndexScanDesc scan, FrArrayKeys *ak,
								  ScanDirection dir);
extern void fr_array_keys_save(FrArrayKeys *ak, int *pos);
extern void fr_array_keys_restore(IndexScanDesc scan, FrArrayKeys *ak,
								  const int *pos);

/* fr_build.c: ambuild, ambuildempty */
extern IndexBuildResult *frbuild(Relation heap, Relation index,
								 struct IndexInfo *indexInfo);
extern void frbuildempty(Relation index);

/* fr_vacuum.c: ambulkdelete, amvacuumcleanup */
extern IndexBulkDeleteResult *frbulkdelete(IndexVacuumInfo *info,
										   IndexBulkDeleteResult *stats,
										   IndexBulkDeleteCallback callback,
										   void *callback_state);
extern IndexBulkDeleteResult *frvacuumcleanup(IndexVacuumInfo *info,
											  IndexBulkDeleteResult *stats);

/* fr_validate.c: amvalidate */
extern bool frvalidate(Oid opclassoid);

/* fr_counters.c: cluster-wide activity counters (preloaded only) */
typedef enum FrCounter
{
	FR_CTR_FLUSHES,				/* partition flushes */
	FR_CTR_FLUSHED_MESSAGES,	/* messages they took from chains (deduped) */
	FR_CTR_CHAIN_MESSAGES,		/* of those, appended to a child's chain */
	FR_CTR_LEAF_MESSAGES,		/* of those, new entries merged into leaves */
	FR_CTR_LEAF_WRITES,			/* leaf visits that changed the leaf */
	FR_CTR_FLUSH_BLOCKS_READ,	/* blocks flushes read from outside shared
								 * buffers */
	FR_CTR_UNIQUE_CHECKS,		/* uniqueness checks that looked the key up */
	FR_CTR_UNIQUE_SKIPPED,		/* ... skipped: a pre-check proved it absent */
	FR_CTR_LEAF_FILTER_PROBES,	/* lookups that tested a leaf filter page */
	FR_CTR_LEAF_FILTER_SKIPS,	/* ... and so did not read the leaf */
	FR_CTR_CHAIN_FILTER_SKIPS,	/* ... and did not read the partition's
								 * chain */
	FR_CTR_FLUSH_PREFETCHES,	/* reads flushes started ahead of need
								 * (blocks not in shared buffers) */
	FR_CTR_FLUSH_WARM_READS,	/* blocks read by fr_flush_warm before the
								 * node was locked exclusively */
	FR_CTR_NODE_READS,			/* blocks fr_read_buffer read from outside
								 * shared buffers, by what they held: */
	FR_CTR_CHAIN_READS,			/* ... buffer (chain) pages */
	FR_CTR_FILTER_READS,		/* ... leaf filter pages */
	FR_CTR_LEAF_READS,			/* ... leaves (internal nodes above) */
	FR_CTR_LEAF_FILTER_BYPASSES,	/* lookups expecting a hit that read no
									 * leaf filter page: it was not in
									 * shared buffers and the chain cost
									 * nothing (fr_lfilter_worth_reading) */
	FR_CTR_SCAN_LEAF_PREFETCHES,	/* descents of scans that started their
									 * leaf's read before reading the leaf
									 * filter page or chain (fr_descend) */
	FR_CTR_BATCH_APPENDS,		/* batches of waiting inserts appended
								 * (fr_pending.c) */
	FR_CTR_BATCHED_INSERTS,		/* entries they held */
	FR_CTR_RIGHTMOST_INSERTS,	/* entries the rightmost fast path added
								 * straight to the rightmost leaf, singly
								 * or a batch's run per record
								 * (fr_insert_rightmost_run) */
	FR_CTR_ZBLOCKS_READ,		/* blocks of compressed leaves scans
								 * decompressed (fr_collect_leaf) */
	FR_CTR_ZBLOCKS_SKIPPED,		/* ... and left compressed: outside the
								 * window */
	FR_CTR_ROOT_SHARED_FLUSHES,	/* root flushes done under a share lock
								 * (fr_rootflush.c) */
	FR_CTR_RIGHTMOST_SPILLS,	/* full plain rightmost leaves moved into
								 * their left sibling (fr_leaf_spill_left) */
	FR_CTR_ZBLOCKS_KEPT,		/* blocks of compressed leaves a rewrite kept
								 * as they were (fr_zmemo_seed) */
	FR_CTR_HEAP_PREFETCHES,		/* heap blocks index scans started reading
								 * ahead (fr_heapprefetch.c) */
	FR_NCOUNTERS
} FrCounter;
extern void fr_counters_register(void);
extern void fr_count(FrCounter c, uint64 n);
extern void fr_count_page_read(Page page);
extern bool fr_key_changes(uint32 hash, uint64 *count);
extern void fr_key_changed(uint32 hash);
extern uint64 fr_blocks_read_so_far(void);

#endif							/* FRACTAL_H */
