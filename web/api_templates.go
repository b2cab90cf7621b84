package web

// Templates JSON API. (Stubs until written.)

import "github.com/labstack/echo/v4"

func (s *Server) apiListTemplates(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) apiCreateTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) apiGetTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) apiSaveTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) apiTemplateVersions(c echo.Context) error { return echo.ErrNotImplemented }
