package web

import (
	"strconv"

	"github.com/labstack/echo/v4/middleware"

	"github.com/nofxhq/nofx/internal/access"
)

// routes lists the whole HTTP surface: each route with who may call it
// (access.go), its handler, and the middleware it needs beyond the access
// check. `nofx routes` prints the table.
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

	pages := routeSet{s: s, add: e.Add}

	// Probes, metrics and assets: no session needed.
	pages.get("/healthz", public, s.healthz)
	pages.get("/readyz", public, s.readyz)
	pages.get("/metrics", public, s.serveMetrics())
	pages.get("/static/*", public, serveStatic)

	// Accounts.
	pages.get("/", public, s.home)
	pages.get("/signup", public, s.signupPage)
	pages.post("/signup", public, s.signup, authLimit)
	pages.get("/login", public, s.loginPage)
	pages.post("/login", public, s.login, authLimit)
	pages.post("/logout", public, s.logout)

	// Pages for signed-in users. (Middleware is given per route: an Echo
	// group without a prefix would also catch unknown paths.)
	pages.get("/runs", teamPerm(access.RunsRead), s.runsPage)
	pages.get("/team", teamPerm(access.TeamRead), s.teamPage)
	pages.post("/teams/switch", signedIn, s.switchTeam)
	pages.get("/teams/new", signedIn, s.newTeamPage)
	pages.post("/teams", signedIn, s.createTeam)
	pages.post("/team/keys", teamPerm(access.TeamUpdate), s.saveProviderKey)
	pages.post("/team/keys/:provider/delete", teamPerm(access.TeamUpdate), s.deleteProviderKey)
	pages.get("/team/api-keys", teamPerm(access.APIKeysManage), s.apiKeysPage)
	pages.post("/team/api-keys", teamPerm(access.APIKeysManage), s.createAPIKey)
	pages.post("/team/api-keys/:id/revoke", scopedPerm(access.APIKeysManage), s.revokeAPIKey)
	pages.get("/team/members", teamPerm(access.MembersRead), s.membersPage)
	pages.post("/team/members/:user/role", teamPerm(access.MembersUpdate), s.changeMemberRole)
	pages.post("/team/members/:user/remove", teamPerm(access.MembersRemove), s.removeMember)
	pages.post("/team/leave", teamPerm(access.TeamRead), s.leaveTeam)
	pages.post("/team/transfer", teamPerm(access.OwnershipTransfer), s.transferOwnership)
	pages.post("/team/delete", teamPerm(access.TeamDelete), s.deleteTeam)
	pages.get("/team/invites", teamPerm(access.MembersInvite), s.invitesPage)
	pages.post("/team/invites", teamPerm(access.MembersInvite), s.createInvite, links, expensive)
	pages.post("/team/invites/:id/revoke", scopedPerm(access.MembersInvite), s.revokeInvite)
	pages.post("/team/invites/:id/resend", scopedPerm(access.MembersInvite), s.resendInvite, links, expensive)
	pages.get("/invites/:token", public, s.invitationPage)
	pages.post("/invites/:token/accept", signedIn, s.acceptInvite, authLimit)
	pages.get("/team/audit", teamPerm(access.AuditRead), s.auditPage)
	pages.get("/team/audit.csv", teamPerm(access.AuditRead), s.auditCSV)
	pages.get("/billing", teamPerm(access.BillingRead), s.billingPage)
	pages.post("/billing/plan", teamPerm(access.BillingManage), s.changePlan)
	pages.post("/billing/checkout", teamPerm(access.BillingManage), s.startCheckout, links, expensive)
	pages.get("/billing/checkout/success", teamPerm(access.BillingRead), s.checkoutDone)
	pages.get("/billing/checkout/cancel", teamPerm(access.BillingRead), s.checkoutCancelled)
	pages.post("/billing/portal", teamPerm(access.BillingManage), s.openPortal, links, expensive)
	pages.post("/billing/cancel", teamPerm(access.BillingManage), s.cancelSubscription)
	pages.post("/billing/resume", teamPerm(access.BillingManage), s.resumeSubscription)
	pages.get("/account", signedIn, s.accountPage)
	pages.post("/account/profile", signedIn, s.updateProfile, authLimit)
	pages.post("/account/password", signedIn, s.changePassword, authLimit)

	// Runs pages (HTML).
	pages.get("/runs/new", teamPerm(access.RunsCreate), s.newRunPage)
	pages.post("/runs", teamPerm(access.RunsCreate), s.createRun, expensive)
	pages.get("/runs/:id", scopedPerm(access.RunsRead), s.runPage)
	pages.get("/runs/:id/live", scopedPerm(access.RunsRead), s.runLive)
	pages.get("/runs/live", teamPerm(access.RunsRead), s.runsLive)
	pages.post("/runs/:id/cancel", scopedPerm(access.RunsCancel), s.cancelRun)
	pages.post("/runs/:id/retry", scopedPerm(access.RunsRetry), s.retryRun, expensive)
	pages.post("/runs/:id/rerun", scopedPerm(access.RunsCreate), s.rerunRun, expensive)
	pages.post("/runs/:id/steps/:step/approve", scopedPerm(access.RunsApprove), s.approveStep)
	pages.post("/runs/:id/steps/:step/reject", scopedPerm(access.RunsApprove), s.rejectStep)
	pages.post("/runs/:id/steps/:step/compare", scopedPerm(access.RunsCreate), s.compareStep, expensive)
	pages.get("/comparisons/:id", scopedPerm(access.RunsRead), s.comparisonPage)
	pages.get("/comparisons/:id/events", scopedPerm(access.RunsRead), s.comparisonEvents)
	pages.post("/comparisons/:id/prefer", scopedPerm(access.RunsCreate), s.preferCandidate)
	pages.post("/comparisons/:id/delete", scopedPerm(access.RunsCreate), s.deleteComparison)

	// Templates pages (HTML).
	pages.get("/templates", teamPerm(access.TemplatesRead), s.templatesPage)
	pages.get("/templates/new", teamPerm(access.TemplatesWrite), s.newTemplatePage)
	pages.post("/templates", teamPerm(access.TemplatesWrite), s.createTemplate, expensive)
	pages.post("/templates/builder", teamPerm(access.TemplatesWrite), s.builderUpdate)
	pages.post("/templates/preview", teamPerm(access.TemplatesWrite), s.previewTemplate)
	pages.post("/templates/import", teamPerm(access.TemplatesWrite), s.importTemplate, expensive)
	pages.get("/templates/:slug", scopedPerm(access.TemplatesRead), s.templatePage)
	pages.get("/templates/:slug/edit", scopedPerm(access.TemplatesWrite), s.editTemplatePage)
	pages.post("/templates/:slug", scopedPerm(access.TemplatesWrite), s.saveTemplate)
	pages.post("/templates/:slug/import", scopedPerm(access.TemplatesWrite), s.importTemplateVersion, expensive)
	pages.get("/templates/:slug/versions", scopedPerm(access.TemplatesRead), s.templateVersionsPage)
	pages.get("/templates/:slug/versions/:version", scopedPerm(access.TemplatesRead), s.templateVersionPage)
	pages.post("/templates/:slug/versions/:version/rollback", scopedPerm(access.TemplatesWrite), s.rollbackTemplate)
	pages.get("/templates/:slug/diff", scopedPerm(access.TemplatesRead), s.templateDiffPage)
	pages.get("/templates/:slug/json", scopedPerm(access.TemplatesRead), s.templateJSONPage)
	pages.get("/templates/:slug/export.json", scopedPerm(access.TemplatesRead), s.exportTemplate)
	pages.get("/templates/:slug/run", scopedPerm(access.RunsCreate), s.templateRunPage)
	pages.post("/templates/:slug/run", scopedPerm(access.RunsCreate), s.startTemplateRun, expensive)
	pages.post("/templates/:slug/delete", scopedPerm(access.TemplatesDelete), s.deleteTemplate)

	// Deployments pages (HTML), and the inbound webhooks that trigger them.
	pages.get("/deployments", teamPerm(access.TemplatesRead), s.deploymentsIndex)
	pages.get("/templates/:slug/deployments", scopedPerm(access.TemplatesRead), s.deploymentsPage, links)
	pages.post("/templates/:slug/deployments", scopedPerm(access.TemplatesDeploy), s.deployTemplate, links)
	pages.get("/templates/:slug/deployments/:env/run", scopedPerm(access.RunsCreate), s.deploymentRunPage)
	pages.post("/templates/:slug/deployments/:env/run", scopedPerm(access.RunsCreate), s.startDeploymentRun, expensive)
	pages.post("/templates/:slug/deployments/:env/pause", scopedPerm(access.TemplatesDeploy), s.pauseDeployment)
	pages.post("/templates/:slug/deployments/:env/resume", scopedPerm(access.TemplatesDeploy), s.resumeDeployment)
	pages.post("/templates/:slug/deployments/:env/schedule", scopedPerm(access.TemplatesDeploy), s.setDeploymentSchedule, links)
	pages.post("/templates/:slug/deployments/:env/webhook", scopedPerm(access.TemplatesDeploy), s.rotateWebhookSecret, links)
	pages.post("/templates/:slug/deployments/:env/input-map", scopedPerm(access.TemplatesDeploy), s.setDeploymentInputMap, links)
	pages.post("/team/settings", teamPerm(access.TeamUpdate), s.saveTeamSettings)
	pages.post("/hooks/:token", public, s.receiveWebhook, hookLimit)
	pages.post(StripeWebhookPath, public, s.receiveStripeEvent, s.limit(s.limits.Webhooks, ipKeys))

	// Site admin pages.
	pages.get("/admin", siteAdmin, s.adminPage, adminLimit)
	pages.get("/admin/circuits", siteAdmin, s.circuitsPage, adminLimit)
	pages.post("/admin/circuits/:provider/reset", siteAdmin, s.resetCircuit, adminLimit)
	pages.get("/admin/prices", siteAdmin, s.pricesPage, adminLimit)
	pages.post("/admin/prices", siteAdmin, s.setPrice, adminLimit)
	pages.get("/admin/outbox", siteAdmin, s.outboxPage, adminLimit)
	pages.get("/admin/health", siteAdmin, s.healthPage, adminLimit)
	pages.get("/admin/dead-letters", siteAdmin, s.deadLettersPage, adminLimit)
	pages.post("/admin/dead-letters/retry", siteAdmin, s.retryDeadLetters, adminLimit)
	pages.post("/admin/dead-letters/discard", siteAdmin, s.discardDeadLetters, adminLimit)
	pages.get("/admin/plans", siteAdmin, s.plansPage, adminLimit)
	pages.post("/admin/plans/:id", siteAdmin, s.savePlan, adminLimit)
	pages.get("/admin/teams", siteAdmin, s.teamsPage, adminLimit)
	pages.post("/admin/teams/:id/plan", siteAdmin, s.setTeamPlan, adminLimit)

	// JSON API, and its OpenAPI document (no key needed).
	pages.get("/api/v1/openapi.json", public, s.api.OpenAPIDocument)
	group := e.Group("/api/v1", s.requireAPIAuth, s.limitGeneralAPI)
	api := routeSet{s: s, add: group.Add, prefix: "/api/v1", api: true}
	api.get("/me", signedIn, s.api.Me)
	api.get("/billing", teamPerm(access.BillingRead), s.api.Billing)
	api.post("/teams", usersOnly, s.api.CreateTeam)
	api.post("/runs", teamPerm(access.RunsCreate), s.api.CreateRun, expensive)
	api.get("/runs", teamPerm(access.RunsRead), s.api.ListRuns)
	api.get("/runs/:id", scopedPerm(access.RunsRead), s.api.GetRun)
	api.post("/runs/:id/cancel", scopedPerm(access.RunsCancel), s.api.CancelRun)
	api.post("/runs/:id/retry", scopedPerm(access.RunsRetry), s.api.RetryRun, expensive)
	api.post("/runs/:id/rerun", scopedPerm(access.RunsCreate), s.api.RerunRun, expensive)
	api.get("/runs/:id/events", scopedPerm(access.RunsRead), s.api.RunEvents)
	api.post("/runs/:id/steps/:step/approve", scopedPerm(access.RunsApprove), s.api.ApproveStep)
	api.post("/runs/:id/steps/:step/reject", scopedPerm(access.RunsApprove), s.api.RejectStep)
	api.post("/runs/:id/steps/:step/compare", scopedPerm(access.RunsCreate), s.api.CompareStep, expensive)
	api.get("/comparisons/:id", scopedPerm(access.RunsRead), s.api.GetComparison)
	api.post("/comparisons/:id/prefer", scopedPerm(access.RunsCreate), s.api.PreferCandidate)
	api.delete("/comparisons/:id", scopedPerm(access.RunsCreate), s.api.DeleteComparison)
	api.get("/templates", teamPerm(access.TemplatesRead), s.api.ListTemplates)
	api.post("/templates", teamPerm(access.TemplatesWrite), s.api.CreateTemplate, expensive)
	api.get("/templates/:slug", scopedPerm(access.TemplatesRead), s.api.GetTemplate)
	api.put("/templates/:slug", scopedPerm(access.TemplatesWrite), s.api.SaveTemplate, expensive)
	api.delete("/templates/:slug", scopedPerm(access.TemplatesDelete), s.api.DeleteTemplate)
	api.get("/templates/:slug/versions", scopedPerm(access.TemplatesRead), s.api.TemplateVersions)
	api.post("/templates/:slug/versions/:version/rollback", scopedPerm(access.TemplatesWrite), s.api.RollbackTemplate)
	api.get("/templates/:slug/diff", scopedPerm(access.TemplatesRead), s.api.TemplateDiff)
	api.post("/templates/:slug/deploy", scopedPerm(access.TemplatesDeploy), s.api.DeployTemplate, links)
	api.get("/templates/:slug/deployments", scopedPerm(access.TemplatesRead), s.api.ListDeployments, links)
	api.post("/deployments/:slug/:env/runs", scopedPerm(access.RunsCreate), s.api.TriggerDeployment, expensive)
	api.post("/deployments/:slug/:env/pause", scopedPerm(access.TemplatesDeploy), s.api.PauseDeployment, links)
	api.post("/deployments/:slug/:env/resume", scopedPerm(access.TemplatesDeploy), s.api.ResumeDeployment, links)
	api.get("/api-keys", teamPerm(access.APIKeysManage), s.api.ListKeys)
	api.post("/api-keys", teamPerm(access.APIKeysManage), s.api.CreateKey)
	api.post("/api-keys/:id/revoke", scopedPerm(access.APIKeysManage), s.api.RevokeKey)
	api.get("/members", teamPerm(access.MembersRead), s.api.ListMembers)
	api.post("/members/:user/role", teamPerm(access.MembersUpdate), s.api.ChangeMemberRole)
	api.post("/members/:user/remove", scopedPerm(access.MembersRemove), s.api.RemoveMember)
	api.get("/invites", teamPerm(access.MembersInvite), s.api.ListInvites)
	api.post("/invites", teamPerm(access.MembersInvite), s.api.CreateInvite, links, expensive)
	api.post("/invites/:id/revoke", scopedPerm(access.MembersInvite), s.api.RevokeInvite)
	api.post("/invites/:id/resend", scopedPerm(access.MembersInvite), s.api.ResendInvite, links, expensive)
}
