resource "eddy_service_account" "shop" {
  name        = "shop-backend"
  description = "Produces orders"
}
