package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/go-aleph/go-aleph/cli/output"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

func (a *app) messageCmd() *cobra.Command {
	return group("message", "Read, list, watch and forget messages",
		a.messageGetCmd(), a.messageListCmd(), a.messageWatchCmd(), a.messageStatusCmd(), a.messageForgetCmd())
}

// filterFlags are the message filters of list and watch.
type filterFlags struct {
	types, statuses, addresses, owners, refs, contentHashes, contentKeys, contentTypes []string
	chains, channels, tags, hashes, paymentTypes                                       []string
	start, end, sortBy, contentFormat                                                  string
	startBlock, endBlock                                                               int64
}

func (ff *filterFlags) add(f *pflag.FlagSet, withStatuses bool) {
	f.StringSliceVar(&ff.types, "types", nil, "message types: POST, AGGREGATE, STORE, PROGRAM, INSTANCE, FORGET (comma-separated)")
	if withStatuses {
		f.StringSliceVar(&ff.statuses, "statuses", nil, "statuses (default: processed, removing)")
	}
	f.StringSliceVar(&ff.addresses, "addresses", nil, "sender addresses")
	f.StringSliceVar(&ff.owners, "owners", nil, "owner addresses (content.address)")
	f.StringSliceVar(&ff.refs, "refs", nil, "refs")
	f.StringSliceVar(&ff.contentHashes, "content-hashes", nil, "STORE file hashes")
	f.StringSliceVar(&ff.contentKeys, "content-keys", nil, "AGGREGATE keys")
	f.StringSliceVar(&ff.contentTypes, "content-types", nil, "POST types")
	f.StringSliceVar(&ff.chains, "chains", nil, "chains")
	f.StringSliceVar(&ff.channels, "channels", nil, "channels")
	f.StringSliceVar(&ff.tags, "tags", nil, "tags")
	f.StringSliceVar(&ff.hashes, "hashes", nil, "item hashes")
	f.StringSliceVar(&ff.paymentTypes, "payment-types", nil, "payment types: hold, superfluid, credit")
	f.StringVar(&ff.start, "start-date", "", "only messages at or after this time (unix seconds, YYYY-MM-DD or RFC 3339)")
	f.StringVar(&ff.end, "end-date", "", "only messages before this time")
	f.Int64Var(&ff.startBlock, "start-block", 0, "only messages first confirmed at or after this block")
	f.Int64Var(&ff.endBlock, "end-block", 0, "only messages first confirmed before this block")
	f.StringVar(&ff.contentFormat, "content-format", "", "full, headers or none")
}

func (ff *filterFlags) filter() (client.MessageFilter, error) {
	f := client.MessageFilter{
		Addresses: splitList(ff.addresses), Owners: splitList(ff.owners), Refs: splitList(ff.refs),
		ContentHashes: splitList(ff.contentHashes), ContentKeys: splitList(ff.contentKeys),
		ContentTypes: splitList(ff.contentTypes), Channels: splitList(ff.channels), Tags: splitList(ff.tags),
		Hashes: splitList(ff.hashes), PaymentTypes: splitList(ff.paymentTypes),
		StartBlock: ff.startBlock, EndBlock: ff.endBlock, SortBy: ff.sortBy,
	}
	var err error
	if f.Types, err = parseTypes(ff.types); err != nil {
		return f, err
	}
	if f.Statuses, err = parseStatuses(ff.statuses); err != nil {
		return f, err
	}
	if f.Chains, err = parseChains(ff.chains); err != nil {
		return f, err
	}
	if f.StartDate, err = parseDate("start-date", ff.start); err != nil {
		return f, err
	}
	if f.EndDate, err = parseDate("end-date", ff.end); err != nil {
		return f, err
	}
	if ff.startBlock < 0 || ff.endBlock < 0 {
		return f, errors.New("block heights must not be negative")
	}
	switch cf := client.ContentFormat(strings.ToLower(ff.contentFormat)); cf {
	case "", client.ContentFull, client.ContentHeaders, client.ContentNone:
		f.ContentFormat = cf
	default:
		return f, fmt.Errorf("invalid --content-format %q: want full, headers or none", ff.contentFormat)
	}
	return f, nil
}

func (a *app) messageGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get HASH",
		Short: "Show a message and its status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := hashArgs(args); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.GetMessage(cmd.Context(), args[0])
			if errors.Is(err, client.ErrNotFound) {
				return fmt.Errorf("no message %s on %s", args[0], c.BaseURL())
			}
			if err != nil {
				return err
			}
			if a.json {
				return output.RawJSON(a.out(), res.Raw)
			}
			return a.printMessageResult(res)
		},
	}
}

