-- Placeholder on the share branch only: 0019 belongs to another branch's
-- migration. Drop this file when merging after that branch (tern needs
-- the numbers without gaps to apply 0020 here).
SELECT 1;
