package broker

import (
	"context"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics (API key 20).
// Versions: 0-6.
//
// Any broker accepts it (there is no controller to forward to); only the
// connection's virtual cluster's topics can be named, by name or (v6+) id.
//
// Internal topics cannot be deleted: INVALID_REQUEST (internaltopics.go).
//
// Authorization: DELETE on the topic.

func handleDeleteTopics(s *Server, c *conn, req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	v := s.view.Load()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	del := func(name *string, id [16]byte) {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = name, id
		var t *store.Topic
		if name != nil {
			if !c.may(acl.Topic, *name, acl.Delete) {
				st.ErrorCode, st.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp("not authorized to delete this topic")
				resp.Topics = append(resp.Topics, st)
				return
			}
			if topicconfig.Internal(*name) {
				st.ErrorCode, st.ErrorMessage = kerr.InvalidRequest.Code, strp("internal topics cannot be deleted")
				resp.Topics = append(resp.Topics, st)
				return
			}
			_, t = s.topic(c, *name)
		} else if in := internalByID(c.cluster, id); in != "" {
			st.Topic = &in
			st.ErrorCode, st.ErrorMessage = kerr.InvalidRequest.Code, strp("internal topics cannot be deleted")
			resp.Topics = append(resp.Topics, st)
			return
		} else {
			t = v.topicByID(c.cluster, id)
			if t != nil && !c.may(acl.Topic, t.Name, acl.Delete) {
				if c.sees(acl.Topic, t.Name) {
					tn := t.Name
					st.Topic = &tn
				}
				st.ErrorCode, st.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp("not authorized to delete this topic")
				resp.Topics = append(resp.Topics, st)
				return
			}
		}
		if t == nil {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if name == nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
			}
			st.ErrorMessage = strp("topic does not exist")
			resp.Topics = append(resp.Topics, st)
			return
		}
		tn := t.Name
		st.Topic, st.TopicID = &tn, t.ID
		if err := s.store.DeleteTopic(ctx, store.AnyOrg, c.cluster, t.Name); err != nil {
			st.ErrorCode, _ = errCode(err)
			st.ErrorMessage = strp(err.Error())
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Version >= 6 {
		for _, rt := range req.Topics {
			del(rt.Topic, rt.TopicID)
		}
	} else {
		for _, n := range req.TopicNames {
			del(&n, [16]byte{})
		}
	}
	s.refreshNow(ctx)
	return resp
}
