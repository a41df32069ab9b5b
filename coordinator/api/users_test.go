package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
)

func TestUsersAdminOnly(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	admin := srv.Client(t, srv.Bootstrap(t, "alice", adminPW))

	bob, err := admin.CreateUser(ctx, client.CreateUserRequest{Username: "bob", Password: memberPW})
	if err != nil {
		t.Fatal(err)
	}
	if bob.Role != client.RoleMember || bob.Username != "bob" {
		t.Fatalf("created %+v, want member bob", bob)
	}
	sess, err := srv.Client(t, "").Login(ctx, client.LoginRequest{Username: "bob", Password: memberPW})
	if err != nil {
		t.Fatal(err)
	}
	member := srv.Client(t, sess.Token)

	_, err = member.CreateUser(ctx, client.CreateUserRequest{Username: "carol", Password: memberPW, Role: client.RoleAdmin})
	wantAPIError(t, err, http.StatusForbidden, client.CodeForbidden)
	_, err = member.ListUsers(ctx)
	wantAPIError(t, err, http.StatusForbidden, client.CodeForbidden)
	if n := countRows(t, srv, "users"); n != 2 {
		t.Fatalf("%d users after a member's attempt, want 2", n)
	}

	_, err = admin.CreateUser(ctx, client.CreateUserRequest{Username: "bob", Password: memberPW})
	wantAPIError(t, err, http.StatusConflict, client.CodeConflict)
	for _, req := range []client.CreateUserRequest{
		{Username: "carol", Password: memberPW, Role: "root"},
		{Username: "Carol", Password: memberPW},
		{Username: "carol", Password: "1234567"},
	} {
		_, err = admin.CreateUser(ctx, req)
		wantAPIError(t, err, http.StatusBadRequest, client.CodeBadRequest)
	}

	carol, err := admin.CreateUser(ctx, client.CreateUserRequest{Username: "carol", Password: memberPW, Role: client.RoleAdmin})
	if err != nil || carol.Role != client.RoleAdmin {
		t.Fatalf("create admin carol = %+v, %v", carol, err)
	}
	users, err := admin.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Username+":"+u.Role)
	}
	if got, want := len(names), 3; got != want || names[0] != "alice:admin" || names[1] != "bob:member" || names[2] != "carol:admin" {
		t.Fatalf("users = %v", names)
	}
}
