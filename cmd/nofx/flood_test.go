package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"
)

// TestLoginFloodMemory floods the real `nofx serve` with concurrent wrong
// log-ins, every one of which reaches the password hash (no rate limit, no
// lock-out), and shows that the hash cap keeps the process's memory bounded
// and that every request is answered: 401 when its password was checked,
// 503 when no hash slot freed up in time (429 if a limit applies), never a
// timeout. Without the cap, each of the 200 would hold a 46 MiB argon2id
// hash at once.
func TestLoginFloodMemory(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads the peak resident memory from /proc")
	}
	const (
		requests  = 200
		peakLimit = 1 << 30 // bytes
	)
	env := map[string]string{
		"NOFX_DATA_DIR":        t.TempDir(),
		"NOFX_RATE_AUTH":       "off", // so the tier does not hide the hash cap
		"NOFX_RATE_GENERAL":    "off",
		"NOFX_LOGIN_LOCKOUT":   "off", // so every log-in hashes
		"NOFX_PASSWORD_HASHES": "2",
	}
	c := &cli{t: t, env: env}
	c.mustRun("users", "create", "--email", testEmail, "--password", testPassword)
	s := startServer(t, env)
	base := "http://" + s.addr

	client := &http.Client{
		Timeout:       60 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: requests, MaxConnsPerHost: requests},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(client.CloseIdleConnections)
	cookies, token := loginForm(t, client, base)

	form := url.Values{"email": {testEmail}, "password": {"not the password"}, "_csrf": {token}}.Encode()
	statuses := make([]int, requests)
	errs := make([]error, requests)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i], errs[i] = postLogin(client, base, form, cookies)
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)

	counts := map[int]int{}
	for i, err := range errs {
		require.NoError(t, err, "log-in %d got no answer (a timeout?)", i)
		counts[statuses[i]]++
	}
	peak := peakResident(t, s.cmd.Process.Pid)
	t.Logf("%d concurrent wrong log-ins in %s: answers %s; peak resident memory %d MiB",
		requests, elapsed.Round(time.Millisecond), formatCounts(counts), peak>>20)
	for status, n := range counts {
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusServiceUnavailable}, status,
			"%d log-ins answered %d; want only 401, 429 or 503 (answers %s)", n, status, formatCounts(counts))
	}
	require.Positive(t, counts[http.StatusUnauthorized], "some passwords were checked and refused")
	require.Less(t, peak, int64(peakLimit), "peak resident memory %d MiB", peak>>20)
}

// loginForm loads the log-in page and returns the cookies it set and its
// form's CSRF token.
func loginForm(t *testing.T, client *http.Client, base string) ([]*http.Cookie, string) {
	t.Helper()
	res, err := client.Get(base + "/login")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "GET /login")
	doc, err := goquery.NewDocumentFromReader(res.Body)
	require.NoError(t, err)
	token, ok := doc.Find(`form input[name="_csrf"]`).First().Attr("value")
	require.True(t, ok, "no _csrf field on /login")
	return res.Cookies(), token
}

// postLogin posts the log-in form with cookies and returns the status.
func postLogin(client *http.Client, base, form string, cookies []*http.Cookie) (int, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// peakResident returns the peak resident memory (VmHWM) of process pid, in
// bytes.
func peakResident(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		require.NoError(t, err, "VmHWM line %q", sc.Text())
		return kb << 10
	}
	require.NoError(t, sc.Err())
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// formatCounts writes status counts in order, such as "401×120 503×80".
func formatCounts(counts map[int]int) string {
	statuses := make([]int, 0, len(counts))
	for status := range counts {
		statuses = append(statuses, status)
	}
	sort.Ints(statuses)
	parts := make([]string, 0, len(statuses))
	for _, status := range statuses {
		parts = append(parts, fmt.Sprintf("%d×%d", status, counts[status]))
	}
	return strings.Join(parts, " ")
}
