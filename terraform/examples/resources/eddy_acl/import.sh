# <cluster id>/<acl id>
terraform import eddy_acl.shop_reads_orders vc-0123456789abcdefghij/acl-0123456789abcdefghij
