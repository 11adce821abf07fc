# The cluster's Kubernetes service accounts authenticate with their own
# projected tokens: trust the cluster's OIDC issuer.
resource "eddy_identity_provider" "eks" {
  name     = "eks-prod"
  issuer   = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
  jwks_url = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE/keys"
  audience = "eddy"
}
