package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestBrowserNoPageScrollsSideways opens every signed-in page with content
// in its tables at a phone's width and a laptop's: no page is wider than
// the window (a table may scroll inside its card on the phone), and at
// 1280 px every table fits its card.
func TestBrowserNoPageScrollsSideways(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "wide@example.com")
	c := &apiClient{t: t, app: a, key: a.keyFor("wide@example.com")}
	res := c.do(http.MethodPost, "/api/v1/templates", briefJSON+"}")
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	res = c.do(http.MethodPut, "/api/v1/templates/brief", strings.Replace(briefJSON, `"name": "Brief"`, `"name": "Brief two"`, 1)+"}")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	res = c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"A run with a rather long goal, to see that the list keeps it in its card","steps":[
		{"name":"a","kind":"text","prompt":"x"},{"name":"b","kind":"llm","provider":"simulated","model":"echo","prompt":"y","needs":["a"],
		"options":{"fail_rate":1,"fail_status":400}},{"name":"c","kind":"text","prompt":"z","needs":["b"]}]}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	c.waitRun(decode[apiRun](t, res).ID, "failed")
	res = c.do(http.MethodPost, "/api/v1/templates/brief/deploy", `{"environment":"production","version":2}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	// Something in every other table: a deployment's and a template's runs
	// (recent runs, top templates, busiest teams, slowest templates), an
	// invitation, a provider key, a dead letter and a comparison.
	res = c.do(http.MethodPost, "/api/v1/deployments/brief/production/runs", `{"inputs":{"topic":"a deployment's run"}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	c.waitRun(decode[apiRun](t, res).ID, "succeeded")
	res = c.do(http.MethodPost, "/api/v1/runs", `{"template":"brief","inputs":{"topic":"a template's run with a long topic to wrap"}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	templateRun := decode[apiRun](t, res).ID
	c.waitRun(templateRun, "succeeded")
	res = c.do(http.MethodPost, "/api/v1/invites", `{"email":"a.rather.long.address.for.an.invitation@example.com","role":"member"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	owner := ownerOf(t, a, "wide@example.com", a.teamOf("wide@example.com").ID)
	require.NoError(t, a.App.Keys.Set(context.Background(), owner, "anthropic", "sk-ant-api03-team-secret-4321"))
	startBrokenRun(t, a, c)
	res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/draft/compare", templateRun),
		`{"candidates":[{"provider":"simulated","model":"lorem"},{"provider":"simulated","model":"echo"}]}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	comparison := c.waitComparison(decode[apiComparison](t, res).ID)

	pages := []string{"/runs", "/runs/new", "/runs/1", fmt.Sprintf("/runs/%d", templateRun), fmt.Sprintf("/comparisons/%d", comparison.ID),
		"/templates", "/templates/new", "/deployments", "/templates/brief", "/templates/brief/edit", "/templates/brief/json",
		"/templates/brief/versions", "/templates/brief/versions/1", "/templates/brief/diff?from=1&to=2", "/templates/brief/run",
		"/templates/brief/deployments", "/templates/brief/deployments/production/run", "/team", "/team/members", "/team/api-keys",
		"/team/invites", "/team/audit", "/teams/new", "/billing", "/account", "/admin", "/admin/teams", "/admin/plans",
		"/admin/circuits", "/admin/prices", "/admin/outbox", "/admin/health", "/admin/dead-letters"}
	measured := map[string]bool{}
	for _, width := range []int64{390, 1280} {
		require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(width, 900)))
		for _, page := range pages {
			browserStep(ctx, t, fmt.Sprintf("open %s at %d px", page, width),
				chromedp.Navigate(a.URL+page), chromedp.WaitVisible(chromedp.CSS(`main`)))
			wide, err := chromedp.Run(ctx, chromedp.Evaluate[string](measureWidths))
			require.NoError(t, err)
			require.Empty(t, wide, "%s at %d px", page, width)
			if width == 390 {
				tables, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.prototype.map.call(document.querySelectorAll('main table'),
					function (t) { return t.dataset.testid || t.id || t.className; })`))
				require.NoError(t, err)
				for _, table := range tables {
					measured[table] = true
				}
			}
			if width == 390 && (page == "/templates" || page == "/team/members" || page == "/runs" || page == "/admin/outbox") ||
				width == 1280 && (page == "/team/audit" || page == "/team/invites") {
				saveScreenshot(ctx, t, fmt.Sprintf("%d%s", width, strings.ReplaceAll(page, "/", "-")))
			}
		}
	}

	// The fixtures filled the tables that only show with content.
	for _, table := range []string{"runs-table", "invites", "provider-keys", "dead-letters", "busiest-teams", "slowest-templates",
		"top-templates", "recent-runs-production", "api-keys", "members", "audit-table", "daily-table", "deployments", "templates-table",
		"versions-table", "inputs-table", "teams", "prices", "circuits", "activity-table", "nodes-table", "providers-table"} {
		require.True(t, measured[table], "no page showed the %s table; measured %v", table, measured)
	}

	// The diff keeps the JSON's indentation.
	browserStep(ctx, t, "open the diff", chromedp.Navigate(a.URL+"/templates/brief/diff?from=1&to=2"),
		chromedp.WaitVisible(chromedp.CSS(`.diff-text code`)))
	space, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('.diff-text code')).whiteSpace`))
	require.NoError(t, err)
	require.Equal(t, "pre-wrap", space)
}

// TestBrowserLongNamesKeepTheHeaderOnOneLine signs up with a long name,
// whose personal team's name is long too: at 1280 px the header's tools
// stay on the row of the brand, the name cut short.
func TestBrowserLongNamesKeepTheHeaderOnOneLine(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	long := "Maximiliana Evangelina Featherstonehaugh-Worthington of the Northern Reaches"
	browserStep(ctx, t, "sign up with a long name",
		chromedp.Navigate(a.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=name]`), long),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), "long-name@example.com"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
		// A second team, so that the team switcher shows too.
		chromedp.Navigate(a.URL+"/teams/new"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "Quarterly Planning and Operations Excellence Working Group"),
		clickAndLoad(`form[action="/teams"] button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=team-switcher]`)),
	)
	sameRow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function () {
		var brand = document.querySelector('.brand').getBoundingClientRect();
		var tools = document.querySelector('.topbar-tools').getBoundingClientRect();
		var tops = Array.prototype.map.call(document.querySelectorAll('.mainnav li'), function (li) { return li.getBoundingClientRect().top; });
		var oneLine = function (sel) {
			var e = document.querySelector(sel);
			return !!e && e.getClientRects().length === 1 && e.getBoundingClientRect().height < 2.5 * parseFloat(getComputedStyle(e).fontSize);
		};
		return tools.top < brand.bottom && tools.bottom > brand.top && new Set(tops).size === 1 &&
			oneLine('.menu-name') && oneLine('#team-switch');
	})()`))
	require.NoError(t, err)
	if !sameRow {
		saveScreenshot(ctx, t, "long-name-header-wrapped")
		why, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
			brand: document.querySelector('.brand').getBoundingClientRect(), tools: document.querySelector('.topbar-tools').getBoundingClientRect(),
			tops: Array.prototype.map.call(document.querySelectorAll('.mainnav li'), function (li) { return li.getBoundingClientRect().top; }),
			name: document.querySelector('.menu-name').getClientRects().length})`))
		t.Fatalf("the header wraps: %s", why)
	}
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.menu-name').title`))
	require.NoError(t, err)
	require.Equal(t, long, title, "the whole name on hover")
	round, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function () {
		var r = document.querySelector('.avatar').getBoundingClientRect();
		return Math.abs(r.width - r.height) < 0.5;
	})()`))
	require.NoError(t, err)
	require.True(t, round, "the avatar stays round while the names give way")
	saveScreenshot(ctx, t, "long-name-header")
}

// TestBrowserNamesTakeTheRoomTheHeaderHas signs up with a short name and
// a personal team's name longer than the narrowest cut (10rem): at 1280 px
// the header has room for it, so it is not cut; its whole name is its
// title too.
func TestBrowserNamesTakeTheRoomTheHeaderHas(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	browserStep(ctx, t, "sign up",
		chromedp.Navigate(a.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=name]`), "Ann"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), "alexandra.feathers@example.com"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=team-name]`)),
	)
	cut, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function () {
		var out = [];
		['[data-testid=team-name]'].forEach(function (sel) {
			var e = document.querySelector(sel);
			if (e.scrollWidth > e.clientWidth) out.push(sel + ' is cut: ' + e.scrollWidth + ' px in ' + e.clientWidth);
			if (e.clientWidth <= 160) out.push(sel + ' is only ' + e.clientWidth + ' px wide');
		});
		return out.join('; ');
	})()`))
	require.NoError(t, err)
	if cut != "" {
		saveScreenshot(ctx, t, "names-cut")
	}
	require.Empty(t, cut)
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid=team-name]').title`))
	require.NoError(t, err)
	require.Equal(t, "alexandra.feathers's team", title)
	saveScreenshot(ctx, t, "names-header")
}

