package main

// What the CLI needs to speak Kafka to a cluster, for `eddy group` and
// `eddy client-config`: the cluster's bootstrap and OAuth settings from the
// REST API, and an API key to log in with (--kafka-api-key-id and
// --kafka-api-key-secret, else the profile's key). The username always
// names the cluster ("<key>@<cluster>"), which an organisation-wide key
// needs and a cluster's own key accepts.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/data-plane/sasl"
	"github.com/eddy-streams/eddy/internal/loopback"
)

// kafkaMechanisms are the SASL mechanisms a client may log in with.
var kafkaMechanisms = []string{sasl.Plain, sasl.ScramSHA256, sasl.ScramSHA512, sasl.OAuthBearer}

// kafkaFlags are the Kafka login flags of the commands that speak Kafka or
// print a client's configuration.
type kafkaFlags struct {
	keyID, keySecret string
	mechanism        string
	tls              bool
	caFile           string
}

func (k *kafkaFlags) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&k.keyID, "kafka-api-key-id", "", "API key the Kafka client logs in with (default: the profile's)")
	fs.StringVar(&k.keySecret, "kafka-api-key-secret", "", "its secret; - reads it from stdin")
	fs.StringVar(&k.mechanism, "mechanism", "PLAIN", "SASL mechanism: "+strings.Join(kafkaMechanisms, ", "))
	fs.BoolVar(&k.tls, "tls", false, "connect with TLS (SASL_SSL); default: unless the bootstrap address is a loopback address")
	fs.StringVar(&k.caFile, "ca-file", "", "PEM file of the CA that signed the brokers' certificates (default: the system's)")
	cmd.RegisterFlagCompletionFunc("mechanism", cobra.FixedCompletions(kafkaMechanisms, cobra.ShellCompDirectiveNoFileComp))
}

// kafkaConn is how to reach and log in to one cluster.
type kafkaConn struct {
	Cluster   client.Cluster
	Bootstrap []string
	Mechanism string
	// Username is "<key>@<cluster>"; KeyID and Secret are the API key
	// (OAUTHBEARER's client credentials).
	Username, KeyID, Secret string
	TLS                     bool
	CAFile                  string
}

// resolve asks the REST API for the cluster and settles the login.
func (k *kafkaFlags) resolve(cmd *cobra.Command, f *apiFlags, clusterFlag string) (kafkaConn, error) {
	if !slices.Contains(kafkaMechanisms, k.mechanism) {
		return kafkaConn{}, fmt.Errorf("--mechanism must be one of %s, not %q", strings.Join(kafkaMechanisms, ", "), k.mechanism)
	}
	cl, id, err := f.clusterClient(clusterFlag)
	if err != nil {
		return kafkaConn{}, err
	}
	c, err := cl.GetCluster(cmd.Context(), id)
	if err != nil {
		return kafkaConn{}, err
	}
	keyID, secret := k.keyID, k.keySecret
	if keyID == "" {
		p, err := f.settings()
		if err != nil {
			return kafkaConn{}, err
		}
		keyID, secret = p.APIKeyID, p.APIKeySecret
	}
	if secret, err = readSecret(cmd, secret); err != nil {
		return kafkaConn{}, err
	}
	if keyID == "" || secret == "" {
		return kafkaConn{}, errors.New("no Kafka credentials: pass --kafka-api-key-id and --kafka-api-key-secret, or use a profile with an API key")
	}
	conn := kafkaConn{Cluster: c, Mechanism: k.mechanism, Username: keyID + "@" + c.ID, KeyID: keyID, Secret: secret, TLS: k.tls, CAFile: k.caFile}
	for _, b := range strings.Split(c.Kafka.BootstrapServers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			conn.Bootstrap = append(conn.Bootstrap, b)
		}
	}
	if len(conn.Bootstrap) == 0 {
		return kafkaConn{}, fmt.Errorf("cluster %s has no bootstrap servers", c.ID)
	}
	// Brokers refuse plaintext except on loopback addresses (or behind a
	// proxy that terminates TLS, which the flag covers): the same rule.
	if !cmd.Flags().Changed("tls") {
		conn.TLS = !loopback.Is(conn.Bootstrap[0])
	}
	if conn.CAFile != "" {
		conn.TLS = true
	}
	return conn, nil
}

// SecurityProtocol is Kafka's name for the transport and login.
func (c kafkaConn) SecurityProtocol() string {
	if c.TLS {
		return "SASL_SSL"
	}
	return "SASL_PLAINTEXT"
}

// kgoOpts are the options of the CLI's own client: it logs in with the
// key itself (PLAIN or SCRAM; for OAUTHBEARER, it uses PLAIN, as the key
// is the same).
func (c kafkaConn) kgoOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Bootstrap...)}
	switch c.Mechanism {
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Secret}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Secret}.AsSha512Mechanism()))
	default:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.Username, Pass: c.Secret}.AsMechanism()))
	}
	if c.TLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: no PEM certificates", c.CAFile)
			}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	return opts, nil
}

// kafkaClient opens the CLI's Kafka client; the caller closes it.
func (c kafkaConn) kafkaClient(ctx context.Context) (*kgo.Client, error) {
	opts, err := c.kgoOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("connecting to %s: %w", strings.Join(c.Bootstrap, ","), kafkaError(err))
	}
	return cl, nil
}

// kafkaError words a Kafka error code as people read it, keeping its name
// for searches: "the group is not empty (NON_EMPTY_GROUP)".
func kafkaError(err error) error {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return err
	}
	desc := strings.TrimSuffix(ke.Description, ".")
	if desc != "" {
		desc = strings.ToLower(desc[:1]) + desc[1:]
	}
	return fmt.Errorf("%s (%s)", desc, ke.Message)
}
