-- Certificate renewal: the certificate renewed away from stays accepted
-- until the new one is first used.
ALTER TABLE targets ADD COLUMN prev_cert_fingerprint TEXT NOT NULL DEFAULT '';
