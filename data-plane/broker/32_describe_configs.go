package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs (API key 32).
// Versions: 0-4.
//
// Topic configs are the ones internal/topicconfig knows, with Kafka's
// names, defaults and types; broker configs are the virtual cluster's
// (internal/clusterconfig), whichever broker is named (configs.go).
//
// Deviation: every broker of the pool describes the same configs, the
// cluster's (a virtual cluster has no per-broker configs); other resource
// types are INVALID_REQUEST.
//
// Authorization: DESCRIBE_CONFIGS on the topic, or on the cluster for
// broker resources.

func handleDescribeConfigs(s *Server, c *conn, req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case resourceTopic:
			if !c.may(acl.Topic, rr.ResourceName, acl.DescribeConfigs) {
				sr.ErrorCode, sr.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp("not authorized to describe this topic's configs")
				break
			}
			if topicconfig.Internal(rr.ResourceName) {
				sr.Configs = describeConfigs(topicConfigDefs, internalConfigs, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
				break
			}
			// Read from Postgres, not the routing view: an alteration made
			// through another broker must show at once.
			configs, err := s.store.TopicConfigs(ctx, c.cluster, rr.ResourceName)
			if err != nil {
				code, msg := errCode(err)
				sr.ErrorCode, sr.ErrorMessage = code, strp(msg)
				break
			}
			sr.Configs = describeConfigs(topicConfigDefs, configs, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case resourceBroker:
			sr.ErrorCode, sr.ErrorMessage, sr.Configs = s.describeBroker(ctx, c, rr, req.IncludeSynonyms, req.IncludeDocumentation)
		default:
			sr.ErrorCode, sr.ErrorMessage = kerr.InvalidRequest.Code, strp(fmt.Sprintf("resource type %d is not supported", rr.ResourceType))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}
