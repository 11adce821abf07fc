-- Reserved for 0005_billing; filled in by the work that needs it.
SELECT 1;

---- create above / drop below ----

SELECT 1;
