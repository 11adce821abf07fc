package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions (API key 18).
// Versions: 0-3.
//
// v3 (KIP-511) carries the client's software name and version; a request at
// an unsupported version is answered in v0 with UNSUPPORTED_VERSION and the
// supported ranges. The ranges are the table in apis.go. v3 also carries
// the features: transaction.version is supported 0-2 and finalized at
// txnVersion() (txn.go), which is what makes franz-go and the Java client
// use transaction version 2 (KIP-890 part 2).
//
// No authorization (nothing of the tenant's).

func supportedAPIs() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for k, a := range apis {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: a.min, MaxVersion: a.max})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}

func handleAPIVersions(_ *Server, _ *conn, req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = supportedAPIs()
	if req.Version >= 3 {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = "transaction.version", 0, txnVersionMax
		resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{sf}
		resp.FinalizedFeaturesEpoch = 1
		if tv := txnVersion(); tv > 0 { // level 0 is left out, as Kafka does
			ff := kmsg.NewApiVersionsResponseFinalizedFeature()
			ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = "transaction.version", tv, tv
			resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{ff}
		}
	}
	return resp
}

func unsupportedAPIVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = supportedAPIs()
	return resp
}
