data "eddy_cluster" "prod" {
  name = "orders-prod"
}

data "eddy_cluster_quota" "prod" {
  cluster_id = data.eddy_cluster.prod.id
}

output "topics_allowed" {
  value = data.eddy_cluster_quota.prod.effective_limits["max_topics"]
}
