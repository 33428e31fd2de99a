// Package keystore keeps the CLI's accounts: one JSON file per account holding its
// chain, address and private key, in a directory only the user can read, and a
// config file naming the default account.
//
// Layout under the config directory (os.UserConfigDir()/aleph, or $ALEPH_CONFIG_DIR):
//
//	config.json              {"default_account": "<name>"}
//	accounts/<name>.json     {"name", "chain", "address", "private_key", "created"}
//
// The accounts directory is created with mode 0700 and key files with 0600. Like
// ssh, the store refuses to read a key file that its group or others can access,
// and an accounts directory that its group or others can write to.
//
// Private keys are stored as the chain's export format: "0x" + 64 hex digits for
// ETH, base58 of seed ‖ public key (the Phantom format) for SOL.
package keystore

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/chain/solana"
	"github.com/go-aleph/go-aleph/message"
)

// EnvConfigDir overrides the config directory.
const EnvConfigDir = "ALEPH_CONFIG_DIR"

// Chains the store can hold accounts for.
var Chains = []message.Chain{message.ChainETH, message.ChainSOL}

// Errors callers can test for.
var (
	ErrNotFound     = errors.New("no such account")
	ErrExists       = errors.New("account already exists")
	ErrNoDefault    = errors.New("no default account")
	ErrInsecure     = errors.New("insecure permissions")
	ErrInvalidName  = errors.New("invalid account name")
	ErrInvalidChain = errors.New("unsupported chain")
)

// maxKeyFile bounds a key file read.
const maxKeyFile = 64 << 10

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Store is a directory of accounts.
type Store struct {
	// Dir is the config directory.
	Dir string
	// Now is the clock for creation times; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for new keys; nil means crypto/rand.
	Rand io.Reader
}

// DefaultDir returns $ALEPH_CONFIG_DIR when getenv gives it, else
// os.UserConfigDir()/aleph.
func DefaultDir(getenv func(string) string) (string, error) {
	if d := getenv(EnvConfigDir); d != "" {
		return d, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory (set %s): %w", EnvConfigDir, err)
	}
	return filepath.Join(base, "aleph"), nil
}

// Account describes a stored account (without its key).
type Account struct {
	Name    string        `json:"name"`
	Chain   message.Chain `json:"chain"`
	Address string        `json:"address"`
	Created time.Time     `json:"created"`
	// Default is true for the default account.
	Default bool `json:"default"`
	// Path is the key file.
	Path string `json:"path"`
}

// keyFile is the on-disk form of an account.
type keyFile struct {
	Name       string        `json:"name"`
	Chain      message.Chain `json:"chain"`
	Address    string        `json:"address"`
	PrivateKey string        `json:"private_key"`
	Created    time.Time     `json:"created"`
}

type config struct {
	DefaultAccount string `json:"default_account,omitempty"`
}

// ValidName reports whether name can name an account: 1 to 64 letters, digits,
// dots, dashes and underscores, starting with a letter or digit.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// ParseChain reads a chain name (case-insensitive) the store supports.
func ParseChain(s string) (message.Chain, error) {
	c := message.Chain(strings.ToUpper(strings.TrimSpace(s)))
	if slices.Contains(Chains, c) {
		return c, nil
	}
	return "", fmt.Errorf("%w %q: want ETH or SOL", ErrInvalidChain, s)
}

func (s *Store) accountsDir() string { return filepath.Join(s.Dir, "accounts") }

func (s *Store) keyPath(name string) string { return filepath.Join(s.accountsDir(), name+".json") }

func (s *Store) configPath() string { return filepath.Join(s.Dir, "config.json") }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// checkPerms enforces the ssh-like rules; there are none to check on Windows.
func checkPerms(path string, fi fs.FileInfo, dir bool) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	mode := fi.Mode().Perm()
	if dir {
		if mode&0o022 != 0 {
			return fmt.Errorf("%w: directory %s has mode %04o, writable by group or others (run: chmod 700 %s)", ErrInsecure, path, mode, path)
		}
		return nil
	}
	if mode&0o077 != 0 {
		return fmt.Errorf("%w: key file %s has mode %04o, accessible by group or others (run: chmod 600 %s)", ErrInsecure, path, mode, path)
	}
	return nil
}

// ensureDir creates the accounts directory (mode 0700) and checks it.
func (s *Store) ensureDir() error {
	if s.Dir == "" {
		return errors.New("keystore: no config directory")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	d := s.accountsDir()
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create accounts directory: %w", err)
	}
	return s.checkDir()
}

