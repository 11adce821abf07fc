# The service account id.
terraform import eddy_service_account.shop sa-0123456789abcdefghij
