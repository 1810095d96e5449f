/*-------------------------------------------------------------------------
 *
 * fr_xlog.h
 *	  WAL records of the fractal index.
 *
 * Two forms of WAL are written (src/README.md section 6):
 *
 * 1. Records of the custom resource manager "fractal" (FR_RMGR_ID), only
 *	  when the library was loaded through shared_preload_libraries.  They are
 *	  defined here.
 *
 * 2. Generic WAL (access/generic_xlog.h) for everything else, at most four
 *	  pages a record, registered top-down (parent before child, metapage
 *	  first).  The steps, and the pages each registers:
 *
 *	  step								pages (in registration order)
 *	  --------------------------------	--------------------------------------
 *	  append to a chain tail (*)		tail page
 *	  insert into a leaf in place (*)	leaf
 *	  new chain page					node, new chain page (full image)
 *	  leaf rewrite / split in a flush	node (only when split), leaf (full
 *	  (***)								image), up to 2 new leaves (full image)
 *	  node split						parent, node (full image), new node
 *										(full image)
 *	  root growth						metapage, new root (full image), old
 *										root (full image), new sibling (full)
 *	  root leaf split					metapage, new root, old leaf, new leaf
 *										(all full images but the metapage)
 *	  free flushed chain pages			node, up to 3 chain pages
 *	  partition split (or start moved)	node
 *	  partial flush: new chain page		node, new chain page (full image)
 *	  partial flush: cut old pages		node, oldest new chain page, up to 2
 *										old chain pages
 *	  VACUUM deletion					one leaf or chain page
 *	  VACUUM leaf unlink				level-1 node, leaf
 *
 *	  leaf filter slots changed			leaf filter page (**)
 *	  (a leaf's or chain's keys added,
 *	  slots freed or emptied)
 *
 *	  (*) written as XLOG_FR_ADD_ITEMS below when the resource manager is
 *	  registered.
 *	  (**) written as XLOG_FR_LFILTER_SLOTS below when the resource manager
 *	  is registered.
 *	  (***) a split of a plain leaf into two plain leaves, outside VACUUM,
 *	  is written as XLOG_FR_LEAF_SPLIT below when the resource manager is
 *	  registered.
 *
 *	  CREATE INDEX logs the whole relation with log_newpage_range; the init
 *	  fork of an unlogged index is written with smgr and log_newpage.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FR_XLOG_H
#define FR_XLOG_H

#include "access/xlogreader.h"
#include "access/itup.h"
#include "lib/stringinfo.h"
#include "storage/buf.h"

/* the resource manager id; see the PostgreSQL wiki's registry before release */
#define FR_RMGR_ID				RM_EXPERIMENTAL_ID

/* record types (high 4 bits of xl_info) */
#define XLOG_FR_ADD_ITEMS		0x10
#define XLOG_FR_LFILTER_SLOTS	0x20
#define XLOG_FR_LEAF_SPLIT		0x30
#define XLOG_FR_MOVE_ITEMS		0x40

/*
 * XLOG_FR_ADD_ITEMS: index tuples added to one page, a chain tail (appended
 * at the end) or a plain leaf (each at a given offset).
 *
 * Backup block 0: the page.  Its block data: when has_offsets, ntuples
 * OffsetNumbers (each refers to the page as changed by the tuples before
 * it), then the ntuples index tuples, concatenated.
 *
 * Redo on a buffer page with a key filter (FR_FILTERED) also sets each
 * tuple's filter bits, computed from the tuple's bytes and the attlen the
 * filter header records (fr_filter_add_tuples), so the record carries no
 * filter data and replay yields the same bits.
 */
typedef struct xl_fr_add_items
{
	uint16		ntuples;
	bool		has_offsets;	/* false: every tuple appended at the end */
} xl_fr_add_items;

#define SizeOfFrAddItems	(offsetof(xl_fr_add_items, has_offsets) + sizeof(bool))

/*
 * XLOG_FR_LFILTER_SLOTS: bytes of the slots of one leaf filter page
 * (FR_LFILTERS) changed; the page header and the layout header are not
 * touched.  No main data.
 *
 * Backup block 0: the filter page.  Its block data: fragments, each a
 * uint16 offset in the page and a uint16 length followed by that many new
 * bytes, all inside the page's slots.
 */

