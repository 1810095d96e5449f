-- Short range scan (100 rows) on secondary key a, starting at an existing key.
\set r random(1, :nkeys)
SELECT a AS k FROM bench_keys WHERE id = :r \gset
SELECT * FROM iib WHERE a >= :k ORDER BY a LIMIT 100;
