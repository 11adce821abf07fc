-- Reserved for 0003_tiered; filled in by the work that needs it.
SELECT 1;

---- create above / drop below ----

SELECT 1;
