package web

// Deployment pages, team settings and inbound webhooks. (Stubs until written.)

import "github.com/labstack/echo/v4"

func (s *Server) deploymentsPage(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) deployTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) pauseDeployment(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) resumeDeployment(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) setDeploymentSchedule(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) rotateWebhookSecret(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) saveTeamSettings(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) receiveWebhook(c echo.Context) error { return echo.ErrNotImplemented }
