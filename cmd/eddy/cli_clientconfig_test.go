package main

import (
	"bytes"
	"go/format"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/api/client"
)

// TestClientConfigs: every language's configuration for every mechanism,
// with and without TLS, names the bootstrap and the credentials, and the
// franz-go output is gofmt'ed Go. (TestCLIManagement runs the outputs.)
func TestClientConfigs(t *testing.T) {
	for _, mech := range kafkaMechanisms {
		for _, useTLS := range []bool{false, true} {
			c := kafkaConn{
				Cluster: client.Cluster{ID: "vc-1", Name: "prod", Kafka: client.KafkaEndpoint{
					OAuth: client.OAuthSettings{TokenEndpoint: "https://api.example/oauth2/token"}}},
				Bootstrap: []string{"kafka.example:9092"}, Mechanism: mech,
				Username: "key-1@vc-1", KeyID: "key-1", Secret: `s3cr"et`, TLS: useTLS,
			}
			for _, l := range clientLangs {
				var b bytes.Buffer
				l.print(&b, c)
				out := b.String()
				name := l.name + " " + mech + " " + c.SecurityProtocol()
				if !strings.Contains(out, "kafka.example:9092") || !strings.Contains(out, "key-1") {
					t.Errorf("%s lacks the bootstrap or the key:\n%s", name, out)
				}
				if mech == "OAUTHBEARER" && !strings.Contains(out, "https://api.example/oauth2/token") {
					t.Errorf("%s lacks the token endpoint:\n%s", name, out)
				}
				if l.name == "franz-go" {
					src := "package main\n\n" + out
					if formatted, err := format.Source([]byte(src)); err != nil {
						t.Errorf("%s is not Go: %v\n%s", name, err, out)
					} else if string(formatted) != src {
						t.Errorf("%s is not gofmt'ed:\n%s", name, out)
					}
				}
			}
		}
	}
}