func (s *Store) checkDir() error {
	d := s.accountsDir()
	fi, err := os.Stat(d)
	if err != nil {
		return fmt.Errorf("accounts directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("accounts directory %s is not a directory", d)
	}
	return checkPerms(d, fi, true)
}

// readKeyFile reads and checks one key file.
func (s *Store) readKeyFile(name string) (*keyFile, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w %q", ErrInvalidName, name)
	}
	if err := s.checkDir(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		return nil, err
	}
	p := s.keyPath(name)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", p)
	}
	if err := checkPerms(p, fi, false); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", p, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than %d bytes", p, maxKeyFile)
	}
	var k keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, fmt.Errorf("key file %s is not a valid account file: %w", p, err)
	}
	if k.Name != name {
		return nil, fmt.Errorf("key file %s names account %q", p, k.Name)
	}
	return &k, nil
}

// signer loads the key of k and checks it against the recorded address.
func (k *keyFile) signer() (message.Signer, error) {
	var s message.Signer
	switch k.Chain {
	case message.ChainETH:
		a, err := evm.AccountFromHex(k.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", k.Name, err)
		}
		s = a
	case message.ChainSOL:
		a, err := solana.AccountFromBase58(k.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", k.Name, err)
		}
		s = a
	default:
		return nil, fmt.Errorf("account %s: %w %q", k.Name, ErrInvalidChain, k.Chain)
	}
	if s.Address() != k.Address {
		return nil, fmt.Errorf("account %s: the key's address %s is not the recorded %s", k.Name, s.Address(), k.Address)
	}
	return s, nil
}

func (s *Store) readConfig() (config, error) {
	var c config
	data, err := os.ReadFile(s.configPath())
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("config file %s is not valid JSON: %w", s.configPath(), err)
	}
	return c, nil
}

func (s *Store) writeConfig(c config) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.configPath(), append(data, '\n'), false)
}

// writeFileAtomic writes data to a temporary file with mode 0600 and renames it
// into place; with exclusive, an existing file is an ErrExists.
func writeFileAtomic(path string, data []byte, exclusive bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename or link
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if exclusive {
		// A hard link fails if the target exists, so two creations of one name
		// cannot overwrite each other.
		err := os.Link(name, path)
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		if err != nil {
			// No hard links on this file system: create the target exclusively.
			return writeExclusive(path, data)
		}
		return nil
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// save stores a new account; the first account becomes the default, and so does
// any account saved with makeDefault.
func (s *Store) save(name string, sig message.Signer, key string, makeDefault bool) (*Account, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w %q: use 1 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit", ErrInvalidName, name)
	}
	if err := s.ensureDir(); err != nil {
		return nil, err
	}
	existing, err := s.names()
	if err != nil {
		return nil, err
	}
	k := keyFile{Name: name, Chain: sig.Chain(), Address: sig.Address(), PrivateKey: key, Created: s.now()}
	data, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(s.keyPath(name), append(data, '\n'), true); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, fmt.Errorf("%w: %s", ErrExists, name)
		}
		return nil, err
	}
	cfg, err := s.readConfig()
	if err != nil {
		return nil, err
	}
	if makeDefault || len(existing) == 0 || cfg.DefaultAccount == "" {
		cfg.DefaultAccount = name
		if err := s.writeConfig(cfg); err != nil {
			return nil, err
		}
	}
	return &Account{Name: name, Chain: k.Chain, Address: k.Address, Created: k.Created, Default: cfg.DefaultAccount == name, Path: s.keyPath(name)}, nil
}

