package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/allowlist"
	"github.com/eddy-streams/eddy/internal/clusterconfig"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (s *Server) clusterOut(cl store.Cluster) client.Cluster {
	return client.Cluster{
		ID: cl.ID, Name: cl.Name, Status: cl.Status,
		Limits:              cl.Limits,
		Plan:                cl.PlanID,
		Ceilings:            cl.Ceilings,
		EffectiveLimits:     cl.Limits.Capped(cl.Ceilings),
		DefaultTopicConfigs: cl.DefaultTopicConfigs,
		BrokerConfigs:       cl.BrokerConfigs,
		AllowedCIDRs:        append([]string{}, cl.AllowedCIDRs...),
		PartitionsUsed:      cl.Partitions,
		Kafka: client.KafkaEndpoint{
			BootstrapServers: s.cfg.KafkaBootstrap,
			SASLMechanisms:   []string{"OAUTHBEARER", "PLAIN"},
			OAuth: client.OAuthSettings{
				Issuer:        s.cfg.PublicURL,
				TokenEndpoint: s.cfg.PublicURL + "/oauth2/token",
				JWKSURI:       s.cfg.PublicURL + "/.well-known/jwks.json",
				Audience:      s.cfg.Audience,
			},
		},
		CreatedAt: cl.CreatedAt, UpdatedAt: cl.UpdatedAt,
	}
}

func clusterETag(cl store.Cluster) string { return `"v` + strconv.FormatInt(cl.Version, 10) + `"` }

// ifMatchVersion parses If-Match for a cluster: 0 if absent or "*",
// -1 if it can match no version.
func ifMatchVersion(c echo.Context) int64 {
	v := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0
	}
	v = strings.TrimPrefix(v, "W/")
	if !strings.HasPrefix(v, `"v`) || !strings.HasSuffix(v, `"`) {
		return -1
	}
	n, err := strconv.ParseInt(v[2:len(v)-1], 10, 64)
	if err != nil || n <= 0 {
		return -1
	}
	return n
}

// decodePatchBody decodes a create or update request into req and
// returns its object named field ("limits", "ceilings") as it came (nil if
// absent), for patchLimits and patchCeilings: a decoded limits.Limits
// cannot tell a limit left out from one sent as 0.
func decodePatchBody(c echo.Context, maxBytes int64, req any, field string) (json.RawMessage, error) {
	var body json.RawMessage
	if err := decodeJSON(c, maxBytes, &body); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return nil, jsonError(err, maxBytes)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, jsonError(err, maxBytes)
	}
	return raw[field], nil
}

// patchLimits decodes a request's limits object (absent or null: no
// change) onto l, so the fields it leaves out keep their value, and adds
// every limit it changes out of range to fe as limits.<field>. Decoding
// onto the defaults or the cluster's current limits is what lets one
// Limits type serve creates, partial updates and responses.
func patchLimits(fe *fieldErrors, raw json.RawMessage, l *limits.Limits) {
	before := *l
	if len(raw) > 0 {
		// Cannot fail: decodePatchBody decoded the same bytes into a
		// Limits.
		_ = json.Unmarshal(raw, l)
	}
	var errs limits.FieldErrors
	if errors.As(l.ValidateChange(before), &errs) {
		for _, e := range errs {
			fe.add("limits."+e.Field, "%s", e.Msg)
		}
	}
}

// overCeilings returns nil, or a 422 problem naming every limit of l
// above plan's ceilings as limits.<field> with the ceiling. With from
// (an update), only the limits that change are checked: a cluster left
// above a ceiling the operator lowered is capped by it anyway
// (limits.Limits.Capped) and may still change its other limits.
func overCeilings(l limits.Limits, from *limits.Limits, plan string, ceilings limits.Limits) error {
	err := l.Within(ceilings)
	if from != nil {
		err = l.WithinChange(*from, ceilings)
	}
	var errs limits.FieldErrors
	if !errors.As(err, &errs) {
		return nil
	}
	var fe fieldErrors
	for _, e := range errs {
		fe.add("limits."+e.Field, "%s", strings.Replace(e.Msg, "the plan", "plan "+plan, 1))
	}
	p := newProblem(http.StatusUnprocessableEntity, client.ProblemLimitExceeded,
		"over the ceilings of plan "+plan+": "+fe[0].Field+": "+fe[0].Message+"; the operator sets a plan's ceilings")
	p.Errors = fe
	return p
}

