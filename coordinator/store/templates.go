package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Template is a named series of template versions, one of them active.
// ActiveVersion and CreatedByName are read from the joined rows.
type Template struct {
	ID              int64
	Name            string
	CreatedBy       int64
	CreatedByName   string
	ActiveVersionID int64
	ActiveVersion   int       // version number of the active version; 0 if none
	UpdatedAt       time.Time // when the active version was pushed
	CreatedAt       time.Time
	ArchivedAt      time.Time // zero unless archived
}

// TemplateVersion is one pushed archive of a template. Archive is loaded
// only by the queries that say so.
type TemplateVersion struct {
	ID            int64
	TemplateID    int64
	Version       int
	Message       string
	Archive       []byte
	ArchiveHash   string // hex SHA-256 of Archive
	ArchiveSize   int64
	Variables     string // JSON list of the template's variables
	Parameters    string // JSON list of the template's parameters (param.Parameter)
	CreatedBy     int64
	CreatedByName string
	CreatedAt     time.Time
}

const templateCols = `t.id, t.name, t.created_by, COALESCE(u.username, ''), COALESCE(t.active_version_id, 0),
	COALESCE(v.version, 0), COALESCE(v.created_at, 0), t.created_at, t.archived_at`

const templateFrom = ` FROM templates t LEFT JOIN users u ON u.id = t.created_by
	LEFT JOIN template_versions v ON v.id = t.active_version_id`

func scanTemplate(row rowScanner) (Template, error) {
	var t Template
	var updated, created, archived int64
	err := row.Scan(&t.ID, &t.Name, &t.CreatedBy, &t.CreatedByName, &t.ActiveVersionID, &t.ActiveVersion, &updated, &created, &archived)
	if errors.Is(err, sql.ErrNoRows) {
		return Template{}, ErrNotFound
	}
	t.UpdatedAt, t.CreatedAt, t.ArchivedAt = fromMillis(updated), fromMillis(created), fromMillis(archived)
	return t, err
}

// versionCols leaves out the archive; versionColsArchive has it.
const (
	versionCols = `v.id, v.template_id, v.version, v.message, v.archive_hash, LENGTH(v.archive), v.variables, v.parameters,
	v.created_by, COALESCE(u.username, ''), v.created_at`
	versionColsArchive = versionCols + `, v.archive`
	versionFrom        = ` FROM template_versions v LEFT JOIN users u ON u.id = v.created_by`
)

func scanVersion(row rowScanner, withArchive bool) (TemplateVersion, error) {
	var v TemplateVersion
	var created int64
	dest := []any{&v.ID, &v.TemplateID, &v.Version, &v.Message, &v.ArchiveHash, &v.ArchiveSize, &v.Variables, &v.Parameters,
		&v.CreatedBy, &v.CreatedByName, &created}
	if withArchive {
		dest = append(dest, &v.Archive)
	}
	err := row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return TemplateVersion{}, ErrNotFound
	}
	v.CreatedAt = fromMillis(created)
	return v, err
}

// PushTemplateVersion stores v as the next version of the template called
// name, creating the template (owned by v.CreatedBy) if it does not exist,
// and makes it the active version, in one transaction; a push un-archives
// an archived template. v.Version is assigned. Callers check who may push
// first.
func (s *Store) PushTemplateVersion(ctx context.Context, name string, v TemplateVersion) (Template, TemplateVersion, error) {
	var out TemplateVersion
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var tid int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM templates WHERE name = ?`, name).Scan(&tid)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, `INSERT INTO templates (name, created_by, created_at) VALUES (?, ?, ?) RETURNING id`,
				name, v.CreatedBy, nowMillis()).Scan(&tid)
		}
		if err != nil {
			return err
		}
		var next int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM template_versions WHERE template_id = ?`, tid).Scan(&next); err != nil {
			return err
		}
		var vid int64
		err = tx.QueryRowContext(ctx, `INSERT INTO template_versions
			(template_id, version, message, archive, archive_hash, variables, parameters, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			tid, next, v.Message, v.Archive, v.ArchiveHash, orDefault(v.Variables, "[]"), orDefault(v.Parameters, "[]"),
			v.CreatedBy, nowMillis()).Scan(&vid)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE templates SET active_version_id = ?, archived_at = 0 WHERE id = ?`, vid, tid); err != nil {
			return err
		}
		out, err = scanVersion(tx.QueryRowContext(ctx, `SELECT `+versionCols+versionFrom+` WHERE v.id = ?`, vid), false)
		return err
	})
	if isUniqueViolation(err) {
		// Another push of the same template won the race for the name or
		// the version number.
		return Template{}, TemplateVersion{}, fmt.Errorf("template %q: concurrent push: %w", name, ErrConflict)
	}
	if err != nil {
		return Template{}, TemplateVersion{}, err
	}
	t, err := s.TemplateByID(ctx, out.TemplateID)
	return t, out, err
}

