package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/provision"
	"github.com/devmesh/devmesh/provision/param"
)

func newTemplatesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "templates",
		Aliases: []string{"template"},
		Short:   "Push, list, pull, archive and delete workspace templates (Terraform)",
	}
	cmd.AddCommand(newTemplatesPushCmd(), newTemplatesListCmd(), newTemplatesVersionsCmd(), newTemplatesPullCmd(),
		newTemplatesRemoveCmd("archive", "Archive a template no workspace uses: hidden from the list, no new workspaces until its next push",
			(*client.Client).ArchiveTemplate, "Archived"),
		newTemplatesRemoveCmd("delete", "Delete a template no workspace uses, with all its versions",
			(*client.Client).DeleteTemplate, "Deleted"))
	cmd.AddCommand(newTemplatesEditCmd())
	return cmd
}

func newTemplatesPushCmd() *cobra.Command {
	var dir, message, output string
	cmd := &cobra.Command{
		Use:   "push NAME -d DIR",
		Short: "Upload a template directory as a new, active version",
		Long: `Upload the Terraform files in DIR as a new version of template NAME and
make it the active version (new workspaces use it). Creating a template
needs the admin role; pushing to one, the admin role or being its creator.

The coordinator checks the archive (size, no paths or links leaving the
directory) and runs terraform init and validate on it before storing
anything: a template with an error is refused with terraform's message.
.terraform/, .git/ and state files in DIR are left out.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if dir == "" {
				return errors.New("say which directory to push with -d DIR")
			}
			archive, err := provision.Pack(dir, provision.DefaultMaxArchiveBytes)
			if err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Uploading %s (%d bytes); the coordinator validates it with terraform...\n", dir, len(archive))
			v, err := c.PushTemplate(cmd.Context(), args[0], archive, message)
			if err != nil {
				return err
			}
			for _, warning := range v.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "Warning: %s\n", warning)
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), v)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Template %s version %d is now active.\n", v.Template, v.Version)
			if err := writeParameters(w, v.Parameters); err != nil {
				return err
			}
			return writeVariables(w, v.Variables)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&dir, "directory", "d", "", "the template directory")
	f.StringVarP(&message, "message", "m", "", "what changed in this version")
	addOutputFlag(cmd, &output)
	return cmd
}

// writeVariables lists a template's variables.
func writeVariables(w io.Writer, vars []client.TemplateVariable) error {
	if len(vars) == 0 {
		_, err := fmt.Fprintln(w, "It has no variables.")
		return err
	}
	fmt.Fprintln(w, "Variables (set with devmesh create WS --template NAME --var K=V):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tDEFAULT\tDESCRIPTION")
	for _, v := range vars {
		def := string(v.Default)
		switch {
		case v.Required:
			def = "(required)"
		case v.Sensitive:
			def = "(sensitive)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", v.Name, v.Type, def, v.Description)
	}
	return tw.Flush()
}

func newTemplatesListCmd() *cobra.Command {
	return newListSubcmd(listSpec[client.Template]{
		short:  "List templates",
		header: "NAME\tACTIVE VERSION\tCREATED BY\tUPDATED",
		fetch:  (*client.Client).ListTemplates,
		row: func(t client.Template) string {
			return fmt.Sprintf("%s\tv%d\t%s\t%s", t.Name, t.ActiveVersion, t.CreatedBy, formatTime(t.UpdatedAt))
		},
	})
}

func newTemplatesVersionsCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "versions NAME",
		Short: "List a template's versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			list, err := c.TemplateVersions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), output, list, "VERSION\tACTIVE\tPUSHED BY\tPUSHED\tPARAMETERS\tVARIABLES\tMESSAGE",
				func(v client.TemplateVersion) string {
					active := ""
					if v.Active {
						active = "active"
					}
					names := make([]string, 0, len(v.Variables))
					for _, x := range v.Variables {
						names = append(names, x.Name)
					}
					params := make([]string, 0, len(v.Parameters))
					for _, p := range v.Parameters {
						params = append(params, p.Name)
					}
					return fmt.Sprintf("v%d\t%s\t%s\t%s\t%s\t%s\t%s", v.Version, active, v.CreatedBy, formatTime(v.CreatedAt),
						orDash(strings.Join(params, ",")), orDash(strings.Join(names, ",")), v.Message)
				})
		},
	}
	addOutputFlag(cmd, &output)
	cmd.AddCommand(newTemplatesActivateCmd())
	return cmd
}

func newTemplatesActivateCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "activate NAME VERSION",
		Short: "Make a version of a template the active one (new workspaces and updates use it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			n, err := strconv.Atoi(strings.TrimPrefix(args[1], "v"))
			if err != nil || n <= 0 {
				return fmt.Errorf("invalid version %q: want a version number such as 3 (see `devmesh templates versions %s`)", args[1], args[0])
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			v, err := c.ActivateTemplateVersion(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), v)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Template %s version %d is now active; `devmesh update WS` moves a workspace to it.\n", v.Template, v.Version)
			return err
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// newTemplatesRemoveCmd returns `templates archive|delete NAME`.
func newTemplatesRemoveCmd(use, short string, do func(*client.Client, context.Context, string) error, done string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Long: short + `.

Refused while workspaces use the template: delete them first (admins see
every workspace with ` + "`devmesh list --all`" + `).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			if err := do(c, cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s template %s.\n", done, args[0])
			return err
		},
	}
}

// writeParameters lists a template's parameters.
func writeParameters(w io.Writer, params []param.Parameter) error {
	if len(params) == 0 {
		return nil
	}
	fmt.Fprintln(w, "Parameters (set with devmesh create WS --template NAME --param K=V):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tDEFAULT\tMUTABLE\tDESCRIPTION")
	for _, p := range params {
		def := "(required)"
		if p.Default != nil {
			def = strconv.Quote(*p.Default)
		}
		mutable := "no"
		if p.Mutable {
			mutable = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, def, mutable, p.Description)
	}
	return tw.Flush()
}

func newTemplatesPullCmd() *cobra.Command {
	var (
		dir     string
		version int
	)
	cmd := &cobra.Command{
		Use:   "pull NAME -d DIR",
		Short: "Download a template version into a new directory",
		Long: `Download the active version of template NAME (or --version N) into DIR,
which must not exist or be empty. Needs the admin role or being the
template's creator.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return errors.New("say where to put the template with -d DIR")
			}
			if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
				return fmt.Errorf("%s is not empty: pull into a new directory", dir)
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			archive, err := c.TemplateArchive(cmd.Context(), args[0], version)
			if err != nil {
				return err
			}
			if err := provision.Extract(archive, dir); err != nil {
				return err
			}
			which := "the active version"
			if version > 0 {
				which = fmt.Sprintf("version %d", version)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s of template %s to %s.\n", which, args[0], dir)
			return err
		},
	}
	cmd.Flags().StringVarP(&dir, "directory", "d", "", "where to write the template")
	cmd.Flags().IntVar(&version, "version", 0, "the version to pull (default: the active one)")
	return cmd
}
