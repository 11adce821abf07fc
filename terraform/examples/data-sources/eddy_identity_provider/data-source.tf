data "eddy_identity_provider" "eks" {
  name = "eks-prod"
}
