//go:build !cgo

package clients_test

import "testing"

func librdkafkaOIDC(t *testing.T, _ *env) {
	t.Skip("confluent-kafka-go (librdkafka with OIDC) needs cgo")
}
