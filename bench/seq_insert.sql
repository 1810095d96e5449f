-- Sequential-key insert: secondary keys (ts, a) are monotonic; btree's best case.
INSERT INTO iis (a, b, c, pad)
SELECT nextval('iis_a_seq'),
       (random() * 9.2e18)::bigint,
       md5(random()::text),
       repeat('x', :padlen)
FROM generate_series(1, :batch);
