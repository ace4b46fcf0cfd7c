package main

import (
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
)

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the tenant, principal, role and permissions of the API key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exports, _, err := a.clients()
			if err != nil {
				return err
			}
			res, err := exports.WhoAmI(cmd.Context(), connect.NewRequest(&auditv1.WhoAmIRequest{}))
			if err != nil {
				return err
			}
			m := res.Msg
			if a.output == "json" {
				return a.printJSON(m)
			}
			return a.table([]string{"TENANT", "PRINCIPAL", "ROLE", "PERMISSIONS", "ADD-ONS"}, [][]string{{
				m.GetTenantName() + " (" + m.GetTenantId() + ")", m.GetPrincipal(), m.GetRole(),
				strings.Join(m.GetPermissions(), ","), strings.Join(m.GetAddOns(), ","),
			}})
		},
	}
}
