package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/web/api"
)

// apiValidator validates the API's answers against the OpenAPI document,
// built once for all tests.
var apiValidator struct {
	once sync.Once
	v    validator.Validator
	err  error
}

func openAPIValidator(t *testing.T) validator.Validator {
	t.Helper()
	apiValidator.once.Do(func() {
		b, err := json.Marshal(api.OpenAPI())
		if err != nil {
			apiValidator.err = err
			return
		}
		doc, err := libopenapi.NewDocument(b)
		if err != nil {
			apiValidator.err = err
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			apiValidator.err = errs[0]
			return
		}
		apiValidator.v = v
	})
	require.NoError(t, apiValidator.err, "build the OpenAPI validator")
	return apiValidator.v
}

// checkAgainstOpenAPI fails the test when an /api/v1 answer does not match
// the document: its status, its content type or its body's schema. Answers
// to paths the document does not have (a test's deliberate 404) are left
// to the route walk below.
func checkAgainstOpenAPI(t *testing.T, req *http.Request, res *http.Response, body string) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/api/v1/") || strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return
	}
	clone := *res
	clone.Body = io.NopCloser(strings.NewReader(body))
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(nil))
	ok, errs := openAPIValidator(t).ValidateHttpResponse(r2, &clone)
	if ok {
		return
	}
	var msgs []string
	for _, e := range errs {
		if strings.Contains(e.Message, "not found") && strings.Contains(strings.ToLower(e.Message), "path") {
			return // not a documented path: a probe of a wrong address
		}
		msg := e.Message + ": " + e.Reason
		for _, sv := range e.SchemaValidationErrors {
			msg += " [" + sv.FieldPath + ": " + sv.Reason + "]"
		}
		msgs = append(msgs, msg)
	}
	t.Errorf("%s %s answered %d, which the OpenAPI document does not allow:\n%s\nbody: %.600s", req.Method, req.URL.Path, res.StatusCode, strings.Join(msgs, "\n"), body)
}

// The document is valid OpenAPI 3.1, served without a key, and names every
// /api/v1 route the router has, and no other.
func TestOpenAPIDocumentCoversEveryRoute(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	res := a.client().get("/api/v1/openapi.json")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var served map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Body), &served))
	require.Equal(t, "3.1.0", served["openapi"])

	b, err := json.Marshal(api.OpenAPI())
	require.NoError(t, err)
	doc, err := libopenapi.NewDocument(b)
	require.NoError(t, err)
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)
	ok, verrs := v.ValidateDocument()
	for _, e := range verrs {
		t.Errorf("the document is not valid OpenAPI: %s: %s", e.Message, e.Reason)
	}
	require.True(t, ok)

	documented := map[string]bool{}
	paths := served["paths"].(map[string]any)
	for path, item := range paths {
		for method := range item.(map[string]any) {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	registered := map[string]bool{}
	for _, r := range a.App.Web.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Method == "echo_route_not_found" {
			continue
		}
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			if name, ok := strings.CutPrefix(p, ":"); ok {
				parts[i] = "{" + name + "}"
			}
		}
		registered[r.Method+" "+strings.Join(parts, "/")] = true
	}
	var missing, extra []string
	for route := range registered {
		if !documented[route] {
			missing = append(missing, route)
		}
	}
	for route := range documented {
		if !registered[route] {
			extra = append(extra, route)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	require.Empty(t, missing, "registered /api/v1 routes missing from the OpenAPI document")
	require.Empty(t, extra, "documented routes that are not registered")
}

// The validator the HTTP tests use refuses an answer the document does not
// allow (so that the check of every answer can fail).
func TestOpenAPIValidatorRefusesWhatTheDocumentDoesNotAllow(t *testing.T) {
	t.Parallel()
	v := openAPIValidator(t)
	check := func(method, path string, status int, body string) bool {
		req, err := http.NewRequest(method, "http://nofx.test"+path, nil)
		require.NoError(t, err)
		res := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: req}
		ok, _ := v.ValidateHttpResponse(req, res)
		return ok
	}
	require.True(t, check("GET", "/api/v1/me", 200, `{"user":{"id":1,"email":"a@b.c","name":"","is_site_admin":false}}`))
	require.False(t, check("GET", "/api/v1/me", 200, `{"user":{"id":"one","email":"a@b.c","name":"","is_site_admin":false}}`), "a string id")
	require.False(t, check("GET", "/api/v1/me", 200, `{"user":{"id":1,"email":"a@b.c","name":"","is_site_admin":false},"extra":1}`), "an undocumented field")
	require.False(t, check("GET", "/api/v1/runs/7", 200, `{"id":7}`), "a run without its fields")
	require.True(t, check("GET", "/api/v1/runs/7", 404, `{"error":{"code":"not_found","message":"We could not find that."}}`))
	require.False(t, check("GET", "/api/v1/runs/7", 404, `{"message":"nope"}`), "not the error shape")
	require.False(t, check("GET", "/api/v1/runs/7", 404, `{"error":{"code":"oops","message":"x"}}`), "a code the document does not name")
	require.False(t, check("DELETE", "/api/v1/templates/x", 200, `{}`), "an undocumented status")
}
