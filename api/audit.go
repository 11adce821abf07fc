package api

// The audit log over REST: every mutation (POST, PUT, PATCH, DELETE) an
// authenticated principal makes is recorded, with its result, by the
// audit middleware; GET /v1/organizations/{org_id}/audit-log lists an
// organisation's rows (its org admins and the operator may read it).

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
)

// audit is middleware recording each mutation once it is answered. It
// records names, ids and the status, never the body.
func (s *Server) audit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		route := c.Path()
		// Records are data, metered and refused on the Kafka path like
		// any client's; unknown routes changed nothing.
		if route == "" || strings.HasSuffix(route, "/*") || strings.HasSuffix(route, "/records") {
			return next(c)
		}
		if err := next(c); err != nil {
			c.Error(err) // commits the response, so its status is known
		}
		s.auditLog.Record(s.auditEntry(c, route))
		return nil
	}
}

// auditEntry describes an answered mutation.
func (s *Server) auditEntry(c echo.Context, route string) store.AuditEntry {
	p := principal(c)
	e := store.AuditEntry{OrgID: p.OrgID, ClusterID: c.Param("cluster_id"), Channel: store.AuditREST, Result: store.AuditOK}
	if p.Operator {
		e.Principal = "operator"
		e.OrgID = c.Param("org_id")
	} else {
		e.Principal = acl.Principal(p.Subject)
	}
	if host, _, err := net.SplitHostPort(c.Request().RemoteAddr); err == nil {
		e.Source = host
	}
	e.Action, e.ResourceType, e.ResourceName = auditAction(c.Request().Method, route, c.Param)
	// A create names what it made only in its answer's Location.
	if loc := c.Response().Header().Get(echo.HeaderLocation); loc != "" && e.ResourceName == "" {
		if name, err := url.PathUnescape(path.Base(loc)); err == nil {
			e.ResourceName = name
		}
		switch {
		case e.ResourceType == "organization" && p.Operator:
			e.OrgID = e.ResourceName
		case e.ResourceType == "cluster":
			e.ClusterID = e.ResourceName
		}
	}
	switch code := c.Response().Status; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e.Result, e.Detail = store.AuditDenied, "HTTP "+strconv.Itoa(code)
	case code >= 400:
		e.Result, e.Detail = store.AuditFailed, "HTTP "+strconv.Itoa(code)
	}
	return e
}

// auditAction derives a row's action ("topic.create"), resource type and,
// when the route names it, resource from the route: the last static
// segment names the resource type (singular) and the parameter after it
// the resource; the method is the verb, unless the route ends in one
// ("…/reset") or names a part ("…/offsets": "delete-offsets").
func auditAction(method, route string, param func(string) string) (action, rtype, name string) {
	segs := strings.Split(strings.Trim(strings.TrimPrefix(route, "/v1"), "/"), "/")
	verb := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodPatch: "update", http.MethodDelete: "delete"}[method]
	switch segs[len(segs)-1] {
	case "reset":
		verb, segs = "reset", segs[:len(segs)-1]
	case "offsets":
		verb, segs = verb+"-offsets", segs[:len(segs)-1]
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if !strings.HasPrefix(segs[i], ":") {
			rtype = singular(segs[i])
			if i < len(segs)-1 {
				name = param(segs[i+1][1:])
			}
			break
		}
	}
	return rtype + "." + verb, rtype, name
}

func singular(seg string) string {
	switch {
	case strings.HasSuffix(seg, "ies"):
		return strings.TrimSuffix(seg, "ies") + "y"
	case strings.HasSuffix(seg, "s") && !strings.HasSuffix(seg, "ss"):
		return strings.TrimSuffix(seg, "s")
	}
	return seg
}

// listAuditLog serves GET /v1/organizations/{org_id}/audit-log.
func (s *Server) listAuditLog(c echo.Context) error {
	id := c.Param("org_id")
	p := principal(c)
	if !visibleOrg(c, id) {
		return errNotFound("organisation")
	}
	if !p.Operator && !p.OrgAdmin {
		return errForbidden("only org admin service accounts may read the audit log")
	}
	return s.auditLogOf(c, id)
}

// listOwnAuditLog serves GET /v1/audit-log: the caller's organisation's
// (tenantOnly: its org admins).
func (s *Server) listOwnAuditLog(c echo.Context) error {
	return s.auditLogOf(c, principal(c).OrgID)
}

func (s *Server) auditLogOf(c echo.Context, id string) error {
	if err := orgWide(c); err != nil {
		return err
	}
	pg, err := pageParams(c)
	if err != nil {
		return err
	}
	f := store.AuditFilter{ClusterID: c.QueryParam("cluster_id"), Principal: c.QueryParam("principal"),
		Action: c.QueryParam("action"), Result: c.QueryParam("result")}
	for field, v := range map[string]string{"cluster_id": f.ClusterID, "principal": f.Principal, "action": f.Action} {
		if len(v) > 256 {
			return fieldError(field, "must be at most 256 characters")
		}
	}
	switch f.Result {
	case "", store.AuditOK, store.AuditFailed, store.AuditDenied:
	default:
		return fieldError("result", "must be ok, failed or denied")
	}
	for field, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := c.QueryParam(field); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fieldError(field, "must be an RFC 3339 time")
			}
			*dst = t
		}
	}
	if pg.After != "" {
		if n, err := strconv.ParseInt(pg.After, 10, 64); err != nil || n <= 0 {
			return fieldError("cursor", "is not a cursor this API returned")
		}
	}
	rows, next, err := s.st.AuditLog(c.Request().Context(), id, f, pg)
	if err != nil {
		return storeError(err, "audit log")
	}
	return c.JSON(http.StatusOK, list(rows, next, auditOut))
}

func auditOut(e store.AuditEntry) client.AuditEntry {
	return client.AuditEntry{ID: strconv.FormatInt(e.ID, 10), At: e.At, ClusterID: e.ClusterID, Principal: e.Principal,
		Source: e.Source, Channel: e.Channel, Action: e.Action, ResourceType: e.ResourceType,
		ResourceName: e.ResourceName, Result: e.Result, Detail: e.Detail, Count: e.Count}
}

// pruneAudit deletes rows older than the retention, a bounded batch at a
// time so no statement runs long.
func (s *Server) pruneAudit(ctx context.Context) {
	before := time.Now().Add(-s.cfg.AuditRetention)
	for ctx.Err() == nil {
		n, err := s.st.PruneAudit(ctx, before, 10000)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("audit: pruning old rows failed", "err", err)
			}
			return
		}
		if n < 10000 {
			return
		}
	}
}
