package api

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/version"
	"github.com/nofxhq/nofx/web/httpx"
)

// The API's answers that are an object around a list or one item.
type (
	templatesResponse struct {
		Templates []templateJSON `json:"templates"`
	}
	templateOnlyResponse struct {
		Template templateJSON `json:"template"`
	}
	versionsResponse struct {
		Template templateJSON          `json:"template"`
		Versions []templateVersionJSON `json:"versions"`
	}
	diffResponse struct {
		From  int            `json:"from"`
		To    int            `json:"to"`
		Lines []diffLineJSON `json:"lines"`
	}
	deploymentsResponse struct {
		Deployments []deploymentJSON `json:"deployments"`
	}
	deploymentResponse struct {
		Deployment deploymentJSON `json:"deployment"`
	}
	membersResponse struct {
		Members []memberJSON `json:"members"`
	}
	memberResponse struct {
		Member memberJSON `json:"member"`
	}
	invitesResponse struct {
		Invites []inviteJSON `json:"invites"`
	}
	keysResponse struct {
		Keys []apiKeyJSON `json:"keys"`
	}
	teamResponse struct {
		Team teams.Team `json:"team"`
	}
	// templateRequest is a template as the builder exports it, with an
	// optional note for the version it makes.
	templateRequest struct {
		templates.Spec
		Note string `json:"note,omitempty"`
	}
)

// apiOperation is one /api/v1 route as the OpenAPI document describes it.
// Request and the responses are Go values whose types the API encodes;
// every operation also answers the error shape.
type apiOperation struct {
	method, path string // as registered, with :params
	summary      string
	tag          string
	request      any         // the JSON body, or nil
	optionalBody bool        // the body may be left out
	status       int         // the success status
	response     any         // its JSON body, or nil for none
	also         map[int]any // other success statuses and their bodies
	query        []string    // query parameters
	public       bool        // no API key needed
	stream       bool        // answers text/event-stream
	limit        bool        // may answer 402 plan_limit
	header       []string    // request headers it reads
}

