package web

import (
	"strconv"

	"github.com/labstack/echo/v4/middleware"
)

// routes lists the whole HTTP surface.
func (s *Server) routes() {
	e := s.echo
	e.Pre(plainRequestID, middleware.RequestID())
	e.Use(
		s.recordMetrics,
		s.logRequests(),
		middleware.Recover(),
		s.securityHeaders,
		auditRequest,
		s.loadSession, // first, so that a body over the limit gets its 413 page signed in
		middleware.BodyLimit(strconv.FormatInt(s.maxBody, 10)), // NOFX_MAX_BODY
		s.csrf,
		s.limitGeneral,
	)

	// Rate limit tiers beyond the general one (NOFX_RATE_*), per route.
	authLimit := s.limit(s.limits.Auth, authKeys)
	expensive := s.limit(s.limits.Expensive, starterKeys)
	adminLimit := s.limit(s.limits.Admin, principalKeys)
	hookLimit := s.limit(s.limits.Webhooks, webhookKeys)
	// links marks routes that build links to this instance (invitations,
	// webhook addresses): they refuse a Host that is not the instance's.
	links := s.requireLinkHost

	// Probes, metrics and assets: no session needed.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.serveMetrics())
	e.GET("/static/*", serveStatic)

	// Accounts.
	e.GET("/", s.home)
	e.GET("/signup", s.signupPage)
	e.POST("/signup", s.signup, authLimit)
	e.GET("/login", s.loginPage)
	e.POST("/login", s.login, authLimit)
	e.POST("/logout", s.logout)

	// Pages for signed-in users. (Middleware is given per route: an Echo
	// group without a prefix would also catch unknown paths.)
	user := s.requireUser
	e.GET("/runs", s.runsPage, user)
	e.GET("/team", s.teamPage, user)
	e.POST("/teams/switch", s.switchTeam, user)
	e.GET("/teams/new", s.newTeamPage, user)
	e.POST("/teams", s.createTeam, user)
	e.POST("/team/keys", s.saveProviderKey, user)
	e.POST("/team/keys/:provider/delete", s.deleteProviderKey, user)
	e.GET("/team/api-keys", s.apiKeysPage, user)
	e.POST("/team/api-keys", s.createAPIKey, user)
	e.POST("/team/api-keys/:id/revoke", s.revokeAPIKey, user)
	e.GET("/team/members", s.membersPage, user)
	e.POST("/team/members/:user/role", s.changeMemberRole, user)
	e.POST("/team/members/:user/remove", s.removeMember, user)
	e.POST("/team/leave", s.leaveTeam, user)
	e.POST("/team/transfer", s.transferOwnership, user)
	e.POST("/team/delete", s.deleteTeam, user)
	e.GET("/team/invites", s.invitesPage, user)
	e.POST("/team/invites", s.createInvite, user, links, expensive)
	e.POST("/team/invites/:id/revoke", s.revokeInvite, user)
	e.POST("/team/invites/:id/resend", s.resendInvite, user, links, expensive)
	e.GET("/invites/:token", s.invitationPage)
	e.POST("/invites/:token/accept", s.acceptInvite, user, authLimit)
	e.GET("/team/audit", s.auditPage, user)
	e.GET("/team/audit.csv", s.auditCSV, user)
	e.GET("/billing", s.billingPage, user)
	e.POST("/billing/plan", s.changePlan, user)
	e.POST("/billing/checkout", s.startCheckout, user, links, expensive)
	e.GET("/billing/checkout/success", s.checkoutDone, user)
	e.GET("/billing/checkout/cancel", s.checkoutCancelled, user)
	e.POST("/billing/portal", s.openPortal, user, links, expensive)
	e.POST("/billing/cancel", s.cancelSubscription, user)
	e.POST("/billing/resume", s.resumeSubscription, user)
	e.GET("/account", s.accountPage, user)
	e.POST("/account/password", s.changePassword, user, authLimit)

	// Runs pages (HTML).
	e.GET("/runs/new", s.newRunPage, user)
	e.POST("/runs", s.createRun, user, expensive)
	e.GET("/runs/:id", s.runPage, user)
	e.GET("/runs/:id/live", s.runLive, user)
	e.GET("/runs/live", s.runsLive, user)
	e.POST("/runs/:id/cancel", s.cancelRun, user)
	e.POST("/runs/:id/retry", s.retryRun, user, expensive)
	e.POST("/runs/:id/rerun", s.rerunRun, user, expensive)
	e.POST("/runs/:id/steps/:step/approve", s.approveStep, user)
	e.POST("/runs/:id/steps/:step/reject", s.rejectStep, user)
	e.POST("/runs/:id/steps/:step/compare", s.compareStep, user, expensive)
	e.GET("/comparisons/:id", s.comparisonPage, user)
	e.GET("/comparisons/:id/events", s.comparisonEvents, user)
	e.POST("/comparisons/:id/prefer", s.preferCandidate, user)
	e.POST("/comparisons/:id/delete", s.deleteComparison, user)

	// Templates pages (HTML).
	e.GET("/templates", s.templatesPage, user)
	e.GET("/templates/new", s.newTemplatePage, user)
	e.POST("/templates", s.createTemplate, user, expensive)
	e.POST("/templates/builder", s.builderUpdate, user)
	e.POST("/templates/preview", s.previewTemplate, user)
	e.POST("/templates/import", s.importTemplate, user, expensive)
	e.GET("/templates/:slug", s.templatePage, user)
	e.GET("/templates/:slug/edit", s.editTemplatePage, user)
	e.POST("/templates/:slug", s.saveTemplate, user)
	e.POST("/templates/:slug/import", s.importTemplateVersion, user, expensive)
	e.GET("/templates/:slug/versions", s.templateVersionsPage, user)
	e.GET("/templates/:slug/versions/:version", s.templateVersionPage, user)
	e.POST("/templates/:slug/versions/:version/rollback", s.rollbackTemplate, user)
	e.GET("/templates/:slug/diff", s.templateDiffPage, user)
	e.GET("/templates/:slug/json", s.templateJSONPage, user)
	e.GET("/templates/:slug/export.json", s.exportTemplate, user)
	e.GET("/templates/:slug/run", s.templateRunPage, user)
	e.POST("/templates/:slug/run", s.startTemplateRun, user, expensive)
	e.POST("/templates/:slug/delete", s.deleteTemplate, user)

	// Deployments pages (HTML), and the inbound webhooks that trigger them.
	e.GET("/templates/:slug/deployments", s.deploymentsPage, user, links)
	e.POST("/templates/:slug/deployments", s.deployTemplate, user, links)
	e.GET("/templates/:slug/deployments/:env/run", s.deploymentRunPage, user)
	e.POST("/templates/:slug/deployments/:env/run", s.startDeploymentRun, user, expensive)
	e.POST("/templates/:slug/deployments/:env/pause", s.pauseDeployment, user)
	e.POST("/templates/:slug/deployments/:env/resume", s.resumeDeployment, user)
	e.POST("/templates/:slug/deployments/:env/schedule", s.setDeploymentSchedule, user, links)
	e.POST("/templates/:slug/deployments/:env/webhook", s.rotateWebhookSecret, user, links)
	e.POST("/templates/:slug/deployments/:env/input-map", s.setDeploymentInputMap, user, links)
	e.POST("/team/settings", s.saveTeamSettings, user)
	e.POST("/hooks/:token", s.receiveWebhook, hookLimit)
	e.POST(StripeWebhookPath, s.receiveStripeEvent, s.limit(s.limits.Webhooks, ipKeys))

	// Site admin pages.
	admin := s.requireSiteAdmin
	e.GET("/admin", s.adminPage, user, admin, adminLimit)
	e.GET("/admin/circuits", s.circuitsPage, user, admin, adminLimit)
	e.POST("/admin/circuits/:provider/reset", s.resetCircuit, user, admin, adminLimit)
	e.GET("/admin/prices", s.pricesPage, user, admin, adminLimit)
	e.POST("/admin/prices", s.setPrice, user, admin, adminLimit)
	e.GET("/admin/outbox", s.outboxPage, user, admin, adminLimit)
	e.GET("/admin/health", s.healthPage, user, admin, adminLimit)
	e.GET("/admin/dead-letters", s.deadLettersPage, user, admin, adminLimit)
	e.POST("/admin/dead-letters/retry", s.retryDeadLetters, user, admin, adminLimit)
	e.POST("/admin/dead-letters/discard", s.discardDeadLetters, user, admin, adminLimit)
	e.GET("/admin/plans", s.plansPage, user, admin, adminLimit)
	e.POST("/admin/plans/:id", s.savePlan, user, admin, adminLimit)
	e.GET("/admin/teams", s.teamsPage, user, admin, adminLimit)
	e.POST("/admin/teams/:id/plan", s.setTeamPlan, user, admin, adminLimit)

	// JSON API, and its OpenAPI document (no key needed).
	e.GET("/api/v1/openapi.json", s.apiOpenAPI)
	api := e.Group("/api/v1", s.requireAPIAuth, s.limitGeneralAPI)
	api.GET("/me", s.apiMe)
	api.GET("/billing", s.apiBilling)
	api.POST("/teams", s.apiCreateTeam)
	api.POST("/runs", s.apiCreateRun, expensive)
	api.GET("/runs", s.apiListRuns)
	api.GET("/runs/:id", s.apiGetRun)
	api.POST("/runs/:id/cancel", s.apiCancelRun)
	api.POST("/runs/:id/retry", s.apiRetryRun, expensive)
	api.POST("/runs/:id/rerun", s.apiRerunRun, expensive)
	api.GET("/runs/:id/events", s.apiRunEvents)
	api.POST("/runs/:id/steps/:step/approve", s.apiApproveStep)
	api.POST("/runs/:id/steps/:step/reject", s.apiRejectStep)
	api.POST("/runs/:id/steps/:step/compare", s.apiCompareStep, expensive)
	api.GET("/comparisons/:id", s.apiGetComparison)
	api.POST("/comparisons/:id/prefer", s.apiPreferCandidate)
	api.DELETE("/comparisons/:id", s.apiDeleteComparison)
	api.GET("/templates", s.apiListTemplates)
	api.POST("/templates", s.apiCreateTemplate, expensive)
	api.GET("/templates/:slug", s.apiGetTemplate)
	api.PUT("/templates/:slug", s.apiSaveTemplate, expensive)
	api.DELETE("/templates/:slug", s.apiDeleteTemplate)
	api.GET("/templates/:slug/versions", s.apiTemplateVersions)
	api.POST("/templates/:slug/versions/:version/rollback", s.apiRollbackTemplate)
	api.GET("/templates/:slug/diff", s.apiTemplateDiff)
	api.POST("/templates/:slug/deploy", s.apiDeployTemplate, links)
	api.GET("/templates/:slug/deployments", s.apiListDeployments, links)
	api.POST("/deployments/:slug/:env/runs", s.apiTriggerDeployment, expensive)
	api.POST("/deployments/:slug/:env/pause", s.apiPauseDeployment, links)
	api.POST("/deployments/:slug/:env/resume", s.apiResumeDeployment, links)
	api.GET("/api-keys", s.apiListKeys)
	api.POST("/api-keys", s.apiCreateKey)
	api.POST("/api-keys/:id/revoke", s.apiRevokeKey)
	api.GET("/members", s.apiListMembers)
	api.POST("/members/:user/role", s.apiChangeMemberRole)
	api.POST("/members/:user/remove", s.apiRemoveMember)
	api.GET("/invites", s.apiListInvites)
	api.POST("/invites", s.apiCreateInvite, links, expensive)
	api.POST("/invites/:id/revoke", s.apiRevokeInvite)
	api.POST("/invites/:id/resend", s.apiResendInvite, links, expensive)
}
