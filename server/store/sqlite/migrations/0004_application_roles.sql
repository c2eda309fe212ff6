-- An application deploys to the targets that carry all of its roles.
ALTER TABLE applications ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
