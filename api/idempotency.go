package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/store"
)

// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): a POST
// carrying one is recorded with its response; a repeat with the same key
// and the same request replays that response (marked Idempotent-Replayed:
// true) and does nothing else. The same key with a different request is a
// 422; a repeat while the first is still running is a 409. Server errors
// are not recorded, so they can be retried. Keys are scoped to the
// principal's organisation (or the operator) and kept for a day.
//
// Secrets are never stored: a response that shows one (a new API key)
// is recorded with the secret removed, and its replay says so.

const idempotencyTTL = 24 * time.Hour

// replayBodyKey is the echo.Context key under which a handler leaves the
// body to record instead of the one it sent (without secrets).
const replayBodyKey = "idempotency.replay_body"

type captureWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get("Idempotency-Key")
		if key == "" || c.Request().Method != http.MethodPost {
			return next(c)
		}
		if len(key) > 255 || !validRequestID(key) {
			return fieldError("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
		}
		r := c.Request()
		body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes))
		if err != nil {
			return jsonError(err, s.cfg.MaxBodyBytes)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h := sha256.New()
		h.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
		h.Write(body)
		hash := h.Sum(nil)

		p := principal(c)
		scope := "org:" + p.OrgID + ":" + p.Subject
		if p.Operator {
			scope = "operator"
		}
		ctx := r.Context()
		prior, fresh, err := s.st.BeginIdempotent(ctx, scope, key, hash)
		if err != nil {
			return err
		}
		if !fresh {
			switch {
			case !bytes.Equal(prior.RequestHash, hash):
				return newProblem(http.StatusUnprocessableEntity, client.ProblemIdempotencyReuse,
					"this Idempotency-Key was used for a different request")
			case prior.Status == 0:
				return newProblem(http.StatusConflict, client.ProblemIdempotencyInFlight,
					"a request with this Idempotency-Key is still being processed; retry later")
			}
			for k, v := range prior.Headers {
				c.Response().Header().Set(k, v)
			}
			c.Response().Header().Set("Idempotent-Replayed", "true")
			c.Response().WriteHeader(prior.Status)
			_, err := c.Response().Write(prior.Body)
			return err
		}

		cw := &captureWriter{ResponseWriter: c.Response().Writer}
		c.Response().Writer = cw
		if err := next(c); err != nil {
			c.Error(err)
		}
		c.Response().Writer = cw.ResponseWriter
		status := c.Response().Status
		// The request's own context may be gone; recording must still happen.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if status >= 500 || status == 0 {
			if err := s.st.AbortIdempotent(rctx, scope, key); err != nil {
				s.log.Warn("idempotency: release failed", "request_id", requestID(c), "err", err)
			}
			return nil
		}
		rec := cw.buf.Bytes()
		if b, ok := c.Get(replayBodyKey).([]byte); ok {
			rec = b
		}
		hdr := map[string]string{}
		for _, k := range []string{echo.HeaderContentType, echo.HeaderLocation, "ETag"} {
			if v := c.Response().Header().Get(k); v != "" {
				hdr[k] = v
			}
		}
		if err := s.st.FinishIdempotent(rctx, scope, key, store.Replay{RequestHash: hash, Status: status, Headers: hdr, Body: rec}); err != nil {
			s.log.Warn("idempotency: record failed", "request_id", requestID(c), "err", errors.Unwrap(err))
		}
		return nil
	}
}
