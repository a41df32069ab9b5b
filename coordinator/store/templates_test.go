package store

import (
	"context"
	"errors"
	"testing"
)

func TestTemplateVersions(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	admin, _ := s.CreateUser(ctx, "root", "h", RoleAdmin)
	bob, _ := s.CreateUser(ctx, "bob", "h", RoleAdmin)
	if _, err := s.TemplateByName(ctx, "base"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing template: %v", err)
	}
	tpl, v1, err := s.PushTemplateVersion(ctx, "base", TemplateVersion{Message: "first", Archive: []byte("tar1"),
		ArchiveHash: "h1", Variables: `[{"name":"x"}]`, CreatedBy: admin.ID})
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || tpl.ActiveVersion != 1 || tpl.CreatedByName != "root" || v1.ArchiveSize != 4 || v1.Archive != nil {
		t.Fatalf("first push: %+v %+v", tpl, v1)
	}
	tpl2, v2, err := s.PushTemplateVersion(ctx, "base", TemplateVersion{Archive: []byte("tar-two"), ArchiveHash: "h2", CreatedBy: bob.ID})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || tpl2.ID != tpl.ID || tpl2.ActiveVersionID != v2.ID || tpl2.CreatedByName != "root" || v2.CreatedByName != "bob" || v2.Variables != "[]" {
		t.Fatalf("second push: %+v %+v", tpl2, v2)
	}
	if _, _, err := s.PushTemplateVersion(ctx, "other", TemplateVersion{Archive: []byte("o"), ArchiveHash: "o", CreatedBy: bob.ID}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListTemplates(ctx, false)
	if err != nil || len(list) != 2 || list[0].Name != "base" || list[0].ActiveVersion != 2 || list[1].CreatedByName != "bob" {
		t.Fatalf("list: %+v %v", list, err)
	}
	vs, err := s.ListTemplateVersions(ctx, tpl.ID)
	if err != nil || len(vs) != 2 || vs[0].Message != "first" || vs[1].Version != 2 {
		t.Fatalf("versions: %+v %v", vs, err)
	}
	got, err := s.TemplateVersionByNumber(ctx, tpl.ID, 1, true)
	if err != nil || string(got.Archive) != "tar1" || got.Variables != `[{"name":"x"}]` {
		t.Fatalf("version 1: %+v %v", got, err)
	}
	if got, err := s.TemplateVersionByID(ctx, v2.ID, true); err != nil || string(got.Archive) != "tar-two" {
		t.Fatalf("version 2 by ID: %+v %v", got, err)
	}
	if _, err := s.TemplateVersionByNumber(ctx, tpl.ID, 3, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("version 3: %v", err)
	}
}
