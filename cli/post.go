package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/go-aleph/go-aleph/cli/output"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// maxContentInput bounds content read from a file or stdin (the node's limit for
// an unauthenticated upload).
const maxContentInput = 25 << 20

// writeFlags are the options of every write command.
type writeFlags struct {
	channel string
	address string
	sync    bool
}

func (w *writeFlags) add(f *pflag.FlagSet) {
	f.StringVar(&w.channel, "channel", "", "message channel")
	f.StringVar(&w.address, "address", "", "act for this address (needs its authorization; default: the account's address)")
	f.BoolVar(&w.sync, "sync", true, "wait for the node to process the message (--sync=false returns once it is queued)")
}

func (w *writeFlags) options() client.WriteOptions {
	return client.WriteOptions{Channel: w.channel, Address: w.address, Sync: w.sync}
}

// readContent returns the JSON given by --content or read from --file ("-" is stdin).
func (a *app) readContent(content, file string) (json.RawMessage, error) {
	if (content == "") == (file == "") {
		return nil, errors.New("give exactly one of --content and --file")
	}
	data := []byte(content)
	src := "--content"
	if file != "" {
		var r io.Reader
		if file == "-" {
			r, src = a.env.Stdin, "stdin"
		} else {
			f, err := os.Open(file)
			if err != nil {
				return nil, fmt.Errorf("read --file: %w", err)
			}
			defer f.Close()
			r, src = f, file
		}
		var err error
		data, err = io.ReadAll(io.LimitReader(r, maxContentInput+1))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", src, err)
		}
		if len(data) > maxContentInput {
			return nil, fmt.Errorf("%s is larger than %d bytes", src, maxContentInput)
		}
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", src, err)
	}
	return json.RawMessage(data), nil
}

func (a *app) postCmd() *cobra.Command {
	return group("post", "Create, amend and read posts",
		a.postCreateCmd(), a.postAmendCmd(), a.postGetCmd(), a.postListCmd())
}

func (a *app) postCreateCmd() *cobra.Command {
	var postType, content, file, ref string
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Publish a post (content as JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := a.readContent(content, file)
			if err != nil {
				return err
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			w, err := c.CreatePost(cmd.Context(), postType, raw, ref, wf.options())
			if err != nil {
				return err
			}
			return a.printWritten(w)
		},
	}
	f := cmd.Flags()
	f.StringVar(&postType, "type", "test", "post type")
	f.StringVar(&content, "content", "", "post content as JSON")
	f.StringVar(&file, "file", "", "read the content from a JSON file (- for stdin)")
	f.StringVar(&ref, "ref", "", "reference to another message (or any string)")
	wf.add(f)
	return cmd
}

func (a *app) postAmendCmd() *cobra.Command {
	var content, file string
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "amend HASH",
		Short: "Replace the content of a post",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !message.IsItemHash(args[0]) {
				return fmt.Errorf("%q is not an item hash", args[0])
			}
			raw, err := a.readContent(content, file)
			if err != nil {
				return err
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			w, err := c.AmendPost(cmd.Context(), args[0], raw, wf.options())
			if err != nil {
				return err
			}
			return a.printWritten(w)
		},
	}
	f := cmd.Flags()
	f.StringVar(&content, "content", "", "new content as JSON")
	f.StringVar(&file, "file", "", "read the new content from a JSON file (- for stdin)")
	wf.add(f)
	return cmd
}

func (a *app) postGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get HASH",
		Short: "Show a post (with its latest amend) by its original hash",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !message.IsItemHash(args[0]) {
				return fmt.Errorf("%q is not an item hash", args[0])
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.GetPost(cmd.Context(), args[0])
			if errors.Is(err, client.ErrNotFound) {
				return fmt.Errorf("no post %s", args[0])
			}
			if err != nil {
				return err
			}
			if a.json {
				return output.RawJSON(a.out(), p.Raw)
			}
			if err := fieldsOut(a.out(), [][2]string{
				{"original hash", p.OriginalItemHash},
				{"latest hash", p.ItemHash},
				{"type", p.OriginalType},
				{"amended", fmt.Sprint(p.ItemHash != p.OriginalItemHash && p.OriginalItemHash != "")},
				{"owner", p.Address},
				{"sender", p.Sender},
				{"chain", p.Chain},
				{"channel", p.Channel},
				{"ref", string(p.Ref)},
				{"time", output.Time(p.Time.Time)},
			}); err != nil {
				return err
			}
			return block(a.out(), "content", p.Content)
		},
	}
}

