# <cluster id>/<binding id>
terraform import eddy_role_binding.shop_writes vc-0123456789abcdefghij/rb-0123456789abcdefghij
