package broker

// The Kafka path's share of the audit log (internal/audit): the changes
// the admin APIs made, one row per resource with its result, and the
// authorization denials (authz.go's denied), aggregated by the writer.
// Rows name resources and error codes; request bodies (configs, quota
// values) are not recorded. The anonymous development cluster belongs to
// no organisation and is not audited.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
)

// auditRequest records what an admin request changed, once its handler
// answered. Requests that change nothing (ValidateOnly) are not recorded.
func (c *conn) auditRequest(req kmsg.Request, resp kmsg.Response) {
	if c.principal == nil || resp == nil {
		return
	}
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		if resp, ok := resp.(*kmsg.CreateTopicsResponse); ok && !r.ValidateOnly {
			for _, t := range resp.Topics {
				c.auditChange("topic.create", "topic", t.Topic, t.ErrorCode)
			}
		}
	case *kmsg.DeleteTopicsRequest:
		if resp, ok := resp.(*kmsg.DeleteTopicsResponse); ok {
			for _, t := range resp.Topics {
				name := fmt.Sprintf("%x", t.TopicID)
				if t.Topic != nil && *t.Topic != "" {
					name = *t.Topic
				}
				c.auditChange("topic.delete", "topic", name, t.ErrorCode)
			}
		}
	case *kmsg.CreatePartitionsRequest:
		if resp, ok := resp.(*kmsg.CreatePartitionsResponse); ok && !r.ValidateOnly {
			for _, t := range resp.Topics {
				c.auditChange("topic.create-partitions", "topic", t.Topic, t.ErrorCode)
			}
		}
	case *kmsg.DeleteRecordsRequest:
		if resp, ok := resp.(*kmsg.DeleteRecordsResponse); ok {
			for _, t := range resp.Topics {
				var code int16
				for _, p := range t.Partitions {
					code = cmp16(code, p.ErrorCode)
				}
				c.auditChange("topic.delete-records", "topic", t.Topic, code)
			}
		}
	case *kmsg.CreateACLsRequest:
		if resp, ok := resp.(*kmsg.CreateACLsResponse); ok {
			for i, res := range resp.Results {
				if i < len(r.Creations) {
					cr := r.Creations[i]
					c.auditChange("acl.create", "acl", cr.ResourceType.String()+":"+cr.ResourceName, res.ErrorCode)
				}
			}
		}
	case *kmsg.DeleteACLsRequest:
		if resp, ok := resp.(*kmsg.DeleteACLsResponse); ok {
			for _, res := range resp.Results {
				for _, m := range res.MatchingACLs {
					c.auditChange("acl.delete", "acl", m.ResourceType.String()+":"+m.ResourceName, m.ErrorCode)
				}
				if res.ErrorCode != 0 {
					c.auditChange("acl.delete", "acl", "", res.ErrorCode)
				}
			}
		}
	case *kmsg.AlterConfigsRequest:
		if resp, ok := resp.(*kmsg.AlterConfigsResponse); ok && !r.ValidateOnly {
			for _, res := range resp.Resources {
				c.auditConfigs(res.ResourceType, res.ResourceName, res.ErrorCode)
			}
		}
	case *kmsg.IncrementalAlterConfigsRequest:
		if resp, ok := resp.(*kmsg.IncrementalAlterConfigsResponse); ok && !r.ValidateOnly {
			for _, res := range resp.Resources {
				c.auditConfigs(res.ResourceType, res.ResourceName, res.ErrorCode)
			}
		}
	case *kmsg.DeleteGroupsRequest:
		if resp, ok := resp.(*kmsg.DeleteGroupsResponse); ok {
			for _, g := range resp.Groups {
				c.auditChange("group.delete", "group", g.Group, g.ErrorCode)
			}
		}
	case *kmsg.OffsetDeleteRequest:
		if resp, ok := resp.(*kmsg.OffsetDeleteResponse); ok {
			code := resp.ErrorCode
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					code = cmp16(code, p.ErrorCode)
				}
			}
			c.auditChange("group.delete-offsets", "group", r.Group, code)
		}
	case *kmsg.AlterClientQuotasRequest:
		if resp, ok := resp.(*kmsg.AlterClientQuotasResponse); ok && !r.ValidateOnly {
			for _, en := range resp.Entries {
				name := ""
				for i, e := range en.Entity {
					if i > 0 {
						name += ","
					}
					name += e.Type + "="
					if e.Name != nil {
						name += *e.Name
					} else {
						name += "<default>"
					}
				}
				c.auditChange("client-quota.update", "client-quota", name, en.ErrorCode)
			}
		}
	case *kmsg.AlterShareGroupOffsetsRequest:
		if resp, ok := resp.(*kmsg.AlterShareGroupOffsetsResponse); ok {
			c.auditChange("share-group.update-offsets", "share-group", r.GroupID, resp.ErrorCode)
		}
	case *kmsg.DeleteShareGroupOffsetsRequest:
		if resp, ok := resp.(*kmsg.DeleteShareGroupOffsetsResponse); ok {
			c.auditChange("share-group.delete-offsets", "share-group", r.GroupID, resp.ErrorCode)
		}
	}
}

// cmp16 keeps the first error code of several.
func cmp16(have, next int16) int16 {
	if have != 0 {
		return have
	}
	return next
}

func (c *conn) auditConfigs(rt kmsg.ConfigResourceType, name string, code int16) {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		c.auditChange("topic.update-configs", "topic", name, code)
	case kmsg.ConfigResourceTypeBroker:
		c.auditChange("broker.update-configs", "broker", name, code)
	default:
		c.auditChange("config.update", rt.String(), name, code)
	}
}

// auditChange queues one change's row. A refusal by authorization is left
// out: denied already counted it (one row for a denial, not two).
func (c *conn) auditChange(action, rtype, name string, code int16) {
	switch code {
	case kerr.TopicAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Code:
		return
	}
	e := store.AuditEntry{OrgID: c.principal.Org, ClusterID: c.cluster, Principal: c.principalName(), Source: c.host,
		Channel: store.AuditKafka, Action: action, ResourceType: rtype, ResourceName: name, Result: store.AuditOK}
	if code != 0 {
		e.Result, e.Detail = store.AuditFailed, kerr.ErrorForCode(code).Error()
	}
	c.s.audit.Record(e)
}

// auditDenial counts an authorization denial for the audit log.
func (c *conn) auditDenial(rt acl.ResourceType, name string, op acl.Operation) {
	if c.principal == nil {
		return
	}
	c.s.audit.Deny(store.AuditEntry{OrgID: c.principal.Org, ClusterID: c.cluster, Principal: c.principalName(),
		Source: c.host, Action: kmsg.NameForKey(c.reqKey), ResourceType: string(rt), ResourceName: name,
		Detail: string(op)})
}
