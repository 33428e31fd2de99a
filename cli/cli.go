// Package cli is the `aleph` command line: accounts kept in a local keystore,
// posts, aggregates, messages (including a live watch), delegations through
// the security aggregate, and files (upload with optional client-side
// encryption, resumable download, list, info, pin, forget), all over the
// client package.
//
// Every command takes --json for machine output; without it, output is a readable
// table or list of fields. The JSON shapes are:
//
//   - read commands (message get/list/status, post get/list, aggregate get/list,
//     authorizations list): the node's answer exactly as received, re-indented
//     (authorizations list prints the list of entries);
//   - message watch: one compact message object per line, as the node sent it;
//   - write commands: {"item_hash", "status", "http_status", "message", "content"}
//     where message is the signed envelope and content the parsed content;
//     file upload adds "file_hash", "engine", "size" and "encrypted";
//   - file download: {"file_hash", "path", "size", "written", "resumed",
//     "verified", "decrypted"}; file info: {"file_hash", "type", "size",
//     "download_url", "pin_count"} and, for a message hash, "message_hash",
//     "owner", "ref"; file list: the node's answer; file key: {"account",
//     "chain", "address", "recipient"} and with --secret "identity";
//   - account commands: account objects {"name", "chain", "address", "created",
//     "default", "path"}, and for export also "private_key".
//
// Exit status: 0 on success, 1 on any error, with one line on stderr naming the
// problem.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/cli/keystore"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// Environment variables.
const (
	EnvAPIURL  = "ALEPH_API_URL"
	EnvAccount = "ALEPH_ACCOUNT"
)

// DefaultAPIURL is the node the CLI talks to without --api-url or ALEPH_API_URL:
// a local `alephd dev`.
const DefaultAPIURL = "http://127.0.0.1:4024"

// Env is what the CLI reads and writes besides the network and the keystore.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads an environment variable.
	Getenv func(string) string
	// Now is the clock that stamps messages and new accounts; nil means time.Now.
	Now func() time.Time
	// Version is the CLI's version, printed by `aleph version`.
	Version string
}

// Main runs the CLI with args (without the program name) and returns the exit status.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	root := NewRootCmd(&env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	if cmd, err := root.ExecuteContextC(ctx); err != nil {
		prefix := "aleph"
		if cmd != nil && cmd != root {
			prefix = cmd.CommandPath()
		}
		fmt.Fprintln(env.Stderr, prefix+": "+oneLine(err.Error()))
		return 1
	}
	return 0
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// app holds the global flags and builds what commands need.
type app struct {
	env     *Env
	apiURL  string
	account string
	json    bool
	timeout time.Duration
}

// NewRootCmd builds the command tree.
func NewRootCmd(env *Env) *cobra.Command {
	a := &app{env: env}
	root := &cobra.Command{
		Use:           "aleph",
		Short:         "Command line for Aleph core channel nodes",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	apiDefault := env.Getenv(EnvAPIURL)
	if apiDefault == "" {
		apiDefault = DefaultAPIURL
	}
	pf.StringVar(&a.apiURL, "api-url", apiDefault, "node API URL (env "+EnvAPIURL+")")
	pf.StringVar(&a.account, "account", env.Getenv(EnvAccount), "account name (default: the default account; env "+EnvAccount+")")
	pf.BoolVar(&a.json, "json", false, "print machine-readable JSON")
	pf.DurationVar(&a.timeout, "timeout", client.DefaultTimeout, "timeout of each HTTP request")
	root.AddCommand(
		a.accountCmd(),
		a.postCmd(),
		a.aggregateCmd(),
		a.messageCmd(),
		a.authorizationsCmd(),
		a.fileCmd(),
		a.versionCmd(),
		a.programCmd(),
	)
	return root
}

// group makes a command that only holds subcommands: run bare or with an unknown
// subcommand, it is an error.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names := make([]string, 0, len(cmd.Commands()))
			for _, s := range cmd.Commands() {
				names = append(names, s.Name())
			}
			if len(args) == 0 {
				return fmt.Errorf("missing subcommand (one of: %s)", strings.Join(names, ", "))
			}
			return fmt.Errorf("unknown subcommand %q (one of: %s)", args[0], strings.Join(names, ", "))
		},
	}
	c.AddCommand(subs...)
	return c
}

