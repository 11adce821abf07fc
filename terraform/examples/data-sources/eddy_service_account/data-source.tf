data "eddy_service_account" "admin" {
  name = "admin"
}
