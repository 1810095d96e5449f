/* fractal--1.0--1.1.sql: cluster-wide activity counters */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION fractal UPDATE TO '1.1'" to load this file. \quit

CREATE FUNCTION fractal_counters(OUT name text, OUT value bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fractal_counters'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION fractal_counters() IS
'cluster-wide flush activity of all fractal indexes since the server started or fractal_counters_reset(); needs shared_preload_libraries';

CREATE FUNCTION fractal_counters_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'fractal_counters_reset'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION fractal_counters_reset() FROM PUBLIC;
