-- Reserved for the variables migration (branch h-vars), which replaces this
-- file when the branches merge. Migrations are numbered without holes, so
-- 0006 needs a 0005 to load.
SELECT 1;
