package wire

import (
	"context"
	"net/http"
)

type actorKey struct{}

type adminKey struct{}

// Anonymous is the actor of requests made without auth (evac dev).
const Anonymous = "anonymous"

// WithActor returns a context naming the authenticated actor (set by the
// auth middleware); the audit log records it as the author of a change.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// Actor names who made the request whose context is ctx: the name
// WithActor set, else Anonymous.
func Actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return Anonymous
}

// ActorOf names who made r, as the audit log will record it.
func ActorOf(r *http.Request) string { return Actor(r.Context()) }

// WithAdmin records whether the authenticated caller holds the admin role
// (set by the auth middleware).
func WithAdmin(ctx context.Context, admin bool) context.Context {
	return context.WithValue(ctx, adminKey{}, admin)
}

// MayForce reports whether the caller of ctx may override safety rules:
// admins only when auth is on (WithAdmin was set); anyone when auth is off
// (evac dev).
func MayForce(ctx context.Context) bool {
	admin, authenticated := ctx.Value(adminKey{}).(bool)
	return !authenticated || admin
}
