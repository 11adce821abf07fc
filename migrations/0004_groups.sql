-- Reserved for 0004_groups; filled in by the work that needs it.
SELECT 1;

---- create above / drop below ----

SELECT 1;
