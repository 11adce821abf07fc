# <cluster id>/<topic name>
terraform import eddy_topic.orders vc-0123456789abcdefghij/orders