// checkConfigs validates topic configs, naming each bad one as
// field.<config name>.
func checkConfigs(fe *fieldErrors, field string, m map[string]string) {
	for _, d := range sortedKeys(m) {
		if err := topicconfig.Validate(d, m[d]); err != nil {
			fe.add(field+"."+d, "%s", strings.TrimPrefix(err.Error(), topicconfig.ErrInvalid.Error()+": "))
		}
	}
}

// checkBrokerConfigs validates broker configs, naming each bad one as
// broker_configs.<config name>.
func checkBrokerConfigs(fe *fieldErrors, m map[string]string) {
	for _, d := range sortedKeys(m) {
		if err := clusterconfig.Validate(d, m[d]); err != nil {
			fe.add("broker_configs."+d, "%s", strings.TrimPrefix(err.Error(), clusterconfig.ErrInvalid.Error()+": "+d+": "))
		}
	}
}

// checkAllowList validates an allow-list and returns it in canonical form
// (allowlist.Parse).
func checkAllowList(fe *fieldErrors, entries []string) []string {
	out, err := allowlist.Parse(entries)
	if err != nil {
		fe.add("allowed_cidrs", "%s", err)
	}
	return out
}

// allowedFrom is middleware for a cluster's sub-resources (topics,
// records, groups, ACLs, ...): a request from outside the cluster's
// allow-list is refused (403), as a Kafka connection is. The cluster's
// own routes are not guarded, so an org admin can always correct the
// list.
func (s *Server) allowedFrom(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principal(c)
		if p.Operator {
			return next(c)
		}
		list, err := s.st.ClusterAllowList(c.Request().Context(), p.OrgID, c.Param("cluster_id"))
		if err != nil {
			return storeError(err, "cluster")
		}
		host, _, _ := net.SplitHostPort(c.Request().RemoteAddr)
		if !allowlist.Allows(list, host) {
			return errForbidden("this address (" + host + ") is not in the cluster's allow-list")
		}
		return next(c)
	}
}

// brokerConfigsOverLimits returns nil, or a 422 problem naming every
// broker config next changes from cur above the effective limits eff as
// broker_configs.<name>, by the store's rule (clusterconfig.WithinChange):
// a cluster left above a ceiling the operator lowered may still change
// its other configs.
func brokerConfigsOverLimits(next, cur map[string]string, eff limits.Limits) error {
	var errs limits.FieldErrors
	if !errors.As(clusterconfig.WithinChange(cur, next, eff), &errs) {
		return nil
	}
	var fe fieldErrors
	for _, e := range errs {
		fe.add("broker_configs."+e.Field, "%s", e.Msg)
	}
	p := newProblem(http.StatusUnprocessableEntity, client.ProblemLimitExceeded,
		"over the cluster's limits: "+fe[0].Field+": "+fe[0].Message)
	p.Errors = fe
	return p
}

func (s *Server) createCluster(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	var req client.CreateClusterRequest
	rawLimits, err := decodePatchBody(c, s.cfg.MaxBodyBytes, &req, "limits")
	if err != nil {
		return err
	}
	plan, ceilings, err := s.st.OrgCeilings(c.Request().Context(), principal(c).OrgID)
	if err != nil {
		return storeError(err, "organisation")
	}
	var fe fieldErrors
	validName(&fe, "name", req.Name)
	// Limits left out are the defaults, or the plan's ceilings where
	// those are lower: only a limit the request sets can be over them.
	l := limits.Defaults().Capped(ceilings)
	patchLimits(&fe, rawLimits, &l)
	checkConfigs(&fe, "default_topic_configs", req.DefaultTopicConfigs)
	checkBrokerConfigs(&fe, req.BrokerConfigs)
	allowed := checkAllowList(&fe, req.AllowedCIDRs)
	if err := fe.err(); err != nil {
		return err
	}
	if err := overCeilings(l, nil, plan, ceilings); err != nil {
		return err
	}
	if err := brokerConfigsOverLimits(req.BrokerConfigs, nil, l.Capped(ceilings)); err != nil {
		return err
	}
	cl, err := s.st.CreateClusterWith(c.Request().Context(), principal(c).OrgID, req.Name, l, req.DefaultTopicConfigs, req.BrokerConfigs, allowed)
	if err != nil {
		return storeError(err, "cluster")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/clusters/"+cl.ID)
	c.Response().Header().Set("ETag", clusterETag(cl))
	return c.JSON(http.StatusCreated, s.clusterOut(cl))
}

func (s *Server) listClusters(c echo.Context) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	pr := principal(c)
	var (
		cls  []store.Cluster
		next string
	)
	if pr.ClusterID != "" {
		// A cluster-scoped credential sees its one cluster.
		cl, err := s.st.Cluster(c.Request().Context(), pr.OrgID, pr.ClusterID)
		if err == nil && cl.ID > p.After {
			cls = []store.Cluster{cl}
		}
	} else if cls, next, err = s.st.Clusters(c.Request().Context(), pr.OrgID, p); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(cls, next, s.clusterOut))
}

