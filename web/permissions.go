package web

import "github.com/nofxhq/nofx/internal/access"

// RouteAccess is who may call a route. The services enforce it; this table
// declares it, so that TestRoutePermissions can walk every registered route
// with every role and fail on a route that is missing here or that answers
// differently.
type RouteAccess struct {
	Public    bool              // anyone, signed in or not
	SignedIn  bool              // any signed-in user (or API key, unless UsersOnly)
	UsersOnly bool              // with SignedIn: users only; an API key, which acts inside one team, gets 403
	SiteAdmin bool              // site admins only
	Perm      access.Permission // team members (or keys) whose role grants it
	Scoped    bool              // acts on one team's resource, named in the path: another team's answers 404
}

var (
	public    = RouteAccess{Public: true}
	signedIn  = RouteAccess{SignedIn: true}
	usersOnly = RouteAccess{SignedIn: true, UsersOnly: true}
	siteAdmin = RouteAccess{SiteAdmin: true}
)

func teamPerm(p access.Permission) RouteAccess   { return RouteAccess{Perm: p} }
func scopedPerm(p access.Permission) RouteAccess { return RouteAccess{Perm: p, Scoped: true} }

// RoutePermission returns the declared access of a route, as registered
// ("GET", "/runs/:id").
func RoutePermission(method, path string) (RouteAccess, bool) {
	a, ok := routePermissions[method+" "+path]
	return a, ok
}

// DeclaredRoutes lists every route routePermissions declares, as
// "METHOD path".
func DeclaredRoutes() []string {
	out := make([]string, 0, len(routePermissions))
	for route := range routePermissions {
		out = append(out, route)
	}
	return out
}

