package web

// Deployments JSON API. (Stubs until written.)

import "github.com/labstack/echo/v4"

func (s *Server) apiDeployTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) apiListDeployments(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) apiTriggerDeployment(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) apiPauseDeployment(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) apiResumeDeployment(c echo.Context) error { return echo.ErrNotImplemented }
