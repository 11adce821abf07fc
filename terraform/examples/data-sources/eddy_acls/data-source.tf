# Every ACL of the cluster, including those made with kafka-acls.sh.
data "eddy_acls" "prod" {
  cluster_id = data.eddy_cluster.prod.id
}

output "denies" {
  value = [for a in data.eddy_acls.prod.acls : "${a.principal} ${a.operation} ${a.resource_type} ${a.resource_name}" if a.permission == "deny"]
}