// apiOperations are every /api/v1 route; a test fails when a registered
// route is missing here, or one here is not registered.
var apiOperations = []apiOperation{
	{method: "GET", path: "/api/v1/openapi.json", summary: "This document", tag: "meta", status: 200, public: true},
	{method: "GET", path: "/api/v1/me", summary: "The caller: user or key, and the team it acts in", tag: "account", status: 200, response: meResponse{}},
	{method: "GET", path: "/api/v1/billing", summary: "The team's plan, period, limits, usage and warnings", tag: "billing", status: 200, response: billingJSON{}},
	{method: "POST", path: "/api/v1/teams", summary: "Create a team (from a signed-in session)", tag: "account", request: createTeamRequest{}, status: 201, response: teamResponse{}},
	{method: "POST", path: "/api/v1/runs", summary: "Start a run from a template, a prompt or a plan", tag: "runs", request: createRunRequest{}, status: 201,
		response: runJSON{}, limit: true, header: []string{"Idempotency-Key"}},
	{method: "GET", path: "/api/v1/runs", summary: "The team's runs, newest first (keyset pages)", tag: "runs", status: 200, response: listRunsResponse{},
		query: []string{"status", "template", "from", "to", "sort", "limit", "before", "before_cost"}},
	{method: "GET", path: "/api/v1/runs/:id", summary: "A run with its steps", tag: "runs", status: 200, response: runJSON{}},
	{method: "POST", path: "/api/v1/runs/:id/cancel", summary: "Cancel a run", tag: "runs", status: 200, response: runJSON{}},
	{method: "POST", path: "/api/v1/runs/:id/retry", summary: "Retry a failed or cancelled run from its unfinished steps", tag: "runs", status: 200, response: runJSON{}},
	{method: "POST", path: "/api/v1/runs/:id/rerun", summary: "Start a new run from the same plan and inputs", tag: "runs", status: 201, response: runJSON{}, limit: true},
	{method: "GET", path: "/api/v1/runs/:id/events", summary: "The run's timeline as Server-Sent Events", tag: "runs", status: 200, stream: true,
		header: []string{"Last-Event-ID"}, query: []string{"after"}},
	{method: "POST", path: "/api/v1/runs/:id/steps/:step/approve", summary: "Approve a waiting approval step", tag: "runs",
		request: decisionRequest{}, optionalBody: true, status: 200, response: runJSON{}},
	{method: "POST", path: "/api/v1/runs/:id/steps/:step/reject", summary: "Reject a waiting approval step", tag: "runs",
		request: decisionRequest{}, optionalBody: true, status: 200, response: runJSON{}},
	{method: "POST", path: "/api/v1/runs/:id/steps/:step/compare", summary: "Replay a finished LLM step on up to four other models", tag: "comparisons",
		request: compareRequest{}, status: 201, response: comparisonJSON{}, header: []string{"Idempotency-Key"}},
	{method: "GET", path: "/api/v1/comparisons/:id", summary: "A comparison: the original output and each candidate's, with tokens, latency and cost", tag: "comparisons",
		status: 200, response: comparisonJSON{}},
	{method: "POST", path: "/api/v1/comparisons/:id/prefer", summary: "Mark the preferred output", tag: "comparisons", request: preferRequest{}, status: 200, response: comparisonJSON{}},
	{method: "DELETE", path: "/api/v1/comparisons/:id", summary: "Delete a comparison", tag: "comparisons", status: 204},
	{method: "GET", path: "/api/v1/templates", summary: "The team's templates", tag: "templates", status: 200, response: templatesResponse{}},
	{method: "POST", path: "/api/v1/templates", summary: "Create a template (the builder's export)", tag: "templates", request: templateRequest{}, status: 201, response: templateResponse{}},
	{method: "GET", path: "/api/v1/templates/:slug", summary: "A template's version (current by default) and its content", tag: "templates",
		status: 200, response: templateResponse{}, query: []string{"version"}},
	{method: "PUT", path: "/api/v1/templates/:slug", summary: "Save a template: a new version when it changed", tag: "templates", request: templateRequest{}, status: 200, response: templateResponse{}},
	{method: "DELETE", path: "/api/v1/templates/:slug", summary: "Delete a template", tag: "templates", status: 204},
	{method: "GET", path: "/api/v1/templates/:slug/versions", summary: "A template's versions, newest first", tag: "templates", status: 200, response: versionsResponse{}},
	{method: "POST", path: "/api/v1/templates/:slug/versions/:version/rollback", summary: "Make a version current again", tag: "templates", status: 200, response: templateOnlyResponse{}},
	{method: "GET", path: "/api/v1/templates/:slug/diff", summary: "The lines that differ between two versions", tag: "templates", status: 200, response: diffResponse{},
		query: []string{"from", "to"}},
	{method: "POST", path: "/api/v1/templates/:slug/deploy", summary: "Pin a version to an environment", tag: "deployments", request: deployRequest{}, status: 200,
		response: deployResponse{}, also: map[int]any{201: deployResponse{}}},
	{method: "GET", path: "/api/v1/templates/:slug/deployments", summary: "A template's deployments", tag: "deployments", status: 200, response: deploymentsResponse{}},
	{method: "POST", path: "/api/v1/deployments/:slug/:env/runs", summary: "Start a run of a deployment's pinned version", tag: "deployments",
		request: triggerRequest{}, optionalBody: true, status: 201, response: runJSON{}, limit: true, header: []string{"Idempotency-Key"}},
	{method: "POST", path: "/api/v1/deployments/:slug/:env/pause", summary: "Pause a deployment", tag: "deployments", status: 200, response: deploymentResponse{}},
	{method: "POST", path: "/api/v1/deployments/:slug/:env/resume", summary: "Resume a deployment", tag: "deployments", status: 200, response: deploymentResponse{}},
	{method: "GET", path: "/api/v1/api-keys", summary: "The team's API keys", tag: "keys", status: 200, response: keysResponse{}},
	{method: "POST", path: "/api/v1/api-keys", summary: "Make an API key (its secret is in this answer only)", tag: "keys", request: createKeyRequest{}, status: 201, response: createKeyResponse{}},
	{method: "POST", path: "/api/v1/api-keys/:id/revoke", summary: "Revoke an API key", tag: "keys", status: 204},
	{method: "GET", path: "/api/v1/members", summary: "The team's members", tag: "members", status: 200, response: membersResponse{}},
	{method: "POST", path: "/api/v1/members/:user/role", summary: "Change a member's role", tag: "members", request: changeRoleRequest{}, status: 200, response: memberResponse{}},
	{method: "POST", path: "/api/v1/members/:user/remove", summary: "Remove a member", tag: "members", status: 204},
	{method: "GET", path: "/api/v1/invites", summary: "The team's invitations, pending and expired", tag: "members", status: 200, response: invitesResponse{}},
	{method: "POST", path: "/api/v1/invites", summary: "Invite someone by email", tag: "members", request: createInviteRequest{}, status: 201, response: inviteResponse{}, limit: true},
	{method: "POST", path: "/api/v1/invites/:id/revoke", summary: "Revoke an invitation", tag: "members", status: 204},
	{method: "POST", path: "/api/v1/invites/:id/resend", summary: "Send an invitation again, with a new link", tag: "members", status: 200, response: inviteResponse{}},
}

// openAPIPath writes an Echo path as OpenAPI writes it: /runs/{id}.
func openAPIPath(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}

// errorCodes are every code of the error shape.
var errorCodes = []string{"bad_request", "unauthorized", "payment_required", "plan_limit", "forbidden", "not_found",
	"method_not_allowed", "conflict", "idempotency_key_reused", "request_too_large", "unsupported_media_type",
	"validation_failed", "rate_limited", "unavailable", "internal", "error"}