// listFlags are the page flags of list commands.
type listFlags struct {
	page       int
	pagination int
	sortOrder  string
}

func (l *listFlags) add(f *pflag.FlagSet, defaultSize int) {
	f.IntVar(&l.page, "page", 1, "page number, from 1")
	f.IntVar(&l.pagination, "pagination", defaultSize, "items per page (0: all, where the node allows it)")
	f.StringVar(&l.sortOrder, "sort-order", "", "asc or desc (default: the node's, newest first)")
}

func (l *listFlags) pageOf() (client.Page, error) {
	if l.page < 1 {
		return client.Page{}, fmt.Errorf("invalid --page %d: pages start at 1", l.page)
	}
	if l.pagination < 0 {
		return client.Page{}, fmt.Errorf("invalid --pagination %d", l.pagination)
	}
	p := client.Page{Number: l.page, Size: l.pagination}
	if l.pagination == 0 {
		p.Size = client.NoLimit
	}
	return p, nil
}

func (a *app) postListCmd() *cobra.Command {
	var types, addresses, channels, refs, tags, hashes, chains []string
	var start, end, sortBy string
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List posts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := client.PostFilter{
				Types: splitList(types), Addresses: splitList(addresses), Channels: splitList(channels),
				Refs: splitList(refs), Tags: splitList(tags), Hashes: splitList(hashes), SortBy: sortBy,
			}
			var err error
			if f.Chains, err = parseChains(chains); err != nil {
				return err
			}
			if f.StartDate, err = parseDate("start-date", start); err != nil {
				return err
			}
			if f.EndDate, err = parseDate("end-date", end); err != nil {
				return err
			}
			if f.SortOrder, err = parseSortOrder(lf.sortOrder); err != nil {
				return err
			}
			p, err := lf.pageOf()
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.GetPosts(cmd.Context(), f, p)
			if err != nil {
				return err
			}
			if a.json {
				return output.RawJSON(a.out(), list.Raw)
			}
			t := output.NewTable("HASH", "TYPE", "OWNER", "CHANNEL", "UPDATED", "CONTENT")
			for _, p := range list.Posts {
				h := p.OriginalItemHash
				if h == "" {
					h = p.ItemHash
				}
				typ := p.OriginalType
				if typ == "" {
					typ = p.Type
				}
				t.Row(h, typ, p.Address, p.Channel, output.Time(p.Time.Time), output.Truncate(compactJSON(p.Content), 50))
			}
			if err := t.Write(a.out()); err != nil {
				return err
			}
			return pageLine(a.out(), list.Pagination, len(list.Posts))
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&types, "types", nil, "post types (comma-separated)")
	fl.StringSliceVar(&addresses, "addresses", nil, "owner addresses")
	fl.StringSliceVar(&channels, "channels", nil, "channels")
	fl.StringSliceVar(&refs, "refs", nil, "refs")
	fl.StringSliceVar(&tags, "tags", nil, "tags")
	fl.StringSliceVar(&hashes, "hashes", nil, "original post hashes")
	fl.StringSliceVar(&chains, "chains", nil, "chains")
	fl.StringVar(&start, "start-date", "", "only posts updated at or after this date (unix seconds, YYYY-MM-DD or RFC 3339)")
	fl.StringVar(&end, "end-date", "", "only posts updated before this date")
	fl.StringVar(&sortBy, "sort-by", "", "time or tx-time")
	lf.add(fl, 20)
	return cmd
}

// hashArgs checks that every argument is an item hash.
func hashArgs(args []string) error {
	for _, h := range args {
		if !message.IsItemHash(h) {
			return fmt.Errorf("%q is not an item hash", strings.TrimSpace(h))
		}
	}
	return nil
}