// names lists the account names on disk, sorted.
func (s *Store) names() ([]string, error) {
	entries, err := os.ReadDir(s.accountsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	var out []string
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && ValidName(n) && !e.IsDir() {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// FreeName returns base if no account has it, else base-2, base-3, ….
func (s *Store) FreeName(base string) (string, error) {
	names, err := s.names()
	if err != nil {
		return "", err
	}
	name := base
	for i := 2; slices.Contains(names, name); i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name, nil
}

// Create makes an account with a fresh key.
func (s *Store) Create(name string, c message.Chain, makeDefault bool) (*Account, error) {
	r := s.Rand
	if r == nil {
		r = rand.Reader
	}
	switch c {
	case message.ChainETH:
		a, err := evm.NewAccount(r)
		if err != nil {
			return nil, err
		}
		return s.save(name, a, a.PrivateKeyHex(), makeDefault)
	case message.ChainSOL:
		a, err := solana.NewAccount(r)
		if err != nil {
			return nil, err
		}
		return s.save(name, a, a.ExportBase58(), makeDefault)
	}
	return nil, fmt.Errorf("%w %q: want ETH or SOL", ErrInvalidChain, c)
}

// ImportKey stores an existing private key: hex (with or without 0x) for ETH;
// base58 (32-byte seed or 64-byte Phantom export) or 0x-hex for SOL.
func (s *Store) ImportKey(name string, c message.Chain, key string, makeDefault bool) (*Account, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, errors.New("empty private key")
	}
	switch c {
	case message.ChainETH:
		a, err := evm.AccountFromHex(key)
		if err != nil {
			return nil, err
		}
		return s.save(name, a, a.PrivateKeyHex(), makeDefault)
	case message.ChainSOL:
		var a *solana.Account
		var err error
		if strings.HasPrefix(key, "0x") || strings.HasPrefix(key, "0X") {
			a, err = solana.AccountFromHex(key)
		} else {
			a, err = solana.AccountFromBase58(key)
		}
		if err != nil {
			return nil, err
		}
		return s.save(name, a, a.ExportBase58(), makeDefault)
	}
	return nil, fmt.Errorf("%w %q: want ETH or SOL", ErrInvalidChain, c)
}

// ImportMnemonic stores the ETH account a BIP-39 mnemonic derives at path
// ("" for m/44'/60'/0'/0/0). Only the derived key is stored.
func (s *Store) ImportMnemonic(name, phrase, passphrase, path string, makeDefault bool) (*Account, error) {
	if path == "" {
		path = evm.DefaultDerivationPath
	}
	a, err := evm.AccountFromMnemonicPath(phrase, passphrase, path)
	if err != nil {
		return nil, err
	}
	return s.save(name, a, a.PrivateKeyHex(), makeDefault)
}

// List returns every account, sorted by name. A key file with insecure
// permissions or bad content is an error.
func (s *Store) List() ([]*Account, error) {
	names, err := s.names()
	if err != nil {
		return nil, err
	}
	cfg, err := s.readConfig()
	if err != nil {
		return nil, err
	}
	out := make([]*Account, 0, len(names))
	for _, n := range names {
		k, err := s.readKeyFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, &Account{Name: k.Name, Chain: k.Chain, Address: k.Address, Created: k.Created, Default: cfg.DefaultAccount == n, Path: s.keyPath(n)})
	}
	return out, nil
}

// DefaultName returns the default account's name, or ErrNoDefault.
func (s *Store) DefaultName() (string, error) {
	cfg, err := s.readConfig()
	if err != nil {
		return "", err
	}
	if cfg.DefaultAccount == "" {
		return "", ErrNoDefault
	}
	return cfg.DefaultAccount, nil
}

// resolve maps "" to the default account's name.
func (s *Store) resolve(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	return s.DefaultName()
}

// Get describes an account ("" for the default).
func (s *Store) Get(name string) (*Account, error) {
	name, err := s.resolve(name)
	if err != nil {
		return nil, err
	}
	k, err := s.readKeyFile(name)
	if err != nil {
		return nil, err
	}
	def, _ := s.DefaultName()
	return &Account{Name: k.Name, Chain: k.Chain, Address: k.Address, Created: k.Created, Default: def == name, Path: s.keyPath(name)}, nil
}

// Signer loads an account's key ("" for the default).
func (s *Store) Signer(name string) (message.Signer, *Account, error) {
	name, err := s.resolve(name)
	if err != nil {
		return nil, nil, err
	}
	k, err := s.readKeyFile(name)
	if err != nil {
		return nil, nil, err
	}
	sig, err := k.signer()
	if err != nil {
		return nil, nil, err
	}
	def, _ := s.DefaultName()
	return sig, &Account{Name: k.Name, Chain: k.Chain, Address: k.Address, Created: k.Created, Default: def == name, Path: s.keyPath(name)}, nil
}

// ExportKey returns an account's private key in its chain's export format.
func (s *Store) ExportKey(name string) (string, *Account, error) {
	name, err := s.resolve(name)
	if err != nil {
		return "", nil, err
	}
	k, err := s.readKeyFile(name)
	if err != nil {
		return "", nil, err
	}
	if _, err := k.signer(); err != nil {
		return "", nil, err
	}
	def, _ := s.DefaultName()
	return k.PrivateKey, &Account{Name: k.Name, Chain: k.Chain, Address: k.Address, Created: k.Created, Default: def == name, Path: s.keyPath(name)}, nil
}

// SetDefault makes an existing account the default.
func (s *Store) SetDefault(name string) (*Account, error) {
	if _, err := s.readKeyFile(name); err != nil {
		return nil, err
	}
	cfg, err := s.readConfig()
	if err != nil {
		return nil, err
	}
	cfg.DefaultAccount = name
	if err := s.writeConfig(cfg); err != nil {
		return nil, err
	}
	return s.Get(name)
}
