package apikeys_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
)

func TestKeyStatus(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Hour), now.Add(-time.Hour)
	require.Equal(t, "active", apikeys.Key{}.Status(now))
	require.Equal(t, "active", apikeys.Key{ExpiresAt: &later}.Status(now))
	require.Equal(t, "expired", apikeys.Key{ExpiresAt: &now}.Status(now), "expired at its moment")
	require.Equal(t, "expired", apikeys.Key{ExpiresAt: &earlier}.Status(now))
	require.Equal(t, "revoked", apikeys.Key{RevokedAt: &earlier, ExpiresAt: &earlier}.Status(now), "revoked wins")
}
