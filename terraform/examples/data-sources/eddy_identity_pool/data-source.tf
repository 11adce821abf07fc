# The pool id a workload names (OAUTHBEARER extension identityPoolId).
data "eddy_identity_pool" "payments" {
  name = "payments-prod"
}

output "payments_pool_id" {
  value = data.eddy_identity_pool.payments.id
}
