package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/web/httpx"
)

// The JSON API of the team's API keys.

// apiKeyJSON is an API key in the API, never with its secret.
type apiKeyJSON struct {
	apikeys.Key
	Status string `json:"status"`
}

func toAPIKeyJSON(k apikeys.Key, now time.Time) apiKeyJSON {
	return apiKeyJSON{Key: k, Status: k.Status(now)}
}

// createKeyRequest is the body of POST /api/v1/api-keys.
type createKeyRequest struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	ExpiresAt string `json:"expires_at"` // RFC 3339, optional
}

// createKeyResponse is a new key with its secret, shown only this once.
type createKeyResponse struct {
	Key    apiKeyJSON `json:"key"`
	Secret string     `json:"secret"`
}

func (s *API) ListKeys(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	keys, err := s.apiKeys.List(c.Request().Context(), a)
	if err != nil {
		return err
	}
	now := db.Now()
	out := make([]apiKeyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, toAPIKeyJSON(k, now))
	}
	return c.JSON(http.StatusOK, keysResponse{Keys: out})
}

func (s *API) CreateKey(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	var req createKeyRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	var expires *time.Time
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			return validation.Errors{"expires_at": "Use an RFC 3339 time like 2026-01-31T00:00:00Z."}
		}
		expires = &t
	}
	key, secret, err := s.apiKeys.CreateKey(c.Request().Context(), a, req.Name, teams.Role(req.Role), expires)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, createKeyResponse{Key: toAPIKeyJSON(key, db.Now()), Secret: secret})
}

func (s *API) RevokeKey(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	id, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.apiKeys.RevokeKey(c.Request().Context(), a, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
