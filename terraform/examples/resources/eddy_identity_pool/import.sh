# The identity pool id.
terraform import eddy_identity_pool.payments pool-0123456789abcdefghij
