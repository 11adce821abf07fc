resource "eddy_role_binding" "shop_writes" {
  cluster_id         = eddy_cluster.prod.id
  service_account_id = eddy_service_account.shop.id
  role               = "developer-write"
}
