package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// While PostgreSQL cannot be reached, the API answers 503 unavailable with
// Retry-After, pages a 503 page that says the database is unavailable, and
// /readyz names it; never a 500. Once it is back, requests succeed again.
func TestDatabaseOutageAnswers503(t *testing.T) {
	t.Parallel()
	proxy, url := dbtest.NewProxy(t, dbtest.PostgresURL(t))
	a := newAppAt(t, url)
	c := a.newAPIClient("owner@example.com", teams.RoleOwner)
	browser := a.client()
	require.Equal(t, http.StatusSeeOther, browser.logIn("owner@example.com", password).StatusCode)
	require.Equal(t, http.StatusOK, c.do(http.MethodGet, "/api/v1/runs", "").StatusCode)

	proxy.Cut()
	res := c.do(http.MethodGet, "/api/v1/runs", "")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, res.Body)
	require.Equal(t, "unavailable", apiErrorCode(t, res))
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	require.Contains(t, res.Body, "The database is unavailable")

	page := browser.get("/runs")
	require.Equal(t, http.StatusServiceUnavailable, page.StatusCode)
	require.Contains(t, page.Body, "The database is unavailable")
	ready := a.client().get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, ready.StatusCode)
	require.True(t, strings.Contains(ready.Body, `"database":"unreachable`), ready.Body)

	proxy.Restore()
	require.Eventually(t, func() bool {
		return c.do(http.MethodGet, "/api/v1/runs", "").StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the API answers again once the database is back")
}
