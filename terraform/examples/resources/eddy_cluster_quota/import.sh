# <cluster id>
terraform import eddy_cluster_quota.prod vc-0123456789abcdefghij
