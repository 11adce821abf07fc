# The key id. The secret cannot be imported: rotate the key to get one.
terraform import eddy_api_key.shop key-0123456789abcdefghij
