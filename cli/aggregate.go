package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/cli/output"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// securityKey is the aggregate key that holds delegations; it is written only by
// `aleph authorizations`.
const securityKey = "security"

func (a *app) aggregateCmd() *cobra.Command {
	return group("aggregate", "Write, read and forget aggregates (per-address key-value documents)",
		a.aggregateCreateCmd(), a.aggregateGetCmd(), a.aggregateListCmd(), a.aggregateForgetCmd())
}

func (a *app) aggregateCreateCmd() *cobra.Command {
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "create KEY CONTENT",
		Short: "Merge a JSON object into the aggregate KEY (top-level keys replace the old ones)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, content := args[0], []byte(args[1])
			if key == securityKey {
				return errors.New(`the "security" aggregate holds delegations: use aleph authorizations`)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(content, &obj); err != nil || obj == nil {
				return errors.New("CONTENT must be a JSON object")
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			w, err := c.CreateAggregate(cmd.Context(), key, json.RawMessage(content), wf.options())
			if err != nil {
				return err
			}
			return a.printWritten(w)
		},
	}
	wf.add(cmd.Flags())
	return cmd
}

func (a *app) aggregateGetCmd() *cobra.Command {
	var withInfo bool
	cmd := &cobra.Command{
		Use:   "get ADDRESS [KEY...]",
		Short: "Show an address's aggregates (all keys, or the given ones)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			address, keys := args[0], args[1:]
			aggs, err := c.GetAggregates(cmd.Context(), address, client.AggregateQuery{Keys: keys, WithInfo: withInfo})
			if errors.Is(err, client.ErrNotFound) {
				if len(keys) > 0 {
					return fmt.Errorf("%s has no aggregate %s", address, strings.Join(keys, ", "))
				}
				return fmt.Errorf("no aggregates for %s", address)
			}
			if err != nil {
				return err
			}
			for _, k := range keys {
				if v, ok := aggs.Data[k]; !ok || string(bytes.TrimSpace(v)) == "null" {
					return fmt.Errorf("%s has no aggregate %q", address, k)
				}
			}
			if a.json {
				return output.RawJSON(a.out(), aggs.Raw)
			}
			names := make([]string, 0, len(aggs.Data))
			for k := range aggs.Data {
				names = append(names, k)
			}
			slices.Sort(names)
			for i, k := range names {
				if i > 0 {
					fmt.Fprintln(a.out())
				}
				label := output.Sanitize(k)
				if info, ok := aggs.Info[k]; ok {
					label += fmt.Sprintf(" (created %s, updated %s)", output.Time(info.Created.Time), output.Time(info.LastUpdated.Time))
				}
				if err := block(a.out(), label, aggs.Data[k]); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&withInfo, "with-info", false, "also show each key's creation and update times")
	return cmd
}

func (a *app) aggregateListCmd() *cobra.Command {
	var owners, keys []string
	var sortBy string
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list [ADDRESS]",
		Short: "List aggregates, of one address or filtered by --owners and --keys",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := client.AggregateFilter{Addresses: splitList(owners), Keys: splitList(keys), SortBy: sortBy}
			if len(args) == 1 {
				f.Addresses = append(f.Addresses, args[0])
			}
			var err error
			if f.SortOrder, err = parseSortOrder(lf.sortOrder); err != nil {
				return err
			}
			p, err := lf.pageOf()
			if err != nil {
				return err
			}
			if p.Size == client.NoLimit || p.Size > 500 {
				return errors.New("invalid --pagination: aggregates are listed 1 to 500 per page")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.ListAggregates(cmd.Context(), f, p)
			if err != nil {
				return err
			}
			if a.json {
				return output.RawJSON(a.out(), list.Raw)
			}
			t := output.NewTable("ADDRESS", "KEY", "CREATED", "UPDATED", "CONTENT")
			for _, e := range list.Aggregates {
				t.Row(e.Address, e.Key, output.Time(e.Created.Time), output.Time(e.LastUpdated.Time), output.Truncate(compactJSON(e.Content), 50))
			}
			if err := t.Write(a.out()); err != nil {
				return err
			}
			return pageLine(a.out(), list.Pagination, len(list.Aggregates))
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&owners, "owners", nil, "owner addresses (comma-separated)")
	fl.StringSliceVar(&keys, "keys", nil, "aggregate keys (comma-separated)")
	fl.StringVar(&sortBy, "sort-by", "", "last_modified or creation_time")
	lf.add(fl, 20)
	return cmd
}

func (a *app) aggregateForgetCmd() *cobra.Command {
	var reason string
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "forget KEY...",
		Short: "Forget whole aggregates (a FORGET listing the keys)",
		Long: "Forget whole aggregates with a FORGET message listing their keys. aleph-message validates those\n" +
			"keys as item hashes, so only hash-shaped keys can be forgotten; for other keys, overwrite their\n" +
			"subkeys with null using aleph aggregate create.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, k := range args {
				if !message.IsItemHash(k) {
					return fmt.Errorf("aggregate key %q cannot be forgotten: FORGET messages list aggregate keys as item hashes "+
						"(aleph-message validates them so, and every node would reject this one); overwrite its subkeys with null instead", k)
				}
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			w, err := c.Forget(cmd.Context(), client.ForgetTargets{Aggregates: args, Reason: reason}, wf.options())
			if err != nil {
				return err
			}
			return a.printWritten(w)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the aggregates are forgotten")
	wf.add(cmd.Flags())
	return cmd
}
