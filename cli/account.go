package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/cli/keystore"
	"github.com/go-aleph/go-aleph/cli/output"
	"github.com/go-aleph/go-aleph/message"
)

func (a *app) accountCmd() *cobra.Command {
	return group("account", "Manage local accounts (keys)",
		a.accountCreateCmd(), a.accountImportCmd(), a.accountListCmd(), a.accountShowCmd(),
		a.accountExportCmd(), a.accountDefaultCmd())
}

func (a *app) printAccount(acc *keystore.Account) error {
	if a.json {
		return jsonOut(a.out(), acc)
	}
	return fieldsOut(a.out(), [][2]string{
		{"name", acc.Name},
		{"chain", string(acc.Chain)},
		{"address", acc.Address},
		{"default", fmt.Sprint(acc.Default)},
		{"created", output.Time(acc.Created)},
		{"key file", acc.Path},
	})
}

// accountName picks --name, or a free name derived from the chain.
func accountName(ks *keystore.Store, name string, c message.Chain) (string, error) {
	if name != "" {
		return name, nil
	}
	return ks.FreeName(strings.ToLower(string(c)))
}

func (a *app) accountCreateCmd() *cobra.Command {
	var chainName, name string
	var makeDefault bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an account with a fresh key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := keystore.ParseChain(chainName)
			if err != nil {
				return err
			}
			ks, err := a.keystore()
			if err != nil {
				return err
			}
			if name, err = accountName(ks, name, c); err != nil {
				return err
			}
			acc, err := ks.Create(name, c, makeDefault)
			if err != nil {
				return fmt.Errorf("create account: %w", err)
			}
			return a.printAccount(acc)
		},
	}
	f := cmd.Flags()
	f.StringVar(&chainName, "chain", "ETH", "chain of the account: ETH or SOL")
	f.StringVar(&name, "name", "", "account name (default: the chain's name, made unique)")
	f.BoolVar(&makeDefault, "default", false, "make it the default account (the first account always is)")
	return cmd
}

// readSecret returns v, or a line read from stdin when v is "-".
func readSecret(stdin io.Reader, v, what string) (string, error) {
	if v != "-" {
		return v, nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("read %s from stdin: empty input", what)
	}
	return line, nil
}

func (a *app) accountImportCmd() *cobra.Command {
	var chainName, name, key, mnemonic, passphrase, path string
	var makeDefault bool
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Import an account from a private key or a mnemonic",
		Long: "Import an account. --private-key takes hex (ETH) or base58 (SOL, the Phantom export or a 32-byte seed);\n" +
			"--mnemonic takes a BIP-39 phrase (ETH only). Pass - to read the secret from stdin instead of the command line.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := keystore.ParseChain(chainName)
			if err != nil {
				return err
			}
			if (key == "") == (mnemonic == "") {
				return errors.New("import: give exactly one of --private-key and --mnemonic")
			}
			if mnemonic != "" && c != message.ChainETH {
				return fmt.Errorf("import: --mnemonic is for ETH accounts, not %s", c)
			}
			ks, err := a.keystore()
			if err != nil {
				return err
			}
			if name, err = accountName(ks, name, c); err != nil {
				return err
			}
			var acc *keystore.Account
			if key != "" {
				secret, err := readSecret(a.env.Stdin, key, "private key")
				if err != nil {
					return err
				}
				acc, err = ks.ImportKey(name, c, secret, makeDefault)
				if err != nil {
					return fmt.Errorf("import account: %w", err)
				}
			} else {
				phrase, err := readSecret(a.env.Stdin, mnemonic, "mnemonic")
				if err != nil {
					return err
				}
				acc, err = ks.ImportMnemonic(name, phrase, passphrase, path, makeDefault)
				if err != nil {
					return fmt.Errorf("import account: %w", err)
				}
			}
			return a.printAccount(acc)
		},
	}
	f := cmd.Flags()
	f.StringVar(&chainName, "chain", "ETH", "chain of the account: ETH or SOL")
	f.StringVar(&name, "name", "", "account name (default: the chain's name, made unique)")
	f.StringVar(&key, "private-key", "", "private key: hex for ETH, base58 for SOL; - reads it from stdin")
	f.StringVar(&mnemonic, "mnemonic", "", "BIP-39 mnemonic (ETH); - reads it from stdin")
	f.StringVar(&passphrase, "passphrase", "", "BIP-39 passphrase for --mnemonic")
	f.StringVar(&path, "derivation-path", "", "BIP-32 path for --mnemonic (default m/44'/60'/0'/0/0)")
	f.BoolVar(&makeDefault, "default", false, "make it the default account (the first account always is)")
	return cmd
}

func (a *app) accountListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := a.keystore()
			if err != nil {
				return err
			}
			accs, err := ks.List()
			if err != nil {
				return err
			}
			if a.json {
				return jsonOut(a.out(), accs)
			}
			if len(accs) == 0 {
				_, err := fmt.Fprintln(a.out(), "no accounts; create one with `aleph account create`")
				return err
			}
			t := output.NewTable("DEFAULT", "NAME", "CHAIN", "ADDRESS", "CREATED")
			for _, acc := range accs {
				mark := ""
				if acc.Default {
					mark = "*"
				}
				t.Row(mark, acc.Name, string(acc.Chain), acc.Address, output.Time(acc.Created))
			}
			return t.Write(a.out())
		},
	}
}

func (a *app) accountShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show [NAME]",
		Short: "Show an account (default: --account or the default account)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := a.keystore()
			if err != nil {
				return err
			}
			name := a.account
			if len(args) == 1 {
				name = args[0]
			}
			acc, err := ks.Get(name)
			if err != nil {
				return noAccountHint(err)
			}
			return a.printAccount(acc)
		},
	}
}

func noAccountHint(err error) error {
	if errors.Is(err, keystore.ErrNoDefault) {
		return errors.New("no default account: create one with `aleph account create`")
	}
	return err
}

func (a *app) accountExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export [NAME]",
		Short: "Print an account's private key",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := a.keystore()
			if err != nil {
				return err
			}
			name := a.account
			if len(args) == 1 {
				name = args[0]
			}
			key, acc, err := ks.ExportKey(name)
			if err != nil {
				return noAccountHint(err)
			}
			fmt.Fprintf(a.env.Stderr, "warning: this is the private key of account %s (%s); anyone who sees it controls the account\n", acc.Name, acc.Address)
			if a.json {
				return jsonOut(a.out(), struct {
					*keystore.Account
					PrivateKey string `json:"private_key"`
				}{acc, key})
			}
			_, err = fmt.Fprintln(a.out(), key)
			return err
		},
	}
}

func (a *app) accountDefaultCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "default NAME",
		Short: "Make an account the default",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := a.keystore()
			if err != nil {
				return err
			}
			acc, err := ks.SetDefault(args[0])
			if err != nil {
				return err
			}
			return a.printAccount(acc)
		},
	}
}
