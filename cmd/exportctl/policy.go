package main

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
)

func (a *app) policyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Ask about the tenant's export policies",
	}
	cmd.AddCommand(a.policyCheckCmd())
	return cmd
}

func (a *app) policyCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Dry run: would this key be allowed to create an export now?",
		Long: `Run CreateExport's checks for this API key without creating anything:
the Compliance Pack add-on, the tenant.audit.export permission and the
BUNDLE_EXPORT issuance policies, in that order, through the server's own code.
It prints allowed or denied, the check that decided and, when a policy did,
which one.

Exit 0 when allowed. When denied, the verdict is still printed and the exit
code is the one export create would give: 3 (permission_denied: role or
policy) or 5 (failed_precondition: add-on not enabled).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			policies, err := a.policyClient()
			if err != nil {
				return err
			}
			res, err := policies.CheckExport(cmd.Context(), connect.NewRequest(&auditv1.CheckExportRequest{}))
			if err != nil {
				return err
			}
			v := res.Msg
			if err := a.printCheck(v); err != nil {
				return err
			}
			if v.GetAllowed() {
				return nil
			}
			return denied(v)
		},
	}
}

func (a *app) printCheck(v *auditv1.CheckExportResponse) error {
	if a.output == "json" {
		return a.printJSON(v)
	}
	verdict := "denied"
	if v.GetAllowed() {
		verdict = "allowed"
	}
	rows := [][]string{{"export", verdict}, {"decided_by", v.GetCheck()}}
	if v.GetPolicyId() != "" {
		rows = append(rows, []string{"policy", v.GetPolicyName() + " (" + v.GetPolicyId() + ")"})
	}
	if v.GetReason() != "" {
		rows = append(rows, []string{"reason", v.GetReason()})
	}
	if v.GetCode() != "" {
		rows = append(rows, []string{"code", v.GetCode()})
	}
	return a.fields(rows)
}

// denied is a refused dry run as the error export create would meet, so the
// exit code is the same.
func denied(v *auditv1.CheckExportResponse) error {
	var code connect.Code
	if err := code.UnmarshalText([]byte(v.GetCode())); err != nil {
		code = connect.CodePermissionDenied
	}
	return &cliError{code: exitCode(connect.NewError(code, errors.New(v.GetReason()))),
		err: fmt.Errorf("an export would be denied by the %s check: %s", v.GetCheck(), v.GetReason())}
}