// TemplateByName returns the template called name.
func (s *Store) TemplateByName(ctx context.Context, name string) (Template, error) {
	return scanTemplate(s.db.QueryRowContext(ctx, `SELECT `+templateCols+templateFrom+` WHERE t.name = ?`, name))
}

// TemplateByID returns the template with that ID.
func (s *Store) TemplateByID(ctx context.Context, id int64) (Template, error) {
	return scanTemplate(s.db.QueryRowContext(ctx, `SELECT `+templateCols+templateFrom+` WHERE t.id = ?`, id))
}

// ListTemplates returns the templates ordered by name, the archived ones
// only if withArchived.
func (s *Store) ListTemplates(ctx context.Context, withArchived bool) ([]Template, error) {
	where := ` WHERE t.archived_at = 0`
	if withArchived {
		where = ``
	}
	return queryAll(ctx, s.db, scanTemplate, `SELECT `+templateCols+templateFrom+where+` ORDER BY t.name`)
}

// ErrInUse is returned for a change to a template that workspaces still use.
var ErrInUse = errors.New("in use")

// ActivateTemplateVersion makes version number of the template active.
func (s *Store) ActivateTemplateVersion(ctx context.Context, templateID int64, number int) (TemplateVersion, error) {
	v, err := s.TemplateVersionByNumber(ctx, templateID, number, false)
	if err != nil {
		return v, err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE templates SET active_version_id = ? WHERE id = ?`, v.ID, templateID)
	return v, affectedOne(res, err)
}

// TemplateWorkspaces counts the workspaces built from a template.
func (s *Store) TemplateWorkspaces(ctx context.Context, templateID int64) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM workspaces WHERE template_id = ?`, templateID).Scan(&n)
	return n, err
}

// ArchiveTemplate archives (or, with archive false, un-archives) a
// template. A template that workspaces use cannot be archived: ErrInUse.
func (s *Store) ArchiveTemplate(ctx context.Context, templateID int64, archive bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		at := int64(0)
		if archive {
			if err := noWorkspaces(ctx, tx, templateID); err != nil {
				return err
			}
			at = nowMillis()
		}
		res, err := tx.ExecContext(ctx, `UPDATE templates SET archived_at = ? WHERE id = ?`, at, templateID)
		return affectedOne(res, err)
	})
}

// DeleteTemplate deletes a template with all its versions. A template that
// workspaces use cannot be deleted: ErrInUse.
func (s *Store) DeleteTemplate(ctx context.Context, templateID int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := noWorkspaces(ctx, tx, templateID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE templates SET active_version_id = NULL WHERE id = ?`, templateID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM template_versions WHERE template_id = ?`, templateID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM templates WHERE id = ?`, templateID)
		return affectedOne(res, err)
	})
}

func noWorkspaces(ctx context.Context, tx *sql.Tx, templateID int64) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM workspaces WHERE template_id = ?`, templateID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d workspaces use the template: %w", n, ErrInUse)
	}
	return nil
}

// ListTemplateVersions returns a template's versions, oldest first,
// without their archives.
func (s *Store) ListTemplateVersions(ctx context.Context, templateID int64) ([]TemplateVersion, error) {
	scan := func(row rowScanner) (TemplateVersion, error) { return scanVersion(row, false) }
	return queryAll(ctx, s.db, scan, `SELECT `+versionCols+versionFrom+` WHERE v.template_id = ? ORDER BY v.version`, templateID)
}

// TemplateVersionByNumber returns version number of a template, with its
// archive if withArchive.
func (s *Store) TemplateVersionByNumber(ctx context.Context, templateID int64, number int, withArchive bool) (TemplateVersion, error) {
	cols := versionCols
	if withArchive {
		cols = versionColsArchive
	}
	return scanVersion(s.db.QueryRowContext(ctx, `SELECT `+cols+versionFrom+` WHERE v.template_id = ? AND v.version = ?`,
		templateID, number), withArchive)
}

// TemplateVersionByID returns a template version, with its archive if
// withArchive.
func (s *Store) TemplateVersionByID(ctx context.Context, id int64, withArchive bool) (TemplateVersion, error) {
	cols := versionCols
	if withArchive {
		cols = versionColsArchive
	}
	return scanVersion(s.db.QueryRowContext(ctx, `SELECT `+cols+versionFrom+` WHERE v.id = ?`, id), withArchive)
}
