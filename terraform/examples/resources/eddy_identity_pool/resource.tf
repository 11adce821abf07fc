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

# Members of the admins group with a corporate address act as the ops
# service account: a filter expression instead of (or beside) a filter.
resource "eddy_identity_pool" "admins" {
  name               = "corp-admins"
  provider_id        = eddy_identity_provider.corp.id
  cluster_id         = eddy_cluster.orders.id
  service_account_id = eddy_service_account.ops.id
  filter_expression  = "\"admins\" in claims.groups && claims.email.endsWith(\"@corp.example\")"
}
