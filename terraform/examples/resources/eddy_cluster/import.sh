# The cluster id.
terraform import eddy_cluster.prod vc-0123456789abcdefghij
