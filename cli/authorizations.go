package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/cli/output"
	"github.com/go-aleph/go-aleph/client"
)

func (a *app) authorizationsCmd() *cobra.Command {
	return group("authorizations", "Delegate rights to other addresses through the security aggregate",
		a.authAddCmd(), a.authListCmd(), a.authRevokeCmd())
}

// sameAddress compares addresses as the node does: case-insensitively.
func sameAddress(x, y string) bool { return strings.EqualFold(x, y) }

func (a *app) authAddCmd() *cobra.Command {
	var chainName string
	var channels, types, postTypes, aggKeys []string
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "add DELEGATE",
		Short: "Let DELEGATE send messages for the account (restricted by the flags)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			entry := client.Authorization{
				Address: strings.TrimSpace(args[0]), Channels: splitList(channels),
				PostTypes: splitList(postTypes), AggregateKeys: splitList(aggKeys),
			}
			if chainName != "" {
				cs, err := parseChains([]string{chainName})
				if err != nil {
					return err
				}
				entry.Chain = cs[0]
			}
			var err error
			if entry.Types, err = parseTypes(types); err != nil {
				return err
			}
			if err := entry.Validate(); err != nil {
				return err
			}
			c, acc, err := a.signingClient()
			if err != nil {
				return err
			}
			owner := ownerOf(acc.Address, wf.address)
			if sameAddress(entry.Address, owner) {
				return errors.New("an address needs no authorization to act for itself")
			}
			list, err := c.Authorizations(cmd.Context(), owner)
			if err != nil {
				return err
			}
			want, _ := entry.MarshalJSON()
			for _, e := range list {
				got, _ := e.MarshalJSON()
				if bytes.Equal(canonical(got), canonical(want)) {
					return fmt.Errorf("%s already has this authorization", entry.Address)
				}
			}
			list = append(list, entry)
			w, err := c.SetAuthorizations(cmd.Context(), list, wf.options())
			if err != nil {
				return err
			}
			return a.printWritten(w)
		},
	}
	f := cmd.Flags()
	f.StringVar(&chainName, "chain", "", "only messages signed on this chain")
	f.StringSliceVar(&channels, "channels", nil, "only these channels (comma-separated)")
	f.StringSliceVar(&types, "types", nil, "only these message types")
	f.StringSliceVar(&postTypes, "post-types", nil, "only these post types (needs POST in --types, or no --types)")
	f.StringSliceVar(&aggKeys, "aggregate-keys", nil, "only these aggregate keys (needs AGGREGATE in --types, or no --types)")
	wf.add(f)
	return cmd
}

// canonical re-encodes JSON with sorted keys, to compare entries.
func canonical(raw []byte) []byte {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

func ownerOf(account, address string) string {
	if address != "" {
		return address
	}
	return account
}

func (a *app) authListCmd() *cobra.Command {
	var address, delegate string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the delegations an address granted (default: the account's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			owner := address
			if owner == "" {
				ks, err := a.keystore()
				if err != nil {
					return err
				}
				acc, err := ks.Get(a.account)
				if err != nil {
					return noAccountHint(err)
				}
				owner = acc.Address
			}
			list, err := c.Authorizations(cmd.Context(), owner)
			if err != nil {
				return err
			}
			if delegate != "" {
				kept := list[:0]
				for _, e := range list {
					if sameAddress(e.Address, delegate) {
						kept = append(kept, e)
					}
				}
				list = kept
			}
			if a.json {
				return jsonOut(a.out(), list)
			}
			if len(list) == 0 {
				_, err := fmt.Fprintf(a.out(), "%s has granted no authorizations\n", output.Sanitize(owner))
				return err
			}
			t := output.NewTable("DELEGATE", "CHAIN", "CHANNELS", "TYPES", "POST TYPES", "AGGREGATE KEYS")
			for _, e := range list {
				ts := make([]string, len(e.Types))
				for i, x := range e.Types {
					ts[i] = string(x)
				}
				t.Row(e.Address, string(e.Chain), orAll(e.Channels), orAll(ts), orAll(e.PostTypes), orAll(e.AggregateKeys))
			}
			return t.Write(a.out())
		},
	}
	cmd.Flags().StringVar(&address, "address", "", "the granting address (default: the account's)")
	cmd.Flags().StringVar(&delegate, "delegate", "", "only this delegate's entries")
	return cmd
}

func orAll(v []string) string {
	if len(v) == 0 {
		return "(all)"
	}
	return strings.Join(v, ",")
}

func (a *app) authRevokeCmd() *cobra.Command {
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "revoke DELEGATE",
		Short: "Remove every authorization of DELEGATE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			delegate := strings.TrimSpace(args[0])
			c, acc, err := a.signingClient()
			if err != nil {
				return err
			}
			owner := ownerOf(acc.Address, wf.address)
			list, err := c.Authorizations(cmd.Context(), owner)
			if err != nil {
				return err
			}
			kept := make([]client.Authorization, 0, len(list))
			for _, e := range list {
				if !sameAddress(e.Address, delegate) {
					kept = append(kept, e)
				}
			}
			if len(kept) == len(list) {
				return fmt.Errorf("%s has no authorization from %s", delegate, owner)
			}
			w, err := c.SetAuthorizations(cmd.Context(), kept, wf.options())
			if err != nil {
				return err
			}
			return a.printWritten(w)
		},
	}
	wf.add(cmd.Flags())
	return cmd
}
