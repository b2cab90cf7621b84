package secrets_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/secrets"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, 32)
	box, err := secrets.New(key)
	require.NoError(t, err)

	sealed, err := box.Seal("sk-ant-secret", "team:1:anthropic")
	require.NoError(t, err)
	require.NotContains(t, sealed, "sk-ant-secret")
	again, err := box.Seal("sk-ant-secret", "team:1:anthropic")
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "each seal has its own nonce")

	plain, err := box.Open(sealed, "team:1:anthropic")
	require.NoError(t, err)
	require.Equal(t, "sk-ant-secret", plain)

	_, err = box.Open(sealed, "team:2:anthropic")
	require.ErrorIs(t, err, secrets.ErrUndecryptable, "a value moved to another row does not open")
	other, err := secrets.New(bytes.Repeat([]byte{8}, 32))
	require.NoError(t, err)
	_, err = other.Open(sealed, "team:1:anthropic")
	require.ErrorIs(t, err, secrets.ErrUndecryptable, "another key does not open it")
	tampered := strings.Replace(sealed, sealed[len(sealed)-6:len(sealed)-5], "A", 1)
	if tampered != sealed {
		_, err = box.Open(tampered, "team:1:anthropic")
		require.ErrorIs(t, err, secrets.ErrUndecryptable)
	}
	_, err = box.Open("not base64!", "team:1:anthropic")
	require.ErrorIs(t, err, secrets.ErrUndecryptable)

	_, err = secrets.New([]byte("short"))
	require.Error(t, err)
}
