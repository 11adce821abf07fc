# <cluster id>
terraform import eddy_cluster_config.prod vc-0123456789abcdefghij
