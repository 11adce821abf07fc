# Pods running as Kubernetes service account prod/payments act as the
# payments service account in the orders cluster.
resource "eddy_identity_pool" "payments" {
  name               = "payments-prod"
  provider_id        = eddy_identity_provider.eks.id
  cluster_id         = eddy_cluster.orders.id
  service_account_id = eddy_service_account.payments.id
  filter = {
    sub = ["system:serviceaccount:prod:payments"]
  }
}
