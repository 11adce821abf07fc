# The shop may read every topic whose name starts with "orders-"...
resource "eddy_acl" "shop_reads_orders" {
  cluster_id    = eddy_cluster.prod.id
  principal     = "User:${eddy_service_account.shop.id}"
  resource_type = "topic"
  resource_name = "orders-"
  pattern_type  = "prefixed"
  operation     = "read"
  permission    = "allow"
}

# ...and consume in its own consumer group.
resource "eddy_acl" "shop_group" {
  cluster_id    = eddy_cluster.prod.id
  principal     = "User:${eddy_service_account.shop.id}"
  resource_type = "group"
  resource_name = "shop"
  operation     = "read"
  permission    = "allow"
}

# Nobody may delete the payments topic: a deny wins over every role, admin included.
resource "eddy_acl" "keep_payments" {
  cluster_id    = eddy_cluster.prod.id
  principal     = "User:*"
  resource_type = "topic"
  resource_name = "payments"
  operation     = "delete"
  permission    = "deny"
}
