package main

// `eddy client-config --lang ...`: a client configuration for a cluster,
// ready to use unchanged — its bootstrap, the transport, the SASL
// mechanism and the credentials (an API key, or for OAUTHBEARER that key
// as the client credentials of the control plane's token endpoint).
// librdkafka and Java get properties, Python (confluent-kafka) a config
// dict of librdkafka's properties, franz-go and kafkajs code.

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// clientLangs are the --lang values, each with its printer.
var clientLangs = []struct {
	name  string
	print func(io.Writer, kafkaConn)
}{
	{"librdkafka", printLibrdkafka},
	{"java", printJava},
	{"python", printPython},
	{"franz-go", printFranzGo},
	{"kafkajs", printKafkaJS},
}

// clientConfigView is what -o json|yaml prints: the settings, and the
// configuration as text in Config.
type clientConfigView struct {
	ClusterID        string `json:"cluster_id"`
	Lang             string `json:"lang"`
	BootstrapServers string `json:"bootstrap_servers"`
	SecurityProtocol string `json:"security_protocol"`
	SASLMechanism    string `json:"sasl_mechanism"`
	Config           string `json:"config"`
}

func newClientConfigCmd() *cobra.Command {
	var (
		f       apiFlags
		k       kafkaFlags
		cluster string
		lang    string
	)
	names := make([]string, len(clientLangs))
	for i, l := range clientLangs {
		names[i] = l.name
	}
	cmd := &cobra.Command{
		Use:   "client-config",
		Short: "Print a working Kafka client configuration for a cluster (it includes the secret)",
		Long: "Prints the cluster's bootstrap servers, the transport (SASL_SSL unless the bootstrap is a\n" +
			"loopback address; --tls overrides), the SASL mechanism and the credentials: the API key\n" +
			"given with --kafka-api-key-id/--kafka-api-key-secret, else the profile's. With --mechanism\n" +
			"OAUTHBEARER the key is the client id and secret of the control plane's token endpoint.",
		Example: "  eddy client-config --lang librdkafka --cluster vc-... > client.properties && kcat -F client.properties -L\n" +
			"  eddy client-config --lang java --mechanism OAUTHBEARER --kafka-api-key-id key-... --kafka-api-key-secret -\n" +
			"  eddy client-config --lang franz-go --mechanism SCRAM-SHA-512",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var print func(io.Writer, kafkaConn)
			for _, l := range clientLangs {
				if l.name == lang {
					print = l.print
				}
			}
			if print == nil {
				return fmt.Errorf("--lang must be one of %s, not %q", strings.Join(names, ", "), lang)
			}
			conn, err := k.resolve(cmd, &f, cluster)
			if err != nil {
				return err
			}
			if !f.structured() {
				print(cmd.OutOrStdout(), conn)
				return nil
			}
			var b strings.Builder
			print(&b, conn)
			return f.print(cmd.OutOrStdout(), clientConfigView{ClusterID: conn.Cluster.ID, Lang: lang, BootstrapServers: strings.Join(conn.Bootstrap, ","),
				SecurityProtocol: conn.SecurityProtocol(), SASLMechanism: conn.Mechanism, Config: b.String()}, nil, nil)
		},
	}
	f.register(cmd)
	k.register(cmd)
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id (default: the profile's)")
	cmd.Flags().StringVar(&lang, "lang", "librdkafka", "client: "+strings.Join(names, ", "))
	cmd.RegisterFlagCompletionFunc("lang", cobra.FixedCompletions(names, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (c kafkaConn) header(comment string) string {
	return fmt.Sprintf("%s Eddy cluster %s (%s): keep this secret, it holds the API key's secret.\n", comment, c.Cluster.ID, c.Cluster.Name)
}

// librdkafkaProps are librdkafka's properties, in print order.
func librdkafkaProps(c kafkaConn) [][2]string {
	p := [][2]string{{"bootstrap.servers", strings.Join(c.Bootstrap, ",")}, {"security.protocol", c.SecurityProtocol()}, {"sasl.mechanisms", c.Mechanism}}
	if c.Mechanism == "OAUTHBEARER" {
		p = append(p, [][2]string{{"sasl.oauthbearer.method", "oidc"}, {"sasl.oauthbearer.client.id", c.KeyID},
			{"sasl.oauthbearer.client.secret", c.Secret}, {"sasl.oauthbearer.token.endpoint.url", c.Cluster.Kafka.OAuth.TokenEndpoint},
			{"sasl.oauthbearer.extensions", "logicalCluster=" + c.Cluster.ID}}...)
	} else {
		p = append(p, [2]string{"sasl.username", c.Username}, [2]string{"sasl.password", c.Secret})
	}
	if c.CAFile != "" {
		p = append(p, [2]string{"ssl.ca.location", c.CAFile})
	}
	return p
}

func printLibrdkafka(w io.Writer, c kafkaConn) {
	fmt.Fprint(w, c.header("#"))
	for _, kv := range librdkafkaProps(c) {
		fmt.Fprintf(w, "%s=%s\n", kv[0], kv[1])
	}
}

func printPython(w io.Writer, c kafkaConn) {
	fmt.Fprint(w, c.header("#"))
	fmt.Fprintln(w, "# confluent-kafka: Producer(config), or Consumer({**config, \"group.id\": ...})")
	fmt.Fprintln(w, "config = {")
	for _, kv := range librdkafkaProps(c) {
		fmt.Fprintf(w, "    %s: %s,\n", strconv.Quote(kv[0]), strconv.Quote(kv[1]))
	}
	fmt.Fprintln(w, "}")
}

// jaasQuote quotes a JAAS option value (Java string syntax).
func jaasQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func printJava(w io.Writer, c kafkaConn) {
	fmt.Fprint(w, c.header("#"))
	fmt.Fprintf(w, "bootstrap.servers=%s\nsecurity.protocol=%s\nsasl.mechanism=%s\n", strings.Join(c.Bootstrap, ","), c.SecurityProtocol(), c.Mechanism)
	switch c.Mechanism {
	case "OAUTHBEARER":
		fmt.Fprintln(w, "# Kafka 4 clients also need -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=<the token endpoint>.")
		fmt.Fprintln(w, "sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler")
		fmt.Fprintf(w, "sasl.oauthbearer.token.endpoint.url=%s\n", c.Cluster.Kafka.OAuth.TokenEndpoint)
		fmt.Fprintf(w, "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=%s clientSecret=%s extension_logicalCluster=%s;\n",
			jaasQuote(c.KeyID), jaasQuote(c.Secret), jaasQuote(c.Cluster.ID))
	default:
		module := "org.apache.kafka.common.security.plain.PlainLoginModule"
		if strings.HasPrefix(c.Mechanism, "SCRAM-") {
			module = "org.apache.kafka.common.security.scram.ScramLoginModule"
		}
		fmt.Fprintf(w, "sasl.jaas.config=%s required username=%s password=%s;\n", module, jaasQuote(c.Username), jaasQuote(c.Secret))
	}
	if c.CAFile != "" {
		fmt.Fprintf(w, "ssl.truststore.type=PEM\nssl.truststore.location=%s\n", c.CAFile)
	}
}

func printFranzGo(w io.Writer, c kafkaConn) {
	imports := []string{"github.com/twmb/franz-go/pkg/kgo"}
	var sasl string
	switch c.Mechanism {
	case "PLAIN":
		imports = append(imports, "github.com/twmb/franz-go/pkg/sasl/plain")
		sasl = fmt.Sprintf("plain.Auth{User: %q, Pass: %q}.AsMechanism()", c.Username, c.Secret)
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		imports = append(imports, "github.com/twmb/franz-go/pkg/sasl/scram")
		sasl = fmt.Sprintf("scram.Auth{User: %q, Pass: %q}.AsSha%sMechanism()", c.Username, c.Secret, strings.TrimPrefix(c.Mechanism, "SCRAM-SHA-"))
	case "OAUTHBEARER":
		imports = append(imports, "context", "encoding/json", "fmt", "net/http", "net/url", "strings", "github.com/twmb/franz-go/pkg/sasl/oauth")
		sasl = fmt.Sprintf(`oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			// A token from the control plane, with the API key as client credentials.
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, %q,
				strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
			if err != nil {
				return oauth.Auth{}, err
			}
			req.SetBasicAuth(%q, %q)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return oauth.Auth{}, err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return oauth.Auth{}, fmt.Errorf("token endpoint: %%s", resp.Status)
			}
			var tok struct {
				AccessToken string `+"`json:\"access_token\"`"+`
			}
			err = json.NewDecoder(resp.Body).Decode(&tok)
			return oauth.Auth{Token: tok.AccessToken, Extensions: map[string]string{"logicalCluster": %q}}, err
		})`, c.Cluster.Kafka.OAuth.TokenEndpoint, c.KeyID, c.Secret, c.Cluster.ID)
	}
	var tlsOpt string
	if c.TLS {
		imports = append(imports, "crypto/tls")
		tlsOpt = "\n\t\tkgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}),"
		if c.CAFile != "" {
			tlsOpt = fmt.Sprintf("\n\t\t// The brokers' CA: %s (add it to the tls.Config's RootCAs).%s", c.CAFile, tlsOpt)
		}
	}
	// gofmt's layout: the standard library's packages, then the others.
	thirdParty := func(imp string) int {
		if strings.Contains(imp, ".") {
			return 1
		}
		return 0
	}
	slices.SortFunc(imports, func(a, b string) int {
		return cmp.Or(cmp.Compare(thirdParty(a), thirdParty(b)), strings.Compare(a, b))
	})
	fmt.Fprint(w, c.header("//"))
	fmt.Fprintln(w, "import (")
	for i, imp := range imports {
		if i > 0 && thirdParty(imp) > thirdParty(imports[i-1]) {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "\t%q\n", imp)
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, `
// eddyOpts connect a franz-go client to the cluster, e.g.
// kgo.NewClient(append(eddyOpts(), kgo.ConsumeTopics("orders"))...).
func eddyOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(%s),
		kgo.SASL(%s),%s
	}
}
`, quoteList(c.Bootstrap, ", "), sasl, tlsOpt)
}

func quoteList(ss []string, sep string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, sep)
}

func printKafkaJS(w io.Writer, c kafkaConn) {
	var sasl string
	switch c.Mechanism {
	case "OAUTHBEARER":
		sasl = fmt.Sprintf(`{
    mechanism: 'oauthbearer',
    // A token from the control plane, with the API key as client credentials.
    // kafkajs sends no SASL extensions, so the token must name the cluster:
    // use a key scoped to it (eddy api-key create --cluster).
    oauthBearerProvider: async () => {
      const res = await fetch(%s, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          Authorization: 'Basic ' + Buffer.from(%s).toString('base64'),
        },
        body: 'grant_type=client_credentials',
      });
      if (!res.ok) throw new Error('token endpoint: ' + res.status);
      return { value: (await res.json()).access_token };
    },
  }`, strconv.Quote(c.Cluster.Kafka.OAuth.TokenEndpoint), strconv.Quote(c.KeyID+":"+c.Secret))
	default:
		sasl = fmt.Sprintf("{ mechanism: %s, username: %s, password: %s }", strconv.Quote(strings.ToLower(c.Mechanism)), strconv.Quote(c.Username), strconv.Quote(c.Secret))
	}
	ssl := strconv.FormatBool(c.TLS)
	if c.CAFile != "" {
		ssl = fmt.Sprintf("{ ca: [require('fs').readFileSync(%s, 'utf8')] }", strconv.Quote(c.CAFile))
	}
	fmt.Fprint(w, c.header("//"))
	fmt.Fprintf(w, `const { Kafka } = require('kafkajs');

const kafka = new Kafka({
  clientId: 'eddy-client',
  brokers: [%s],
  ssl: %s,
  sasl: %s,
});
`, quoteList(c.Bootstrap, ", "), ssl, sasl)
}
