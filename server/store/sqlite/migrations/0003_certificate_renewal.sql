-- Certificate renewal: the certificate renewed away from stays accepted
-- until the new one is first used.
ALTER TABLE targets ADD COLUMN prev_cert_fingerprint TEXT NOT NULL DEFAULT '';
-- The SPKI hash of the CA that issued the current certificate, so a CA
-- rotation can tell which targets have renewed.
ALTER TABLE targets ADD COLUMN cert_ca_hash TEXT NOT NULL DEFAULT '';
