-- Reserved for 0002_tenancy; filled in by the work that needs it.
SELECT 1;

---- create above / drop below ----

SELECT 1;
