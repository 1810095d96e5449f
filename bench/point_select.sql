-- Point lookup by secondary key a; key sampled from existing rows (bench_keys).
\set r random(1, :nkeys)
SELECT a AS k FROM bench_keys WHERE id = :r \gset
SELECT * FROM iib WHERE a = :k;
