/* fractal--1.1--1.2.sql: leaf filter pages counted apart from the nodes */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION fractal UPDATE TO '1.2'" to load this file. \quit

-- Both statistics functions gain a last column, filter_pages (the leaf
-- filter pages of format-4 indexes, at level 1), and stop counting those
-- pages in node_pages / nodes.  A result type cannot be changed in place.
DROP FUNCTION fractal_stats(regclass);
CREATE FUNCTION fractal_stats(index regclass,
    OUT height int4, OUT meta_pages int8, OUT node_pages int8,
    OUT buffer_pages int8, OUT leaf_pages int8, OUT free_pages int8,
    OUT buffered_messages int8, OUT leaf_entries int8, OUT avg_leaf_fill float8,
    OUT compressed_leaf_pages int8, OUT leaf_raw_bytes int8,
    OUT leaf_stored_bytes int8, OUT compression_ratio float8,
    OUT filter_pages int8)
RETURNS record AS 'MODULE_PATHNAME', 'fractal_stats' LANGUAGE C STRICT;

DROP FUNCTION fractal_level_stats(regclass);
CREATE FUNCTION fractal_level_stats(index regclass,
    OUT level int4, OUT nodes int8, OUT buffer_pages int8, OUT buffered_messages int8,
    OUT filter_pages int8)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'fractal_level_stats' LANGUAGE C STRICT;