// errorStatuses are the error answers every operation may give, and what
// they mean.
var errorStatuses = map[int]string{
	400: "Malformed: the body or a parameter does not read",
	401: "No valid API key (or session)",
	403: "The caller's role does not allow it",
	404: "No such resource in the caller's team",
	409: "The resource's state does not allow it now",
	413: "The body is too large",
	415: "The body is not JSON",
	422: "Validation failed: fields says which, and why",
	429: "Rate limited: Retry-After says when to try again",
}

// OpenAPI returns the OpenAPI 3.1 document of /api/v1.
func OpenAPI() map[string]any {
	openAPIOnce.Do(func() { openAPIDoc = buildOpenAPI() })
	return openAPIDoc
}

var (
	openAPIOnce sync.Once
	openAPIDoc  map[string]any
)

func buildOpenAPI() map[string]any {
	s := &schemas{components: map[string]any{}}
	errRef := s.of(httpx.APIError{})
	// The error codes, named: a client can switch on them.
	if body, ok := s.components["ApiErrorBody"].(map[string]any); ok {
		body["properties"].(map[string]any)["code"] = map[string]any{"type": "string", "enum": errorCodes,
			"description": "What went wrong, for programs; message says it for people, and fields names the fields at fault."}
	}
	paths := map[string]any{}
	for _, op := range apiOperations {
		path := openAPIPath(op.path)
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		o := map[string]any{
			"operationId": operationID(op),
			"summary":     op.summary,
			"tags":        []string{op.tag},
		}
		var params []any
		for _, seg := range strings.Split(op.path, "/") {
			if name, ok := strings.CutPrefix(seg, ":"); ok {
				params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		for _, q := range op.query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
		}
		for _, h := range op.header {
			params = append(params, map[string]any{"name": h, "in": "header", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if len(params) > 0 {
			o["parameters"] = params
		}
		if op.request != nil {
			o["requestBody"] = map[string]any{
				"required": !op.optionalBody,
				"content":  map[string]any{"application/json": map[string]any{"schema": s.of(op.request)}},
			}
		}
		responses := map[string]any{}
		success := func(status int, body any) {
			r := map[string]any{"description": http.StatusText(status)}
			switch {
			case op.stream:
				r["description"] = "A stream of Server-Sent Events: each timeline event as an event named by its kind (run.created, step.started, step.succeeded…) with an id for Last-Event-ID and the event as JSON; delta events carry streamed text; the stream ends with an end event when the run finishes."
				r["content"] = map[string]any{"text/event-stream": map[string]any{"schema": map[string]any{"type": "string"}}}
			case op.path == "/api/v1/openapi.json":
				r["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
			case body != nil:
				r["content"] = map[string]any{"application/json": map[string]any{"schema": s.of(body)}}
			}
			responses[strconv.Itoa(status)] = r
		}
		success(op.status, op.response)
		for status, body := range op.also {
			success(status, body)
		}
		if !op.public {
			for status, desc := range errorStatuses {
				responses[strconv.Itoa(status)] = errorResponse(desc, errRef)
			}
			if op.limit {
				responses["402"] = errorResponse("Past a plan limit (code plan_limit): fields names the limit, the plan, the usage and the quota", errRef)
			}
			responses["500"] = errorResponse("Something went wrong on our side", errRef)
			responses["503"] = errorResponse("Unavailable for now: try again", errRef)
		} else {
			o["security"] = []any{}
		}
		o["responses"] = responses
		item[strings.ToLower(op.method)] = o
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "NOFX API",
			"version":     version.String(),
			"description": "The JSON API of a NOFX instance: runs, templates, deployments, keys, members and billing of the team the API key belongs to. Errors have one shape, {\"error\":{\"code\":\"...\",\"message\":\"...\",\"fields\":{...}}}.",
		},
		"servers":    []any{map[string]any{"url": "/"}},
		"security":   []any{map[string]any{"apiKey": []any{}}},
		"tags":       tags(),
		"paths":      paths,
		"components": map[string]any{"schemas": s.components, "securitySchemes": map[string]any{"apiKey": map[string]any{"type": "http", "scheme": "bearer", "description": "An API key (nofx_...) made on the team's API keys page or with nofx tokens create; a signed-in session's cookie works too."}}},
	}
}

func errorResponse(desc string, ref map[string]any) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": ref}}}
}

// tags lists the operations' tags, in order.
func tags() []any {
	seen := map[string]bool{}
	var names []string
	for _, op := range apiOperations {
		if !seen[op.tag] {
			seen[op.tag] = true
			names = append(names, op.tag)
		}
	}
	sort.Strings(names)
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = map[string]any{"name": n}
	}
	return out
}

// operationID names an operation: GET /api/v1/runs/:id is getRunsById.
func operationID(op apiOperation) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(op.method))
	for _, seg := range strings.Split(strings.TrimPrefix(op.path, "/api/v1/"), "/") {
		name, param := strings.CutPrefix(seg, ":")
		if param {
			b.WriteString("By")
		}
		for _, w := range strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '.' || r == '_' }) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// OpenAPIDocument serves the document; it needs no key.
func (s *API) OpenAPIDocument(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, OpenAPI())
}