// loadCluster returns the route's cluster if the principal may see it.
func (s *Server) loadCluster(c echo.Context) (store.Cluster, error) {
	id, p := c.Param("cluster_id"), principal(c)
	if p.ClusterID != "" && p.ClusterID != id {
		return store.Cluster{}, errNotFound("cluster")
	}
	cl, err := s.st.Cluster(c.Request().Context(), p.OrgID, id)
	return cl, storeError(err, "cluster")
}

func (s *Server) getCluster(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", clusterETag(cl))
	return c.JSON(http.StatusOK, s.clusterOut(cl))
}

func (s *Server) updateCluster(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	var req client.UpdateClusterRequest
	rawLimits, err := decodePatchBody(c, s.cfg.MaxBodyBytes, &req, "limits")
	if err != nil {
		return err
	}
	var fe fieldErrors
	if req.Name != nil {
		validName(&fe, "name", *req.Name)
	}
	l := cl.Limits
	patchLimits(&fe, rawLimits, &l)
	if req.DefaultTopicConfigs != nil {
		checkConfigs(&fe, "default_topic_configs", *req.DefaultTopicConfigs)
	}
	if req.BrokerConfigs != nil {
		checkBrokerConfigs(&fe, *req.BrokerConfigs)
	}
	var allowed []string
	if req.AllowedCIDRs != nil {
		allowed = checkAllowList(&fe, *req.AllowedCIDRs)
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := overCeilings(l, &cl.Limits, cl.PlanID, cl.Ceilings); err != nil {
		return err
	}
	ver := ifMatchVersion(c)
	if ver < 0 {
		return storeError(store.ErrStale, "cluster")
	}
	cl, err = s.st.UpdateCluster(c.Request().Context(), principal(c).OrgID, cl.ID, ver, func(cl *store.Cluster) error {
		if req.Name != nil {
			cl.Name = *req.Name
		}
		// Again onto the locked row, so a limit the body leaves out keeps
		// what a concurrent update wrote; the body was validated above.
		var fe fieldErrors
		before, prev := cl.Limits.MaxPartitions, cl.Limits
		patchLimits(&fe, rawLimits, &cl.Limits)
		if err := overCeilings(cl.Limits, &prev, cl.PlanID, cl.Ceilings); err != nil {
			return err
		}
		if cl.Limits.MaxPartitions != before && cl.Limits.MaxPartitions < cl.Partitions {
			return fmt.Errorf("%w: limits.max_partitions %d is below the %d partitions the cluster has",
				store.ErrInvalid, cl.Limits.MaxPartitions, cl.Partitions)
		}
		if req.DefaultTopicConfigs != nil {
			cl.DefaultTopicConfigs = *req.DefaultTopicConfigs
		}
		if req.BrokerConfigs != nil {
			if err := brokerConfigsOverLimits(*req.BrokerConfigs, cl.BrokerConfigs, cl.Limits.Capped(cl.Ceilings)); err != nil {
				return err
			}
			cl.BrokerConfigs = *req.BrokerConfigs
		}
		if req.AllowedCIDRs != nil {
			cl.AllowedCIDRs = allowed
		}
		return nil
	})
	if err != nil {
		return storeError(err, "cluster")
	}
	c.Response().Header().Set("ETag", clusterETag(cl))
	return c.JSON(http.StatusOK, s.clusterOut(cl))
}

func (s *Server) deleteCluster(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	if v := ifMatchVersion(c); v != 0 && v != cl.Version {
		return storeError(store.ErrStale, "cluster")
	}
	if err := s.st.DeleteCluster(c.Request().Context(), principal(c).OrgID, cl.ID); err != nil {
		return storeError(err, "cluster")
	}
	return c.NoContent(http.StatusNoContent)
}
