# The identity provider id.
terraform import eddy_identity_provider.eks idp-0123456789abcdefghij
