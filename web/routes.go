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

	root := routeSet{s: s, add: e.Add}

	// Probes, metrics and assets: no session needed.
	root.get("/healthz", public, s.healthz)
	root.get("/readyz", public, s.readyz)
	root.get("/metrics", public, s.serveMetrics())
	root.get("/static/*", public, serveStatic)

	// Accounts.
	root.get("/", public, s.pages.Home)
	root.get("/signup", public, s.pages.SignupPage)
	root.post("/signup", public, s.pages.Signup, authLimit)
	root.get("/login", public, s.pages.LoginPage)
	root.post("/login", public, s.pages.Login, authLimit)
	root.post("/logout", public, s.pages.Logout)

	// Pages for signed-in users. (Middleware is given per route: an Echo
	// group without a prefix would also catch unknown paths.)
	root.get("/runs", teamPerm(access.RunsRead), s.pages.RunsPage)
	root.get("/team", teamPerm(access.TeamRead), s.pages.TeamPage)
	root.post("/teams/switch", signedIn, s.pages.SwitchTeam)
	root.get("/teams/new", signedIn, s.pages.NewTeamPage)
	root.post("/teams", signedIn, s.pages.CreateTeam)
	root.post("/team/keys", teamPerm(access.TeamUpdate), s.pages.SaveProviderKey)
	root.post("/team/keys/:provider/delete", teamPerm(access.TeamUpdate), s.pages.DeleteProviderKey)
	root.get("/team/api-keys", teamPerm(access.APIKeysManage), s.pages.APIKeysPage)
	root.post("/team/api-keys", teamPerm(access.APIKeysManage), s.pages.CreateAPIKey)
	root.post("/team/api-keys/:id/revoke", scopedPerm(access.APIKeysManage), s.pages.RevokeAPIKey)
	root.get("/team/members", teamPerm(access.MembersRead), s.pages.MembersPage)
	root.post("/team/members/:user/role", teamPerm(access.MembersUpdate), s.pages.ChangeMemberRole)
	root.post("/team/members/:user/remove", teamPerm(access.MembersRemove), s.pages.RemoveMember)
	root.post("/team/leave", teamPerm(access.TeamRead), s.pages.LeaveTeam)
	root.post("/team/transfer", teamPerm(access.OwnershipTransfer), s.pages.TransferOwnership)
	root.post("/team/delete", teamPerm(access.TeamDelete), s.pages.DeleteTeam)
	root.get("/team/invites", teamPerm(access.MembersInvite), s.pages.InvitesPage)
	root.post("/team/invites", teamPerm(access.MembersInvite), s.pages.CreateInvite, links, expensive)
	root.post("/team/invites/:id/revoke", scopedPerm(access.MembersInvite), s.pages.RevokeInvite)
	root.post("/team/invites/:id/resend", scopedPerm(access.MembersInvite), s.pages.ResendInvite, links, expensive)
	root.get("/invites/:token", public, s.pages.InvitationPage)
	root.post("/invites/:token/accept", signedIn, s.pages.AcceptInvite, authLimit)
	root.get("/team/audit", teamPerm(access.AuditRead), s.pages.AuditPage)
	root.get("/team/audit.csv", teamPerm(access.AuditRead), s.pages.AuditCSV)
	root.get("/billing", teamPerm(access.BillingRead), s.pages.BillingPage)
	root.post("/billing/plan", teamPerm(access.BillingManage), s.pages.ChangePlan)
	root.post("/billing/checkout", teamPerm(access.BillingManage), s.pages.StartCheckout, links, expensive)
	root.get("/billing/checkout/success", teamPerm(access.BillingRead), s.pages.CheckoutDone)
	root.get("/billing/checkout/cancel", teamPerm(access.BillingRead), s.pages.CheckoutCancelled)
	root.post("/billing/portal", teamPerm(access.BillingManage), s.pages.OpenPortal, links, expensive)
	root.post("/billing/cancel", teamPerm(access.BillingManage), s.pages.CancelSubscription)
	root.post("/billing/resume", teamPerm(access.BillingManage), s.pages.ResumeSubscription)
	root.get("/account", signedIn, s.pages.AccountPage)
	root.post("/account/profile", signedIn, s.pages.UpdateProfile, authLimit)
	root.post("/account/password", signedIn, s.pages.ChangePassword, authLimit)

	// Runs pages (HTML).
	root.get("/runs/new", teamPerm(access.RunsCreate), s.pages.NewRunPage)
	root.post("/runs", teamPerm(access.RunsCreate), s.pages.CreateRun, expensive)
	root.get("/runs/:id", scopedPerm(access.RunsRead), s.pages.RunPage)
	root.get("/runs/:id/live", scopedPerm(access.RunsRead), s.pages.RunLive)
	root.get("/runs/live", teamPerm(access.RunsRead), s.pages.RunsLive)
	root.post("/runs/:id/cancel", scopedPerm(access.RunsCancel), s.pages.CancelRun)
	root.post("/runs/:id/retry", scopedPerm(access.RunsRetry), s.pages.RetryRun, expensive)
	root.post("/runs/:id/rerun", scopedPerm(access.RunsCreate), s.pages.RerunRun, expensive)
	root.post("/runs/:id/steps/:step/approve", scopedPerm(access.RunsApprove), s.pages.ApproveStep)
	root.post("/runs/:id/steps/:step/reject", scopedPerm(access.RunsApprove), s.pages.RejectStep)
	root.post("/runs/:id/steps/:step/compare", scopedPerm(access.RunsCreate), s.pages.CompareStep, expensive)
	root.get("/comparisons/:id", scopedPerm(access.RunsRead), s.pages.ComparisonPage)
	root.get("/comparisons/:id/events", scopedPerm(access.RunsRead), s.pages.ComparisonEvents)
	root.post("/comparisons/:id/prefer", scopedPerm(access.RunsCreate), s.pages.PreferCandidate)
	root.post("/comparisons/:id/delete", scopedPerm(access.RunsCreate), s.pages.DeleteComparison)

	// Templates pages (HTML).
	root.get("/templates", teamPerm(access.TemplatesRead), s.pages.TemplatesPage)
	root.get("/templates/new", teamPerm(access.TemplatesWrite), s.pages.NewTemplatePage)
	root.post("/templates", teamPerm(access.TemplatesWrite), s.pages.CreateTemplate, expensive)
	root.post("/templates/builder", teamPerm(access.TemplatesWrite), s.pages.BuilderUpdate)
	root.post("/templates/preview", teamPerm(access.TemplatesWrite), s.pages.PreviewTemplate)
	root.post("/templates/import", teamPerm(access.TemplatesWrite), s.pages.ImportTemplate, expensive)
	root.get("/templates/:slug", scopedPerm(access.TemplatesRead), s.pages.TemplatePage)
	root.get("/templates/:slug/edit", scopedPerm(access.TemplatesWrite), s.pages.EditTemplatePage)
	root.post("/templates/:slug", scopedPerm(access.TemplatesWrite), s.pages.SaveTemplate)
	root.post("/templates/:slug/import", scopedPerm(access.TemplatesWrite), s.pages.ImportTemplateVersion, expensive)
	root.get("/templates/:slug/versions", scopedPerm(access.TemplatesRead), s.pages.TemplateVersionsPage)
	root.get("/templates/:slug/versions/:version", scopedPerm(access.TemplatesRead), s.pages.TemplateVersionPage)
	root.post("/templates/:slug/versions/:version/rollback", scopedPerm(access.TemplatesWrite), s.pages.RollbackTemplate)
	root.get("/templates/:slug/diff", scopedPerm(access.TemplatesRead), s.pages.TemplateDiffPage)
	root.get("/templates/:slug/json", scopedPerm(access.TemplatesRead), s.pages.TemplateJSONPage)
	root.get("/templates/:slug/export.json", scopedPerm(access.TemplatesRead), s.pages.ExportTemplate)
	root.get("/templates/:slug/run", scopedPerm(access.RunsCreate), s.pages.TemplateRunPage)
	root.post("/templates/:slug/run", scopedPerm(access.RunsCreate), s.pages.StartTemplateRun, expensive)
	root.post("/templates/:slug/delete", scopedPerm(access.TemplatesDelete), s.pages.DeleteTemplate)

	// Deployments pages (HTML), and the inbound webhooks that trigger them.
	root.get("/deployments", teamPerm(access.TemplatesRead), s.pages.DeploymentsIndex)
	root.get("/templates/:slug/deployments", scopedPerm(access.TemplatesRead), s.pages.DeploymentsPage, links)
	root.post("/templates/:slug/deployments", scopedPerm(access.TemplatesDeploy), s.pages.DeployTemplate, links)
	root.get("/templates/:slug/deployments/:env/run", scopedPerm(access.RunsCreate), s.pages.DeploymentRunPage)
	root.post("/templates/:slug/deployments/:env/run", scopedPerm(access.RunsCreate), s.pages.StartDeploymentRun, expensive)
	root.post("/templates/:slug/deployments/:env/pause", scopedPerm(access.TemplatesDeploy), s.pages.PauseDeployment)
	root.post("/templates/:slug/deployments/:env/resume", scopedPerm(access.TemplatesDeploy), s.pages.ResumeDeployment)
	root.post("/templates/:slug/deployments/:env/schedule", scopedPerm(access.TemplatesDeploy), s.pages.SetDeploymentSchedule, links)
	root.post("/templates/:slug/deployments/:env/webhook", scopedPerm(access.TemplatesDeploy), s.pages.RotateWebhookSecret, links)
	root.post("/templates/:slug/deployments/:env/input-map", scopedPerm(access.TemplatesDeploy), s.pages.SetDeploymentInputMap, links)
	root.post("/team/settings", teamPerm(access.TeamUpdate), s.pages.SaveTeamSettings)
	root.post("/hooks/:token", public, s.receiveWebhook, hookLimit)
	root.post(StripeWebhookPath, public, s.receiveStripeEvent, s.limit(s.limits.Webhooks, ipKeys))

	// Site admin pages.
	root.get("/admin", siteAdmin, s.pages.AdminPage, adminLimit)
	root.get("/admin/circuits", siteAdmin, s.pages.CircuitsPage, adminLimit)
	root.post("/admin/circuits/:provider/reset", siteAdmin, s.pages.ResetCircuit, adminLimit)
	root.get("/admin/prices", siteAdmin, s.pages.PricesPage, adminLimit)
	root.post("/admin/prices", siteAdmin, s.pages.SetPrice, adminLimit)
	root.get("/admin/outbox", siteAdmin, s.pages.OutboxPage, adminLimit)
	root.get("/admin/health", siteAdmin, s.pages.HealthPage, adminLimit)
	root.get("/admin/dead-letters", siteAdmin, s.pages.DeadLettersPage, adminLimit)
	root.post("/admin/dead-letters/retry", siteAdmin, s.pages.RetryDeadLetters, adminLimit)
	root.post("/admin/dead-letters/discard", siteAdmin, s.pages.DiscardDeadLetters, adminLimit)
	root.get("/admin/plans", siteAdmin, s.pages.PlansPage, adminLimit)
	root.post("/admin/plans/:id", siteAdmin, s.pages.SavePlan, adminLimit)
	root.get("/admin/teams", siteAdmin, s.pages.TeamsPage, adminLimit)
	root.post("/admin/teams/:id/plan", siteAdmin, s.pages.SetTeamPlan, adminLimit)

	// JSON API, and its OpenAPI document (no key needed).
	root.get("/api/v1/openapi.json", public, s.api.OpenAPIDocument)
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
