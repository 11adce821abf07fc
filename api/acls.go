package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
)

// Kafka ACLs of a cluster (internal/acl has the model). They are the same
// ACLs Kafka clients manage with CreateAcls/DescribeAcls/DeleteAcls;
// brokers apply a change within moments (migrations/0008_acls.sql).

func aclOut(a store.ACL) client.ACL {
	return client.ACL{ID: a.ID, ClusterID: a.Cluster, Principal: a.Principal, ResourceType: string(a.ResourceType),
		ResourceName: a.ResourceName, PatternType: string(a.PatternType), Operation: string(a.Operation),
		Permission: string(a.Permission), Host: a.Host, CreatedAt: a.CreatedAt}
}

func (s *Server) createACL(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	var req client.CreateACLRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if req.PatternType == "" {
		req.PatternType = client.ACLPatternLiteral
	}
	a := acl.ACL{Cluster: cl.ID, Principal: req.Principal, ResourceType: acl.ResourceType(req.ResourceType),
		ResourceName: req.ResourceName, PatternType: acl.PatternType(req.PatternType), Operation: acl.Operation(req.Operation),
		Permission: acl.Permission(req.Permission), Host: req.Host}
	if err := a.Validate(); err != nil {
		var fe *acl.FieldError
		if errors.As(err, &fe) {
			return fieldError(fe.Field, "%s", fe.Message)
		}
		return err
	}
	out, err := s.st.CreateACL(c.Request().Context(), cl.OrgID, a)
	if err != nil {
		return storeError(err, "cluster")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/clusters/"+cl.ID+"/acls/"+out.ID)
	return c.JSON(http.StatusCreated, aclOut(out))
}

func (s *Server) listACLs(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	as, next, err := s.st.ACLs(c.Request().Context(), cl.OrgID, cl.ID, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(as, next, aclOut))
}

func (s *Server) getACL(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	a, err := s.st.GetACL(c.Request().Context(), cl.OrgID, cl.ID, c.Param("acl_id"))
	if err != nil {
		return storeError(err, "ACL")
	}
	return c.JSON(http.StatusOK, aclOut(a))
}

func (s *Server) deleteACL(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	if err := s.st.DeleteACL(c.Request().Context(), cl.OrgID, cl.ID, c.Param("acl_id")); err != nil {
		return storeError(err, "ACL")
	}
	return c.NoContent(http.StatusNoContent)
}
