package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/store"
)

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// validTopicName applies Kafka's rules (as the broker does).
func validTopicName(fe *fieldErrors, name string) {
	if err := topicconfig.CheckName(name); err != nil {
		fe.add("name", "%s", err)
	}
}

func topicOut(t store.Topic) client.Topic {
	out := client.Topic{ID: uuid.UUID(t.ID).String(), Name: t.Name, PartitionCount: int32(len(t.Partitions)),
		Configs: t.Configs, Partitions: make([]client.Partition, 0, len(t.Partitions)), CreatedAt: t.CreatedAt}
	for _, p := range t.Partitions {
		cp := client.Partition{Partition: p.Partition, LeaderEpoch: p.LeaderEpoch, HighWatermark: p.HighWatermark}
		if p.LeaderID >= 0 {
			l := p.LeaderID
			cp.Leader = &l
		}
		out.Partitions = append(out.Partitions, cp)
	}
	return out
}

// topicETag covers what a PATCH can change (partition count, configs),
// not leaders or high watermarks, which move on their own.
func topicETag(t store.Topic) string {
	h := sha256.New()
	fmt.Fprintf(h, "%x/%d", t.ID, len(t.Partitions))
	for _, k := range sortedKeys(t.Configs) {
		fmt.Fprintf(h, "/%q=%q", k, t.Configs[k])
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:12]) + `"`
}

func checkPartitions(fe *fieldErrors, n int32) {
	if n < 1 || n > topicconfig.MaxPartitions {
		fe.add("partitions", "must be from 1 to %d, not %d", topicconfig.MaxPartitions, n)
	}
}

func (s *Server) createTopic(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	var req client.CreateTopicRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	validTopicName(&fe, req.Name)
	// Without a count, the cluster's num.partitions, as Kafka's
	// CreateTopics with NumPartitions -1.
	n := max(cl.DefaultPartitions, 1)
	if req.Partitions != nil {
		n = *req.Partitions
		checkPartitions(&fe, n)
	}
	checkConfigs(&fe, "configs", req.Configs)
	if err := fe.err(); err != nil {
		return err
	}
	// The cluster's defaults go beneath req.Configs in the store, as for
	// a topic created through the Kafka API.
	if _, _, err := s.st.CreateTopic(c.Request().Context(), cl.OrgID, cl.ID, req.Name, n, req.Configs); err != nil {
		return storeError(err, "topic")
	}
	t, err := s.st.Topic(c.Request().Context(), cl.OrgID, cl.ID, req.Name)
	if err != nil {
		return storeError(err, "topic")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/clusters/"+cl.ID+"/topics/"+t.Name)
	c.Response().Header().Set("ETag", topicETag(t))
	return c.JSON(http.StatusCreated, topicOut(t))
}

func (s *Server) listTopics(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	ts, next, err := s.st.Topics(c.Request().Context(), cl.OrgID, cl.ID, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(ts, next, topicOut))
}

func (s *Server) loadTopic(c echo.Context) (store.Topic, error) {
	cl, err := s.loadCluster(c)
	if err != nil {
		return store.Topic{}, err
	}
	t, err := s.st.Topic(c.Request().Context(), cl.OrgID, cl.ID, c.Param("topic_name"))
	return t, storeError(err, "topic")
}

func (s *Server) getTopic(c echo.Context) error {
	t, err := s.loadTopic(c)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", topicETag(t))
	return c.JSON(http.StatusOK, topicOut(t))
}

// ifMatch checks If-Match against etag ("*" and absence match).
func ifMatch(c echo.Context, etag string) error {
	v := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if v == "" || v == "*" || strings.TrimPrefix(v, "W/") == etag {
		return nil
	}
	return storeError(store.ErrStale, "")
}

func (s *Server) updateTopic(c echo.Context) error {
	t, err := s.loadTopic(c)
	if err != nil {
		return err
	}
	var req client.UpdateTopicRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	var n int32
	if req.Partitions != nil {
		n = *req.Partitions
		checkPartitions(&fe, n)
	}
	var cfg map[string]string
	if req.Configs != nil {
		cfg = *req.Configs
		if cfg == nil {
			cfg = map[string]string{}
		}
		checkConfigs(&fe, "configs", cfg)
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := ifMatch(c, topicETag(t)); err != nil {
		return err
	}
	p := principal(c)
	t, err = s.st.UpdateTopic(c.Request().Context(), p.OrgID, t.ClusterID, t.Name, n, cfg)
	if err != nil {
		return storeError(err, "topic")
	}
	c.Response().Header().Set("ETag", topicETag(t))
	return c.JSON(http.StatusOK, topicOut(t))
}

func (s *Server) deleteTopic(c echo.Context) error {
	t, err := s.loadTopic(c)
	if err != nil {
		return err
	}
	if err := ifMatch(c, topicETag(t)); err != nil {
		return err
	}
	if err := s.st.DeleteTopic(c.Request().Context(), principal(c).OrgID, t.ClusterID, t.Name); err != nil {
		return storeError(err, "topic")
	}
	return c.NoContent(http.StatusNoContent)
}
