package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/store"
)

// problem is an error that becomes an RFC 7807 response.
type problem struct {
	client.Problem
	header http.Header // extra response headers (WWW-Authenticate)
}

func (p *problem) Error() string { return p.Problem.Error() }

func newProblem(status int, typ, detail string) *problem {
	return &problem{Problem: client.Problem{Type: typ, Title: titles[typ], Status: status, Detail: detail}}
}

var titles = map[string]string{
	client.ProblemValidation:          "Validation failed",
	client.ProblemMalformed:           "Malformed request",
	client.ProblemUnauthorized:        "Unauthorized",
	client.ProblemForbidden:           "Forbidden",
	client.ProblemNotFound:            "Not found",
	client.ProblemMethodNotAllowed:    "Method not allowed",
	client.ProblemConflict:            "Conflict",
	client.ProblemPreconditionFailed:  "Precondition failed",
	client.ProblemTooLarge:            "Payload too large",
	client.ProblemUnsupportedMedia:    "Unsupported media type",
	client.ProblemLimitExceeded:       "Limit exceeded",
	client.ProblemInvalidChange:       "Invalid change",
	client.ProblemIdempotencyReuse:    "Idempotency key reused",
	client.ProblemIdempotencyInFlight: "Idempotency key in flight",
	client.ProblemInternal:            "Internal server error",
	client.ProblemUnavailable:         "Service unavailable",
	client.ProblemTooManyRequests:     "Too many requests",
}

// errTooMany is a 429 that tells the client when to try again.
func errTooMany(detail string, retryAfter time.Duration) *problem {
	p := newProblem(http.StatusTooManyRequests, client.ProblemTooManyRequests, detail)
	p.header = http.Header{"Retry-After": {strconv.Itoa(max(1, int((retryAfter+time.Second-1)/time.Second)))}}
	return p
}

func errNotFound(what string) *problem {
	return newProblem(http.StatusNotFound, client.ProblemNotFound, what+" not found")
}

func errForbidden(detail string) *problem {
	return newProblem(http.StatusForbidden, client.ProblemForbidden, detail)
}

// fieldErrors collects validation errors naming their fields.
type fieldErrors []client.FieldError

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, client.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil or a 400 problem listing every field error.
func (fe fieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	p := newProblem(http.StatusBadRequest, client.ProblemValidation, "the request has invalid fields: "+fe[0].Field+": "+fe[0].Message)
	p.Errors = fe
	return p
}

func fieldError(field, format string, args ...any) error {
	var fe fieldErrors
	fe.add(field, format, args...)
	return fe.err()
}

// storeError maps the store's sentinels to problems; what names the
// resource for 404s.
func storeError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return errNotFound(what)
	case errors.Is(err, store.ErrExists):
		return newProblem(http.StatusConflict, client.ProblemConflict, strings.TrimPrefix(err.Error(), "store: "))
	case errors.Is(err, store.ErrStale):
		return newProblem(http.StatusPreconditionFailed, client.ProblemPreconditionFailed, "the resource changed since the ETag given in If-Match")
	case errors.Is(err, store.ErrLimit):
		return newProblem(http.StatusUnprocessableEntity, client.ProblemLimitExceeded, detailOf(err))
	case errors.Is(err, store.ErrInvalid):
		return newProblem(http.StatusUnprocessableEntity, client.ProblemInvalidChange, detailOf(err))
	}
	return err
}

// detailOf strips the package prefixes of a wrapped store error.
func detailOf(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "store: "); i >= 0 {
		s = s[i+len("store: "):]
	}
	return s
}

// decodeJSON reads a JSON request body of at most limit bytes into v,
// refusing unknown fields and trailing data.
func decodeJSON(c echo.Context, limit int64, v any) error {
	r := c.Request()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return newProblem(http.StatusUnsupportedMediaType, client.ProblemUnsupportedMedia, "the body must be application/json")
	}
	body := http.MaxBytesReader(c.Response(), r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, limit)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err, limit)
		}
		return newProblem(http.StatusBadRequest, client.ProblemMalformed, "the body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error, limit int64) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return newProblem(http.StatusRequestEntityTooLarge, client.ProblemTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
	case errors.Is(err, io.EOF):
		return newProblem(http.StatusBadRequest, client.ProblemMalformed, "the body is empty; a JSON object is required")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return newProblem(http.StatusBadRequest, client.ProblemMalformed, "the body is not valid JSON: "+err.Error())
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			return newProblem(http.StatusBadRequest, client.ProblemMalformed, "the body must be a JSON object")
		}
		return fieldError(field, "must be %s, not %s", jsonKind(ute.Type.Kind().String()), ute.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldError(name, "is not a known field")
	}
	return newProblem(http.StatusBadRequest, client.ProblemMalformed, "the body is not valid JSON: "+err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "int32", "int64", "int":
		return "an integer"
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "ptr":
		return "an object"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	}
	return k
}

// writeProblem writes p as application/problem+json.
func writeProblem(c echo.Context, p *problem) {
	p.Instance = c.Request().URL.Path
	p.RequestID = requestID(c)
	for k, vs := range p.header {
		for _, v := range vs {
			c.Response().Header().Add(k, v)
		}
	}
	b, _ := json.Marshal(p.Problem)
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	c.Response().Write(b)
}

// handleError is echo's HTTPErrorHandler: every error leaves as
// problem+json; anything unexpected is logged and becomes a 500 that says
// nothing about its cause.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		p   *problem
		he  *echo.HTTPError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &p):
	case errors.As(err, &mbe):
		p = newProblem(http.StatusRequestEntityTooLarge, client.ProblemTooLarge, "the body is too large")
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			if allow := s.allowed(c.Request().URL.Path); len(allow) > 0 {
				p = newProblem(http.StatusMethodNotAllowed, client.ProblemMethodNotAllowed, "the route accepts "+strings.Join(allow, ", "))
				p.header = http.Header{"Allow": {strings.Join(allow, ", ")}}
			} else {
				p = newProblem(he.Code, client.ProblemNotFound, "no such route")
			}
		case http.StatusMethodNotAllowed:
			p = newProblem(he.Code, client.ProblemMethodNotAllowed, "the route does not support this method")
		case http.StatusRequestEntityTooLarge:
			p = newProblem(he.Code, client.ProblemTooLarge, "the body is too large")
		case http.StatusUnauthorized:
			p = newProblem(he.Code, client.ProblemUnauthorized, fmt.Sprint(he.Message))
		case http.StatusServiceUnavailable:
			p = newProblem(he.Code, client.ProblemUnavailable, fmt.Sprint(he.Message))
		default:
			if he.Code < 500 {
				p = newProblem(he.Code, client.ProblemMalformed, fmt.Sprint(he.Message))
			}
		}
	}
	if p == nil {
		s.log.Error("request failed", "request_id", requestID(c), "method", c.Request().Method, "path", c.Path(), "err", err)
		p = newProblem(http.StatusInternalServerError, client.ProblemInternal, "an internal error occurred; quote the request id when reporting it")
	}
	if c.Request().Method == http.MethodHead {
		c.Response().WriteHeader(p.Status)
		return
	}
	writeProblem(c, p)
}