// measureWidths opens a page's disclosures and says what is wider than it
// should be: the page wider than the window, or (from 1000 px) a table
// wider than its card; "" when nothing is.
const measureWidths = `(function () {
				// What a disclosure hides is measured too.
				document.querySelectorAll('main details').forEach(function (d) { d.open = true; });
				var out = [], root = document.documentElement;
				if (root.scrollWidth > root.clientWidth) out.push('the page is ' + root.scrollWidth + ' px wide in ' + root.clientWidth);
				if (window.innerWidth >= 1000) {
					document.querySelectorAll('.table-wrap, .table-scroll').forEach(function (w) {
						if (w.scrollWidth > w.clientWidth) out.push('a table is ' + w.scrollWidth + ' px wide in its ' + w.clientWidth + ' px card');
					});
				}
				return out.join('; ');
			})()`

// TestBrowserStripeBillingFits opens the billing page of a team that bills
// through Stripe (stripe-mock), with its subscription and invoices, at a
// phone's width and a laptop's.
func TestBrowserStripeBillingFits(t *testing.T) {
	t.Parallel()
	a := newStripeApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "stripe-wide@example.com")
	owner := ownerOf(t, a, "stripe-wide@example.com", a.teamOf("stripe-wide@example.com").ID)
	_, err := a.App.Stripe.Checkout(context.Background(), owner, "starter", "month", a.URL+"/billing", a.URL+"/billing")
	require.NoError(t, err)
	for _, width := range []int64{390, 1280} {
		browserStep(ctx, t, fmt.Sprintf("open /billing at %d px", width),
			chromedp.EmulateViewport(width, 900),
			chromedp.Navigate(a.URL+"/billing"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=invoices]`)),
		)
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[string](measureWidths))
		require.NoError(t, err)
		require.Empty(t, wide, "/billing at %d px", width)
	}
	saveScreenshot(ctx, t, "billing-stripe-1280")
}
