-- Idempotent ingest: one transaction sends :batch events keyed by an event id
-- (md5 text, random order), about 10% of them ids sent before (a retry),
-- with INSERT ... ON CONFLICT DO NOTHING against a unique index on the id.
INSERT INTO ups (k, pad)
SELECT md5((CASE WHEN random() < 0.1
                 THEN 1 + (random() * (SELECT last_value - 1 FROM ups_n))::bigint
                 ELSE nextval('ups_n') END)::text),
       repeat('x', :padlen)
FROM generate_series(1, :batch)
ON CONFLICT (k) DO NOTHING;
