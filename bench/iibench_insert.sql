-- iiBench-like insert: one transaction inserts :batch rows with random secondary keys.
INSERT INTO iib (a, b, c, pad)
SELECT (random() * 9.2e18)::bigint,
       (random() * 9.2e18)::bigint,
       md5(random()::text),
       repeat('x', :padlen)
FROM generate_series(1, :batch);