/*
 * XLOG_FR_LEAF_SPLIT: a flush merged new entries into a plain leaf and split
 * it in two plain leaves (fr_leaf_write): the leaf keeps the first 'nleft'
 * entries of the merge of its old entries and the new ones, a new leaf
 * takes the rest, and the new leaf's pivot goes into the level-1 node.
 * Where a generic record carries full images of both leaves, this one
 * carries the new leaf's image and, for the old leaf, only the new entries
 * it keeps: replay rebuilds it from its own old entries, which it holds
 * unless the record restores it from a full-page image (and then the
 * image is the result).  Replay makes no key comparison: a bitmap says
 * where each new entry goes.
 *
 * Backup block 0: the level-1 node.  Block data: the new leaf's node item
 *		(pivot and child), added at offset off + 1.
 * Backup block 1: the old leaf.  Block data: a bitmap of nleft bits, bit k
 *		set when entry k of the leaf's new contents is a new entry (else it
 *		is the next of its old entries, in offset order), padded to whole
 *		bytes; then the new entries, concatenated, in order.
 * Backup block 2: the new leaf, always a full-page image.
 * Backup block 3 (optional): the partition's leaf filter page; block data
 *		as XLOG_FR_LFILTER_SLOTS (the slots of both leaves).
 */
typedef struct xl_fr_leaf_split
{
	uint16		nold;			/* entries in the old leaf before the split */
	uint16		nleft;			/* entries it keeps */
	OffsetNumber off;			/* the old leaf's item in the node */
} xl_fr_leaf_split;

#define SizeOfFrLeafSplit	(offsetof(xl_fr_leaf_split, off) + sizeof(OffsetNumber))

/*
 * XLOG_FR_MOVE_ITEMS: index tuples a flush moves from its node's chain
 * pages to a child: a child node's chain page, or (flushing a level-1
 * node) a plain leaf in place.  They are added as XLOG_FR_ADD_ITEMS adds
 * them, but named by where they are instead of copied: each is the item at
 * a given offset of one of the record's source pages.  The source pages are
 * not changed (only their LSN is set); they are registered with the
 * standard full-page-image rule, so that redo finds each exactly as the
 * record did.  A tuple whose page was last changed before the redo point
 * is logged inline instead (naming it would cost the page's image).
 * Written only while full-page writes are on; redo refuses a source page
 * newer than the record.
 *
 * Backup block 0: the chain page or leaf.  Its block data: when
 *		has_offsets, ntuples OffsetNumbers (as in XLOG_FR_ADD_ITEMS); then
 *		ntuples OffsetNumbers, the tuples' offsets on their source pages;
 *		then ntuples uint8s, their source pages' block ids (0: inline); then
 *		the inline tuples, concatenated, in order.
 * Backup block 1 (optional): the leaf filter page whose slot takes the
 *		tuples' keys (the leaf's, or a chain's slot 0); block data as in
 *		XLOG_FR_ADD_ITEMS.
 * Backup blocks FR_MOVE_FIRST_SOURCE ...: the source pages, no data.
 */
typedef struct xl_fr_move_items
{
	uint16		ntuples;
	bool		has_offsets;	/* false: every tuple appended at the end */
	uint8		flags;
} xl_fr_move_items;

#define SizeOfFrMoveItems	(offsetof(xl_fr_move_items, flags) + sizeof(uint8))

/* flags: block 0 is a leaf (else a chain page); redo checks it */
#define FR_MOVE_TO_LEAF			0x01

#define FR_MOVE_FIRST_SOURCE	2
#define FR_MOVE_MAX_SOURCES		(XLR_MAX_BLOCK_ID + 1 - FR_MOVE_FIRST_SOURCE)

/* redo (fr_xlog.c, fr_move.c) */
extern void fr_redo_slot_keys(XLogReaderState *record, Buffer fbuf,
							  IndexTuple *tups, int n);
extern void fr_redo_move_items(XLogReaderState *record);
extern IndexTuple fr_redo_next_tuple(char **ptr, char *end);

#endif							/* FR_XLOG_H */
