package web

// Template pages: list, builder, history, diff, preview, JSON view, run form. (Stubs until written.)

import "github.com/labstack/echo/v4"

func (s *Server) newTemplatePage(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) createTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) builderUpdate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) previewTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) importTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) templatePage(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) editTemplatePage(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) saveTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) importTemplateVersion(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) templateVersionsPage(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) templateVersionPage(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) rollbackTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) templateDiffPage(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) templateJSONPage(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) exportTemplate(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) templateRunPage(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) startTemplateRun(c echo.Context) error { return echo.ErrNotImplemented }

func (s *Server) deleteTemplate(c echo.Context) error { return echo.ErrNotImplemented }