func (a *app) out() io.Writer { return a.env.Stdout }

// keystore opens the account store.
func (a *app) keystore() (*keystore.Store, error) {
	dir, err := keystore.DefaultDir(a.env.Getenv)
	if err != nil {
		return nil, err
	}
	return &keystore.Store{Dir: dir, Now: a.env.Now}, nil
}

// checkAPIURL validates --api-url.
func checkAPIURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid --api-url %q: want http(s)://host[:port]", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// client returns a client without a signer.
func (a *app) client() (*client.Client, error) {
	base, err := checkAPIURL(a.apiURL)
	if err != nil {
		return nil, err
	}
	if a.timeout <= 0 {
		return nil, errors.New("--timeout must be positive")
	}
	return client.New(base,
		client.WithHTTPClient(&http.Client{Timeout: a.timeout}),
		client.WithClock(a.env.Now),
		client.WithUserAgent("aleph-cli/"+a.version()),
	), nil
}

// signingClient returns a client that signs with the selected account.
func (a *app) signingClient() (*client.Client, *keystore.Account, error) {
	ks, err := a.keystore()
	if err != nil {
		return nil, nil, err
	}
	sig, acc, err := ks.Signer(a.account)
	if err != nil {
		if errors.Is(err, keystore.ErrNoDefault) {
			return nil, nil, errors.New("no account: create one with `aleph account create` or import one with `aleph account import`")
		}
		return nil, nil, err
	}
	base, err := checkAPIURL(a.apiURL)
	if err != nil {
		return nil, nil, err
	}
	if a.timeout <= 0 {
		return nil, nil, errors.New("--timeout must be positive")
	}
	c := client.New(base,
		client.WithHTTPClient(&http.Client{Timeout: a.timeout}),
		client.WithSigner(sig),
		client.WithClock(a.env.Now),
		client.WithUserAgent("aleph-cli/"+a.version()),
	)
	return c, acc, nil
}

func (a *app) version() string {
	if a.env.Version == "" {
		return "dev"
	}
	return a.env.Version
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version and the node's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			nodeVersion, err := c.Version(cmd.Context())
			if err != nil {
				return fmt.Errorf("node version: %w", err)
			}
			if a.json {
				return jsonOut(a.out(), map[string]string{"cli": a.version(), "node": nodeVersion, "api_url": c.BaseURL()})
			}
			return fieldsOut(a.out(), [][2]string{{"cli", a.version()}, {"node", nodeVersion}, {"api url", c.BaseURL()}})
		},
	}
}

// splitList splits comma-separated flag values and drops empty parts.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// parseTypes reads message types, case-insensitively.
func parseTypes(vals []string) ([]message.Type, error) {
	var out []message.Type
	for _, v := range splitList(vals) {
		t := message.Type(strings.ToUpper(v))
		if !t.Known() {
			return nil, fmt.Errorf("unknown message type %q (want POST, AGGREGATE, STORE, PROGRAM, INSTANCE or FORGET)", v)
		}
		out = append(out, t)
	}
	return out, nil
}

func parseChains(vals []string) ([]message.Chain, error) {
	var out []message.Chain
	for _, v := range splitList(vals) {
		c := message.Chain(strings.ToUpper(v))
		if !c.Known() {
			return nil, fmt.Errorf("unknown chain %q", v)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseStatuses(vals []string) ([]message.Status, error) {
	var out []message.Status
	for _, v := range splitList(vals) {
		s := message.Status(strings.ToLower(v))
		known := false
		for _, k := range message.Statuses {
			known = known || k == s
		}
		if !known {
			return nil, fmt.Errorf("unknown message status %q", v)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseDate reads a date flag: unix seconds (a float) or RFC 3339 / YYYY-MM-DD.
func parseDate(flag, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if isNumber(s) {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1e12 {
			return time.UnixMilli(int64(math.Round(f * 1000))).UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid --%s %q: want unix seconds, YYYY-MM-DD or RFC 3339", flag, s)
}

func isNumber(s string) bool {
	dot := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return s != "" && s != "."
}

func parseSortOrder(s string) (client.SortOrder, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return 0, nil
	case "-1", "desc", "descending":
		return client.Descending, nil
	case "1", "asc", "ascending":
		return client.Ascending, nil
	}
	return 0, fmt.Errorf("invalid --sort-order %q: want asc or desc", s)
}
