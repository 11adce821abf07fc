package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/store"
)

func saOut(sa store.ServiceAccount) client.ServiceAccount {
	return client.ServiceAccount{ID: sa.ID, Name: sa.Name, Description: sa.Description, OrgAdmin: sa.OrgAdmin, CreatedAt: sa.CreatedAt}
}

func keyOut(k store.APIKey) client.APIKey {
	return client.APIKey{ID: k.ID, ServiceAccountID: k.ServiceAccountID, ClusterID: k.ClusterID, Description: k.Description, CreatedAt: k.CreatedAt}
}

func rbOut(rb store.RoleBinding) client.RoleBinding {
	return client.RoleBinding{ID: rb.ID, ClusterID: rb.ClusterID, ServiceAccountID: rb.ServiceAccountID, Role: rb.Role, CreatedAt: rb.CreatedAt}
}

func checkDescription(fe *fieldErrors, d string) {
	if len(d) > 256 {
		fe.add("description", "must be at most 256 bytes, not %d", len(d))
	}
}

// checkRef validates an id field naming another resource by its prefix.
func checkRef(fe *fieldErrors, field, id, prefix string) {
	if !strings.HasPrefix(id, prefix+"-") || len(id) > 64 {
		fe.add(field, "must be an id of the form %s-…", prefix)
	}
}

func (s *Server) createServiceAccount(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	var req client.CreateServiceAccountRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	validName(&fe, "name", req.Name)
	checkDescription(&fe, req.Description)
	if err := fe.err(); err != nil {
		return err
	}
	sa, err := s.st.CreateServiceAccount(c.Request().Context(), principal(c).OrgID, req.Name, req.Description)
	if err != nil {
		return storeError(err, "service account")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/service-accounts/"+sa.ID)
	return c.JSON(http.StatusCreated, saOut(sa))
}

func (s *Server) listServiceAccounts(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	sas, next, err := s.st.ServiceAccounts(c.Request().Context(), principal(c).OrgID, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(sas, next, saOut))
}

func (s *Server) getServiceAccount(c echo.Context) error {
	sa, err := s.st.ServiceAccount(c.Request().Context(), principal(c).OrgID, c.Param("service_account_id"))
	if err != nil {
		return storeError(err, "service account")
	}
	if err := orgWide(c); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, saOut(sa))
}

func (s *Server) updateServiceAccount(c echo.Context) error {
	p := principal(c)
	sa, err := s.st.ServiceAccount(c.Request().Context(), p.OrgID, c.Param("service_account_id"))
	if err != nil {
		return storeError(err, "service account")
	}
	if err := orgWide(c); err != nil {
		return err
	}
	var req client.UpdateServiceAccountRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if req.Name != nil {
		validName(&fe, "name", *req.Name)
	}
	if req.Description != nil {
		checkDescription(&fe, *req.Description)
	}
	if err := fe.err(); err != nil {
		return err
	}
	sa, err = s.st.UpdateServiceAccount(c.Request().Context(), p.OrgID, sa.ID, req.Name, req.Description)
	if err != nil {
		return storeError(err, "service account")
	}
	return c.JSON(http.StatusOK, saOut(sa))
}

func (s *Server) deleteServiceAccount(c echo.Context) error {
	p := principal(c)
	sa, err := s.st.ServiceAccount(c.Request().Context(), p.OrgID, c.Param("service_account_id"))
	if err != nil {
		return storeError(err, "service account")
	}
	if err := orgWide(c); err != nil {
		return err
	}
	if sa.ID == p.Subject {
		return newProblem(http.StatusConflict, client.ProblemConflict, "a service account cannot delete itself")
	}
	if err := s.st.DeleteServiceAccount(c.Request().Context(), p.OrgID, sa.ID); err != nil {
		return storeError(err, "service account")
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) createAPIKey(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	var req client.CreateAPIKeyRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	checkRef(&fe, "service_account_id", req.ServiceAccountID, "sa")
	if req.ClusterID != "" {
		checkRef(&fe, "cluster_id", req.ClusterID, "vc")
	}
	checkDescription(&fe, req.Description)
	if err := fe.err(); err != nil {
		return err
	}
	secret, hash := identity.NewSecret()
	k, err := s.st.CreateAPIKey(c.Request().Context(), principal(c).OrgID, req.ServiceAccountID, req.ClusterID, req.Description, hash, identity.SCRAMCredentials(secret))
	if err != nil {
		return storeError(err, "service account or cluster")
	}
	out := keyOut(k)
	c.Set(replayBodyKey, mustJSON(out)) // recorded without the secret
	out.Secret = secret
	c.Response().Header().Set(echo.HeaderLocation, "/v1/api-keys/"+k.ID)
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listAPIKeys(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	ks, next, err := s.st.APIKeys(c.Request().Context(), principal(c).OrgID, c.QueryParam("service_account_id"), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(ks, next, keyOut))
}

func (s *Server) getAPIKey(c echo.Context) error {
	k, err := s.st.APIKey(c.Request().Context(), principal(c).OrgID, c.Param("key_id"))
	if err != nil {
		return storeError(err, "API key")
	}
	if err := orgWide(c); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, keyOut(k))
}

func (s *Server) deleteAPIKey(c echo.Context) error {
	p := principal(c)
	k, err := s.st.APIKey(c.Request().Context(), p.OrgID, c.Param("key_id"))
	if err != nil {
		return storeError(err, "API key")
	}
	if err := orgWide(c); err != nil {
		return err
	}
	if err := s.st.DeleteAPIKey(c.Request().Context(), p.OrgID, k.ID); err != nil {
		return storeError(err, "API key")
	}
	return c.NoContent(http.StatusNoContent)
}

var roles = []string{client.RoleAdmin, client.RoleDeveloperRead, client.RoleDeveloperWrite}

func (s *Server) createRoleBinding(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	var req client.CreateRoleBindingRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	checkRef(&fe, "service_account_id", req.ServiceAccountID, "sa")
	switch req.Role {
	case client.RoleAdmin, client.RoleDeveloperRead, client.RoleDeveloperWrite:
	default:
		fe.add("role", "must be one of %s", strings.Join(roles, ", "))
	}
	if err := fe.err(); err != nil {
		return err
	}
	rb, err := s.st.CreateRoleBinding(c.Request().Context(), cl.OrgID, cl.ID, req.ServiceAccountID, req.Role)
	if err != nil {
		return storeError(err, "service account")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/clusters/"+cl.ID+"/role-bindings/"+rb.ID)
	return c.JSON(http.StatusCreated, rbOut(rb))
}

func (s *Server) listRoleBindings(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	rbs, next, err := s.st.RoleBindings(c.Request().Context(), cl.OrgID, cl.ID, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(rbs, next, rbOut))
}

func (s *Server) getRoleBinding(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	rb, err := s.st.RoleBinding(c.Request().Context(), cl.OrgID, cl.ID, c.Param("binding_id"))
	if err != nil {
		return storeError(err, "role binding")
	}
	return c.JSON(http.StatusOK, rbOut(rb))
}

func (s *Server) deleteRoleBinding(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	if err := s.st.DeleteRoleBinding(c.Request().Context(), cl.OrgID, cl.ID, c.Param("binding_id")); err != nil {
		return storeError(err, "role binding")
	}
	return c.NoContent(http.StatusNoContent)
}
