package api

import (
	"mime"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
)

// The OAuth 2.0 token endpoint (RFC 6749 client_credentials, the client
// being an API key), the JWKS and the OIDC discovery document. Errors here
// use OAuth's own JSON shape ({"error": ...}), as clients such as
// librdkafka expect, not problem+json.

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func oauthFail(c echo.Context, status int, code, desc string) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="eddy"`)
	}
	return c.JSON(status, oauthError{Error: code, Description: desc})
}

func (s *Server) token(c echo.Context) error {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return oauthFail(c, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return oauthFail(c, http.StatusBadRequest, "invalid_request", "the form cannot be parsed")
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		return oauthFail(c, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	} else if r.PostForm.Has("client_secret") {
		return oauthFail(c, http.StatusBadRequest, "invalid_request", "use one client authentication method, not two")
	}
	k, ok, err := s.checkKey(r.Context(), id, secret)
	if err != nil {
		return err
	}
	if !ok {
		return oauthFail(c, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
	}
	tok, exp, err := s.issuer.Issue(r.Context(), identity.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: k.ServiceAccountID},
		Org:              k.OrgID,
		Cluster:          k.ClusterID,
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, client.Token{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(time.Until(exp).Round(time.Second).Seconds())})
}

func (s *Server) jwks(c echo.Context) error {
	keys, err := s.issuer.JWKS(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=60")
	return c.JSON(http.StatusOK, map[string]any{"keys": keys})
}

func (s *Server) discovery(c echo.Context) error {
	u := s.cfg.PublicURL
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                u,
		"token_endpoint":                        u + "/oauth2/token",
		"jwks_uri":                              u + "/.well-known/jwks.json",
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"id_token_signing_alg_values_supported": []string{identity.Alg},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
	})
}
