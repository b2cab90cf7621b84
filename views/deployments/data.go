// Package deployments shows a template's deployments: pinned versions,
// triggers (webhook, schedule), recent runs and the deploy form.
package deployments

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/audit"
	dep "github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/templates"
)

// Data is the deployments page of one template.
type Data struct {
	Template  templates.Template
	Versions  []templates.Version // newest first
	Envs      []Env               // one per environment, production first
	CanDeploy bool
	CanRun    bool // may start runs (by hand, on a pinned version)
	TimeZone  string
	Location  *time.Location
	Deploy    DeployForm
	// Secret is a webhook secret just made, shown on this response only.
	Secret *Secret
}

// Env is one environment of the template: its deployment, if any, and the
// forms that came back with errors.
type Env struct {
	Name       string
	Deployment *dep.Overview // nil when nothing is deployed there
	WebhookURL string
	Forms      EnvForms
	// Refusals are the latest runs of the deployment that could not start
	// (a schedule's tick, a webhook delivery), newest first.
	Refusals []audit.Entry
}

// EnvForms is what was typed into an environment's forms, with problems.
type EnvForms struct {
	Schedule      *string // nil: show the saved schedule
	ScheduleError string
	InputMap      *string // nil: show the saved input map
	InputMapError string
}

// DeployForm is what was chosen in the deploy form, with its problems.
type DeployForm struct {
	Environment string
	Version     string
	Errors      map[string]string
}

// Secret is a webhook secret to show once, with where it signs for.
type Secret struct {
	Environment string
	Secret      string
	URL         string
	Created     bool // the deployment was just made (else the secret was rotated)
}

// exampleBody is a webhook body that fills the inputs of the version of
// the template deployed to env (the newest version when nothing is): each
// input's default, else its first choice, 1 for a number, or words; placed
// where the deployment's input map reads it ("pull_request.title" nests),
// else under the input's name.
func (d Data) exampleBody(env string) string {
	version := 0
	inputMap := map[string]string{}
	for _, e := range d.Envs {
		if e.Name == env && e.Deployment != nil {
			version = e.Deployment.Version
			_ = json.Unmarshal([]byte(e.Deployment.InputMapJSON), &inputMap) // none when unreadable: inputs by name
		}
	}
	var inputs []templates.Input
	for _, v := range d.Versions { // newest first
		if version == 0 || v.Number == version {
			_ = json.Unmarshal([]byte(v.InputsJSON), &inputs) // none when unreadable: an empty body
			break
		}
	}
	body := map[string]any{}
	for _, in := range inputs {
		var value any
		switch {
		case in.Default != "" && in.Type == templates.InputNumber:
			value = json.Number(in.Default)
		case in.Default != "":
			value = in.Default
		case in.Type == templates.InputChoice && len(in.Choices) > 0:
			value = in.Choices[0]
		case in.Type == templates.InputNumber:
			value = 1
		default:
			value = "Hello from a webhook"
		}
		path := in.Name
		if mapped, ok := inputMap[in.Name]; ok {
			path = mapped
		}
		place(body, strings.Split(path, "."), value)
	}
	js, err := json.Marshal(body) // keys sorted
	if err != nil {
		return "{}"
	}
	return string(js)
}

// place sets value at the dotted path keys in body, making the objects on
// the way. Where an input map gives two inputs clashing paths, the first
// placed stays.
func place(body map[string]any, keys []string, value any) {
	for _, key := range keys[:len(keys)-1] {
		next, ok := body[key].(map[string]any)
		if !ok {
			if _, taken := body[key]; taken {
				return
			}
			next = map[string]any{}
			body[key] = next
		}
		body = next
	}
	last := keys[len(keys)-1]
	if _, taken := body[last]; !taken {
		body[last] = value
	}
}

// Path is the address of the deployments page of a template.
func Path(slug string) string { return "/templates/" + slug + "/deployments" }

func envPath(slug, env, action string) string { return Path(slug) + "/" + env + "/" + action }

func versionPath(slug string, n int) string {
	return "/templates/" + slug + "/versions/" + strconv.Itoa(n)
}

func runPath(id int64) string { return "/runs/" + strconv.FormatInt(id, 10) }

func itoa(n int) string { return strconv.Itoa(n) }

// zone is the team's time zone, UTC when it has none.
func zone(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// rate writes a success rate as a percentage, or a dash before any run
// has finished.
func rate(s dep.Stats) string {
	if s.SuccessRate == nil {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", *s.SuccessRate*100)
}

func avgCost(s dep.Stats) string {
	if s.Runs == 0 {
		return "—"
	}
	return pricing.FormatDollars(s.AvgCostMicros)
}

// scheduleValue is what the schedule field shows.
func (e Env) scheduleValue() string {
	if e.Forms.Schedule != nil {
		return *e.Forms.Schedule
	}
	if e.Deployment != nil {
		return e.Deployment.Schedule
	}
	return ""
}

// inputMapValue is what the input map field shows.
func (e Env) inputMapValue() string {
	if e.Forms.InputMap != nil {
		return *e.Forms.InputMap
	}
	if e.Deployment == nil || e.Deployment.InputMapJSON == "{}" {
		return ""
	}
	return e.Deployment.InputMapJSON
}

// versionSelected reports whether the deploy form preselects version n:
// the one chosen, else the template's current version.
func (d Data) versionSelected(n int) bool {
	if d.Deploy.Version != "" {
		return d.Deploy.Version == strconv.Itoa(n)
	}
	return n == d.Template.CurrentVersion
}

// overview is a deployment with its recent runs and stats.
type overview = dep.Overview

func dollars(micros int64) string { return pricing.FormatDollars(micros) }

func statusClass(status string) string { return "status status-" + status }

// signExample shows how to sign and send a delivery with openssl and curl;
// an empty secret is left for the reader to paste.
func signExample(url, secret, body string) string {
	if secret == "" {
		secret = "whsec_…"
	}
	return `SECRET='` + secret + `'   # the webhook secret
BODY='` + strings.ReplaceAll(body, "'", `'\''`) + `'
TS=$(date +%s)
SIG=$(printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.*= //')
curl -X POST '` + url + `' \
  -H 'Content-Type: application/json' \
  -H "X-NOFX-Timestamp: $TS" \
  -H "X-NOFX-Signature: sha256=$SIG" \
  -d "$BODY"`
}