// routePermissions declares the access of every route, by "METHOD path".
var routePermissions = map[string]RouteAccess{
	"GET /healthz":  public,
	"GET /readyz":   public,
	"GET /metrics":  public,
	"GET /static/*": public,
	"GET /":         public,
	"GET /signup":   public,
	"POST /signup":  public,
	"GET /login":    public,
	"POST /login":   public,
	"POST /logout":  public,

	"GET /account":           signedIn,
	"POST /account/password": signedIn,
	"POST /teams/switch":     signedIn,
	"GET /teams/new":         signedIn,
	"POST /teams":            signedIn,

	"GET /runs":                                               teamPerm(access.RunsRead),
	"GET /runs/live":                                          teamPerm(access.RunsRead),
	"GET /runs/new":                                           teamPerm(access.RunsCreate),
	"POST /runs":                                              teamPerm(access.RunsCreate),
	"GET /runs/:id":                                           scopedPerm(access.RunsRead),
	"GET /runs/:id/live":                                      scopedPerm(access.RunsRead),
	"POST /runs/:id/cancel":                                   scopedPerm(access.RunsCancel),
	"POST /runs/:id/retry":                                    scopedPerm(access.RunsRetry),
	"POST /runs/:id/rerun":                                    scopedPerm(access.RunsCreate),
	"POST /runs/:id/steps/:step/approve":                      scopedPerm(access.RunsApprove),
	"POST /runs/:id/steps/:step/reject":                       scopedPerm(access.RunsApprove),
	"POST /runs/:id/steps/:step/compare":                      scopedPerm(access.RunsCreate),
	"GET /comparisons/:id":                                    scopedPerm(access.RunsRead),
	"GET /comparisons/:id/events":                             scopedPerm(access.RunsRead),
	"POST /comparisons/:id/prefer":                            scopedPerm(access.RunsCreate),
	"POST /comparisons/:id/delete":                            scopedPerm(access.RunsCreate),
	"GET /templates":                                          teamPerm(access.TemplatesRead),
	"GET /templates/new":                                      teamPerm(access.TemplatesWrite),
	"POST /templates":                                         teamPerm(access.TemplatesWrite),
	"POST /templates/builder":                                 teamPerm(access.TemplatesWrite),
	"POST /templates/preview":                                 teamPerm(access.TemplatesWrite),
	"POST /templates/import":                                  teamPerm(access.TemplatesWrite),
	"GET /templates/:slug":                                    scopedPerm(access.TemplatesRead),
	"GET /templates/:slug/edit":                               scopedPerm(access.TemplatesWrite),
	"POST /templates/:slug":                                   scopedPerm(access.TemplatesWrite),
	"POST /templates/:slug/import":                            scopedPerm(access.TemplatesWrite),
	"GET /templates/:slug/versions":                           scopedPerm(access.TemplatesRead),
	"GET /templates/:slug/versions/:version":                  scopedPerm(access.TemplatesRead),
	"POST /templates/:slug/versions/:version/rollback":        scopedPerm(access.TemplatesWrite),
	"GET /templates/:slug/diff":                               scopedPerm(access.TemplatesRead),
	"GET /templates/:slug/json":                               scopedPerm(access.TemplatesRead),
	"GET /templates/:slug/export.json":                        scopedPerm(access.TemplatesRead),
	"GET /templates/:slug/run":                                scopedPerm(access.RunsCreate),
	"POST /templates/:slug/run":                               scopedPerm(access.RunsCreate),
	"POST /templates/:slug/delete":                            scopedPerm(access.TemplatesDelete),
	"GET /templates/:slug/deployments":                        scopedPerm(access.TemplatesRead),
	"POST /templates/:slug/deployments":                       scopedPerm(access.TemplatesDeploy),
	"GET /templates/:slug/deployments/:env/run":               scopedPerm(access.RunsCreate),
	"POST /templates/:slug/deployments/:env/run":              scopedPerm(access.RunsCreate),
	"POST /templates/:slug/deployments/:env/pause":            scopedPerm(access.TemplatesDeploy),
	"POST /templates/:slug/deployments/:env/resume":           scopedPerm(access.TemplatesDeploy),
	"POST /templates/:slug/deployments/:env/schedule":         scopedPerm(access.TemplatesDeploy),
	"POST /templates/:slug/deployments/:env/webhook":          scopedPerm(access.TemplatesDeploy),
	"POST /templates/:slug/deployments/:env/input-map":        scopedPerm(access.TemplatesDeploy),
	"POST /team/settings":                                     teamPerm(access.TeamUpdate),
	"POST /hooks/:token":                                      public,
	"GET /team":                                               teamPerm(access.TeamRead),
	"POST /team/keys":                                         teamPerm(access.TeamUpdate),
	"POST /team/keys/:provider/delete":                        teamPerm(access.TeamUpdate),
	"GET /team/api-keys":                                      teamPerm(access.APIKeysManage),
	"POST /team/api-keys":                                     teamPerm(access.APIKeysManage),
	"POST /team/api-keys/:id/revoke":                          scopedPerm(access.APIKeysManage),
	"GET /team/members":                                       teamPerm(access.MembersRead),
	"POST /team/members/:user/role":                           teamPerm(access.MembersUpdate),
	"POST /team/members/:user/remove":                         teamPerm(access.MembersRemove),
	"POST /team/leave":                                        teamPerm(access.TeamRead),
	"POST /team/transfer":                                     teamPerm(access.OwnershipTransfer),
	"POST /team/delete":                                       teamPerm(access.TeamDelete),
	"GET /team/invites":                                       teamPerm(access.MembersInvite),
	"POST /team/invites":                                      teamPerm(access.MembersInvite),
	"POST /team/invites/:id/revoke":                           scopedPerm(access.MembersInvite),
	"POST /team/invites/:id/resend":                           scopedPerm(access.MembersInvite),
	"GET /invites/:token":                                     public,
	"POST /invites/:token/accept":                             signedIn,
	"GET /team/audit":                                         teamPerm(access.AuditRead),
	"GET /team/audit.csv":                                     teamPerm(access.AuditRead),
	"GET /billing":                                            teamPerm(access.BillingRead),
	"POST /billing/plan":                                      teamPerm(access.BillingManage),
	"POST /billing/checkout":                                  teamPerm(access.BillingManage),
	"GET /billing/checkout/success":                           teamPerm(access.BillingRead),
	"GET /billing/checkout/cancel":                            teamPerm(access.BillingRead),
	"POST /billing/portal":                                    teamPerm(access.BillingManage),
	"POST /billing/cancel":                                    teamPerm(access.BillingManage),
	"POST /billing/resume":                                    teamPerm(access.BillingManage),
	"POST /webhooks/stripe":                                   public,
	"GET /admin/health":                                       siteAdmin,
	"GET /admin/dead-letters":                                 siteAdmin,
	"POST /admin/dead-letters/retry":                          siteAdmin,
	"POST /admin/dead-letters/discard":                        siteAdmin,
	"GET /admin/plans":                                        siteAdmin,
	"POST /admin/plans/:id":                                   siteAdmin,
	"GET /admin/teams":                                        siteAdmin,
	"POST /admin/teams/:id/plan":                              siteAdmin,
	"GET /admin":                                              siteAdmin,
	"GET /admin/circuits":                                     siteAdmin,
	"POST /admin/circuits/:provider/reset":                    siteAdmin,
	"GET /admin/prices":                                       siteAdmin,
	"POST /admin/prices":                                      siteAdmin,
	"GET /admin/outbox":                                       siteAdmin,
	"GET /api/v1/openapi.json":                                public,
	"GET /api/v1/me":                                          signedIn,
	"GET /api/v1/billing":                                     teamPerm(access.BillingRead),
	"POST /api/v1/teams":                                      usersOnly,
	"POST /api/v1/runs":                                       teamPerm(access.RunsCreate),
	"GET /api/v1/runs":                                        teamPerm(access.RunsRead),
	"GET /api/v1/runs/:id":                                    scopedPerm(access.RunsRead),
	"POST /api/v1/runs/:id/cancel":                            scopedPerm(access.RunsCancel),
	"POST /api/v1/runs/:id/retry":                             scopedPerm(access.RunsRetry),
	"POST /api/v1/runs/:id/rerun":                             scopedPerm(access.RunsCreate),
	"GET /api/v1/runs/:id/events":                             scopedPerm(access.RunsRead),
	"POST /api/v1/runs/:id/steps/:step/approve":               scopedPerm(access.RunsApprove),
	"POST /api/v1/runs/:id/steps/:step/reject":                scopedPerm(access.RunsApprove),
	"POST /api/v1/runs/:id/steps/:step/compare":               scopedPerm(access.RunsCreate),
	"GET /api/v1/comparisons/:id":                             scopedPerm(access.RunsRead),
	"POST /api/v1/comparisons/:id/prefer":                     scopedPerm(access.RunsCreate),
	"DELETE /api/v1/comparisons/:id":                          scopedPerm(access.RunsCreate),
	"GET /api/v1/templates":                                   teamPerm(access.TemplatesRead),
	"POST /api/v1/templates":                                  teamPerm(access.TemplatesWrite),
	"GET /api/v1/templates/:slug":                             scopedPerm(access.TemplatesRead),
	"PUT /api/v1/templates/:slug":                             scopedPerm(access.TemplatesWrite),
	"DELETE /api/v1/templates/:slug":                          scopedPerm(access.TemplatesDelete),
	"POST /api/v1/templates/:slug/versions/:version/rollback": scopedPerm(access.TemplatesWrite),
	"GET /api/v1/templates/:slug/diff":                        scopedPerm(access.TemplatesRead),
	"GET /api/v1/templates/:slug/versions":                    scopedPerm(access.TemplatesRead),
	"POST /api/v1/templates/:slug/deploy":                     scopedPerm(access.TemplatesDeploy),
	"GET /api/v1/templates/:slug/deployments":                 scopedPerm(access.TemplatesRead),
	"POST /api/v1/deployments/:slug/:env/runs":                scopedPerm(access.RunsCreate),
	"POST /api/v1/deployments/:slug/:env/pause":               scopedPerm(access.TemplatesDeploy),
	"POST /api/v1/deployments/:slug/:env/resume":              scopedPerm(access.TemplatesDeploy),
	"GET /api/v1/api-keys":                                    teamPerm(access.APIKeysManage),
	"POST /api/v1/api-keys":                                   teamPerm(access.APIKeysManage),
	"POST /api/v1/api-keys/:id/revoke":                        scopedPerm(access.APIKeysManage),
	"GET /api/v1/members":                                     teamPerm(access.MembersRead),
	"POST /api/v1/members/:user/role":                         teamPerm(access.MembersUpdate), // not scoped: a bad role is a 422 before the member is looked up
	"POST /api/v1/members/:user/remove":                       scopedPerm(access.MembersRemove),
	"GET /api/v1/invites":                                     teamPerm(access.MembersInvite),
	"POST /api/v1/invites":                                    teamPerm(access.MembersInvite),
	"POST /api/v1/invites/:id/revoke":                         scopedPerm(access.MembersInvite),
	"POST /api/v1/invites/:id/resend":                         scopedPerm(access.MembersInvite),
}