func (a *app) printMessageResult(res *client.MessageResult) error {
	pairs := [][2]string{
		{"status", string(res.Status)},
		{"item hash", res.ItemHash},
		{"reception time", output.Time(res.ReceptionTime)},
	}
	m := res.Message
	if m == nil && len(res.Pending) > 0 {
		m = res.Pending[0]
	}
	if m != nil {
		pairs = append(pairs,
			[2]string{"type", string(m.Type)},
			[2]string{"chain", string(m.Chain)},
			[2]string{"sender", m.Sender},
			[2]string{"channel", m.Channel},
			[2]string{"time", output.Time(m.Time.Std())},
			[2]string{"item type", string(m.ItemType)},
		)
	}
	switch res.Status {
	case message.StatusRejected:
		pairs = append(pairs, [2]string{"error", fmt.Sprintf("%d %s", int(res.ErrorCode), res.ErrorCode)})
		if len(res.Details) > 0 {
			pairs = append(pairs, [2]string{"details", compactJSON(res.Details)})
		}
	case message.StatusForgotten:
		pairs = append(pairs, [2]string{"forgotten by", strings.Join(res.ForgottenBy, ", ")})
	case message.StatusRemoving, message.StatusRemoved:
		pairs = append(pairs, [2]string{"reason", res.Reason})
		if !res.RemovedAt.IsZero() {
			pairs = append(pairs, [2]string{"removed at", output.Time(res.RemovedAt)})
		}
	case message.StatusPending:
		pairs = append(pairs, [2]string{"queued copies", fmt.Sprint(len(res.Pending))})
	}
	if err := fieldsOut(a.out(), pairs); err != nil {
		return err
	}
	if m != nil && m.Content != nil {
		return block(a.out(), "content", m.Content)
	}
	return nil
}

func (a *app) messageListCmd() *cobra.Command {
	var ff filterFlags
	var lf listFlags
	var cursor string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List messages",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter()
			if err != nil {
				return err
			}
			if f.SortOrder, err = parseSortOrder(lf.sortOrder); err != nil {
				return err
			}
			p, err := lf.pageOf()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("cursor") {
				p.Cursor = &cursor
				if p.Size == client.NoLimit || p.Size > 200 {
					return errors.New("invalid --pagination: cursor pages hold 1 to 200 messages")
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.ListMessages(cmd.Context(), f, p)
			if err != nil {
				return err
			}
			if a.json {
				return output.RawJSON(a.out(), list.Raw)
			}
			t := output.NewTable("HASH", "TYPE", "CHAIN", "SENDER", "CHANNEL", "TIME")
			for _, m := range list.Messages {
				t.Row(m.ItemHash, string(m.Type), string(m.Chain), m.Sender, m.Channel, output.Time(m.Time.Std()))
			}
			if err := t.Write(a.out()); err != nil {
				return err
			}
			return pageLine(a.out(), list.Pagination, len(list.Messages))
		},
	}
	fl := cmd.Flags()
	ff.add(fl, true)
	fl.StringVar(&ff.sortBy, "sort-by", "", "time or tx-time")
	fl.StringVar(&cursor, "cursor", "", "list in cursor mode from this cursor (\"\" for the first page)")
	lf.add(fl, 20)
	return cmd
}

func (a *app) messageWatchCmd() *cobra.Command {
	var ff filterFlags
	var history int
	var count int
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print matching messages as the node processes them, until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter()
			if err != nil {
				return err
			}
			if history < 0 || history > 199 {
				return fmt.Errorf("invalid --history %d: want 0 to 199", history)
			}
			if count < 0 {
				return fmt.Errorf("invalid --count %d", count)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			wf := client.WatchFilter{MessageFilter: f, History: &history}
			w, err := c.WatchMessages(ctx, wf)
			if err != nil {
				return err
			}
			defer w.Close()
			if !a.json {
				fmt.Fprintf(a.env.Stderr, "watching %s (Ctrl-C to stop)\n", c.BaseURL())
			}
			seen := 0
			for m, err := range w.Messages() {
				if err != nil {
					if errors.Is(err, context.Canceled) {
						return nil
					}
					return err
				}
				if a.json {
					if err := output.CompactJSON(a.out(), m.Raw); err != nil {
						return err
					}
				} else {
					line := fmt.Sprintf("%s  %-9s  %-4s  %s  %s  %s", output.Time(m.Time.Std()), m.Type, m.Chain, m.ItemHash, m.Sender, m.Channel)
					if _, err := fmt.Fprintln(a.out(), output.Sanitize(line)); err != nil {
						return err
					}
				}
				if seen++; count > 0 && seen >= count {
					return nil
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	ff.add(fl, false)
	fl.IntVar(&history, "history", 0, "first print up to this many stored matching messages (0 to 199)")
	fl.IntVar(&count, "count", 0, "stop after this many messages (0: never)")
	return cmd
}

func (a *app) messageStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status HASH",
		Short: "Show a message's status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := hashArgs(args); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.MessageStatus(cmd.Context(), args[0])
			if errors.Is(err, client.ErrNotFound) {
				return fmt.Errorf("no message %s on %s", args[0], c.BaseURL())
			}
			if err != nil {
				return err
			}
			if a.json {
				return output.RawJSON(a.out(), st.Raw)
			}
			return fieldsOut(a.out(), [][2]string{
				{"status", string(st.Status)},
				{"item hash", st.ItemHash},
				{"reception time", output.Time(st.ReceptionTime.Time)},
			})
		},
	}
}

func (a *app) messageForgetCmd() *cobra.Command {
	var reason string
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "forget HASH...",
		Short: "Forget messages (a FORGET listing their hashes)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := hashArgs(args); err != nil {
				return err
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			w, err := c.Forget(cmd.Context(), client.ForgetTargets{Hashes: args, Reason: reason}, wf.options())
			if err != nil {
				return err
			}
			return a.printWritten(w)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the messages are forgotten")
	wf.add(cmd.Flags())
	return cmd
}
