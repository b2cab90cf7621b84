package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
)

func TestPlansListAndSet(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, c *cli) {
		out := c.mustRun("plans", "list")
		require.Contains(t, out, "ID")
		for _, id := range []string{"free", "starter", "pro", "enterprise"} {
			require.Contains(t, out, id)
		}
		require.Regexp(t, `free\s+Free\s+\$0\s+\$0\s+200\s+\$5\.00\s+4\s+5\s+120\s+true`, out)

		out = c.mustRun("plans", "set", "free", "--runs", "-1", "--spend", "2.50", "--concurrency", "8", "--members", "3",
			"--api-per-minute", "60", "--stripe-price-monthly", "price_M1", "--instance-keys", "false")
		require.Equal(t, "plan free: runs unlimited, spend $2.50, concurrency 8, members 3, API 60/min, instance keys false\n", out)
		require.Regexp(t, `free\s+Free\s+\$0\s+\$0\s+unlimited\s+\$2\.50\s+8\s+3\s+60\s+false\s+price_M1\s+-`, c.mustRun("plans", "list"))

		code, stdout, stderr := c.run("plans", "set", "free", "--runs", "many", "--concurrency", "0", "--stripe-price-yearly", "prod_1")
		require.Equal(t, 1, code)
		require.Empty(t, stdout)
		require.Contains(t, stderr, "--runs: Use a whole number, or -1 for unlimited.")
		code, _, stderr = c.run("plans", "set", "free", "--concurrency", "0", "--stripe-price-yearly", "prod_1")
		require.Equal(t, 1, code)
		require.Contains(t, stderr, "--concurrency: Use a number from 1 to 100000, or -1 for unlimited.")
		require.Contains(t, stderr, "--stripe-price-yearly: Use a Stripe price id such as price_1Nabc, or leave it empty.")
		code, _, stderr = c.run("plans", "set", "gold", "--runs", "5")
		require.Equal(t, 1, code)
		require.Contains(t, stderr, `no plan "gold"`)
		code, _, stderr = c.run("plans", "set", "free")
		require.Equal(t, 1, code)
		require.Contains(t, stderr, "nothing to change")

		c.mustRun("users", "create", "--email", testEmail, "--password", testPassword)
		code, _, stderr = c.run("teams", "set-plan", "--team", "nobody", "--plan", "pro")
		require.Equal(t, 1, code)
		require.Contains(t, stderr, `no team with slug "nobody"`)
		d := c.open()
		var slug string
		require.NoError(t, db.Get(context.Background(), d, &slug, `SELECT slug FROM teams LIMIT 1`))
		code, _, stderr = c.run("teams", "set-plan", "--team", slug, "--plan", "gold")
		require.Equal(t, 1, code)
		require.Contains(t, stderr, `no plan "gold"`)
		require.Equal(t, "team "+slug+" is on plan pro\n", c.mustRun("teams", "set-plan", "--team", slug, "--plan", "pro"))

		var plan string
		require.NoError(t, db.Get(context.Background(), d, &plan, `SELECT plan FROM teams WHERE slug = ?`, slug))
		require.Equal(t, "pro", plan)
		var actions []string
		require.NoError(t, db.Select(context.Background(), d, &actions, `SELECT action FROM audit_log WHERE actor = 'command line' ORDER BY id`))
		require.Equal(t, []string{"plan.update", "billing.plan_changed"}, actions, "every change is audited; refused ones are not")
	})
}

// open opens the CLI's database for the test to read.
func (c *cli) open() *db.DB {
	c.t.Helper()
	d, err := openForCommand(context.Background(), c.getenv)
	require.NoError(c.t, err)
	c.t.Cleanup(func() { d.Close() })
	return d
}
