package keystore

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/message"
)

// Vectors: the EIP-191 test key (primitives.json), the aleph-sdk-python mnemonic,
// and the RFC 8032 test-1 ed25519 seed.
const (
	ethKey       = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efbba0f2d1db744ce06"
	ethAddress   = "0x85E1365dE7394f86d71d9F2e707Fbce2B5383770"
	mnemonic     = "indoor dish desk flag debris potato excuse depart ticket judge file exit"
	mnemonicAddr = "0x3f1Eae7D46d88F08fc2F8ed27FCb2AB183EB2d0E"
	solSeedHex   = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	solAddress   = "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z"
	solExport    = "49W385L4rePHy6PAaQUovbD2aacgN4HsKXSMeUzRg4fmwXszN91JuMFrQRj3vMDpZuRF3ZknQBuRBoWQJEfXstMw"
)

var fixedTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newStore(t *testing.T) *Store {
	t.Helper()
	return &Store{Dir: filepath.Join(t.TempDir(), "aleph"), Now: func() time.Time { return fixedTime }}
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func skipOnWindows(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("unix permissions")
	}
}

func TestImportFormats(t *testing.T) {
	tests := []struct {
		name    string
		chain   message.Chain
		key     string
		address string
		stored  string // the private_key written to the file
	}{
		{"eth hex", message.ChainETH, ethKey, ethAddress, "0x" + ethKey},
		{"eth 0x hex with newline", message.ChainETH, "0x" + ethKey + "\n", ethAddress, "0x" + ethKey},
		{"eth uppercase hex", message.ChainETH, strings.ToUpper(ethKey), ethAddress, "0x" + ethKey},
		{"sol phantom base58", message.ChainSOL, solExport, solAddress, solExport},
		{"sol 0x hex seed", message.ChainSOL, "0x" + solSeedHex, solAddress, solExport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			acc, err := s.ImportKey("a", tc.chain, tc.key, false)
			if err != nil {
				t.Fatal(err)
			}
			if acc.Address != tc.address || acc.Chain != tc.chain || !acc.Default {
				t.Errorf("account %+v, want address %s chain %s default", acc, tc.address, tc.chain)
			}
			var k keyFile
			data, err := os.ReadFile(acc.Path)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &k); err != nil {
				t.Fatal(err)
			}
			if k.PrivateKey != tc.stored || !k.Created.Equal(fixedTime) || k.Name != "a" {
				t.Errorf("key file %+v, want private_key %s", k, tc.stored)
			}
			sig, _, err := s.Signer("a")
			if err != nil {
				t.Fatal(err)
			}
			if sig.Address() != tc.address || sig.Chain() != tc.chain {
				t.Errorf("signer %s %s", sig.Chain(), sig.Address())
			}
			exported, _, err := s.ExportKey("")
			if err != nil || exported != tc.stored {
				t.Errorf("export = %q, %v; want %q", exported, err, tc.stored)
			}
			// The exported key imports back to the same account.
			again, err := s.ImportKey("b", tc.chain, exported, false)
			if err != nil || again.Address != tc.address {
				t.Errorf("re-import: %+v, %v", again, err)
			}
		})
	}
}

func TestImportErrors(t *testing.T) {
	tests := []struct {
		name  string
		chain message.Chain
		key   string
	}{
		{"empty", message.ChainETH, "  "},
		{"eth short", message.ChainETH, "abcd"},
		{"eth not hex", message.ChainETH, strings.Repeat("zz", 32)},
		{"eth zero", message.ChainETH, strings.Repeat("0", 64)},
		{"sol not base58", message.ChainSOL, "0OIl"},
		{"sol wrong length", message.ChainSOL, "3yZe7d"},
		{"unsupported chain", message.ChainDOT, ethKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if acc, err := s.ImportKey("a", tc.chain, tc.key, false); err == nil {
				t.Fatalf("imported %+v", acc)
			}
			if accs, err := s.List(); err != nil || len(accs) != 0 {
				t.Errorf("after a failed import: %d accounts, %v", len(accs), err)
			}
		})
	}
}

func TestImportMnemonic(t *testing.T) {
	s := newStore(t)
	acc, err := s.ImportMnemonic("m", "  "+mnemonic+"\n", "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Address != mnemonicAddr {
		t.Errorf("address %s, want %s", acc.Address, mnemonicAddr)
	}
	other, err := s.ImportMnemonic("m2", mnemonic, "", "m/44'/60'/0'/0/1", false)
	if err != nil {
		t.Fatal(err)
	}
	if other.Address == mnemonicAddr {
		t.Error("another derivation path gave the same address")
	}
	if _, err := s.ImportMnemonic("bad", strings.Replace(mnemonic, "exit", "exact", 1), "", "", false); err == nil {
		t.Error("bad checksum accepted")
	}
}

func TestCreateModesAndDefault(t *testing.T) {
	skipOnWindows(t)
	s := newStore(t)
	s.Rand = bytes.NewReader(bytes.Repeat([]byte{0x11}, 64))
	first, err := s.Create("first", message.ChainETH, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := mode(t, s.accountsDir()); got != 0o700 {
		t.Errorf("accounts directory mode %04o, want 0700", got)
	}
	if got := mode(t, first.Path); got != 0o600 {
		t.Errorf("key file mode %04o, want 0600", got)
	}
	if got := mode(t, s.configPath()); got != 0o600 {
		t.Errorf("config mode %04o, want 0600", got)
	}
	if !first.Default {
		t.Error("the first account is not the default")
	}
	s.Rand = nil
	second, err := s.Create("second", message.ChainSOL, false)
	if err != nil {
		t.Fatal(err)
	}
	if second.Default {
		t.Error("a later account became the default without --default")
	}
	if def, _ := s.DefaultName(); def != "first" {
		t.Errorf("default %q, want first", def)
	}
	third, err := s.Create("third", message.ChainETH, true)
	if err != nil || !third.Default {
		t.Fatalf("create with default: %+v, %v", third, err)
	}
	if _, err := s.SetDefault("second"); err != nil {
		t.Fatal(err)
	}
	accs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names, defaults []string
	for _, a := range accs {
		names = append(names, a.Name)
		if a.Default {
			defaults = append(defaults, a.Name)
		}
	}
	if strings.Join(names, ",") != "first,second,third" || strings.Join(defaults, ",") != "second" {
		t.Errorf("list names %v defaults %v", names, defaults)
	}
	if _, err := s.SetDefault("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetDefault(nobody) = %v, want ErrNotFound", err)
	}
	// Fresh keys differ and sign verifiable messages.
	reg := all.NewRegistry()
	for _, name := range []string{"first", "second", "third"} {
		sig, _, err := s.Signer(name)
		if err != nil {
			t.Fatal(err)
		}
		b := message.Builder{Signer: sig, Now: func() time.Time { return fixedTime }}
		built, err := b.Build(t.Context(), message.TypePost, &message.PostContent{Type: "t", Content: json.RawMessage(`{}`)}, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Verify(built.Message); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNamesAndDuplicates(t *testing.T) {
	s := newStore(t)
	for _, bad := range []string{"", ".hidden", "-x", "a/b", "a b", "../x", strings.Repeat("a", 65), "é"} {
		if _, err := s.Create(bad, message.ChainETH, false); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if _, err := s.Create("dup", message.ChainETH, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportKey("dup", message.ChainETH, ethKey, false); !errors.Is(err, ErrExists) {
		t.Errorf("second dup = %v, want ErrExists", err)
	}
	if n, err := s.FreeName("dup"); err != nil || n != "dup-2" {
		t.Errorf("FreeName(dup) = %q, %v", n, err)
	}
	if n, err := s.FreeName("eth"); err != nil || n != "eth" {
		t.Errorf("FreeName(eth) = %q, %v", n, err)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(s.accountsDir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestInsecurePermissionsRefused(t *testing.T) {
	skipOnWindows(t)
	tests := []struct {
		name     string
		fileMode fs.FileMode
		dirMode  fs.FileMode
		ok       bool
	}{
		{"0600 in 0700", 0o600, 0o700, true},
		{"0400 in 0700", 0o400, 0o700, true},
		{"0600 in 0755", 0o600, 0o755, true},
		{"0644", 0o644, 0o700, false},
		{"0640", 0o640, 0o700, false},
		{"0604", 0o604, 0o700, false},
		{"0660", 0o660, 0o700, false},
		{"dir 0770", 0o600, 0o770, false},
		{"dir 0777", 0o600, 0o777, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			acc, err := s.ImportKey("k", message.ChainETH, ethKey, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(acc.Path, tc.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(s.accountsDir(), tc.dirMode); err != nil {
				t.Fatal(err)
			}
			_, _, errSigner := s.Signer("k")
			_, _, errExport := s.ExportKey("k")
			_, errList := s.List()
			_, errGet := s.Get("k")
			for name, err := range map[string]error{"Signer": errSigner, "ExportKey": errExport, "List": errList, "Get": errGet} {
				if tc.ok && err != nil {
					t.Errorf("%s: %v", name, err)
				}
				if !tc.ok && !errors.Is(err, ErrInsecure) {
					t.Errorf("%s = %v, want ErrInsecure", name, err)
				}
			}
			if !tc.ok && errSigner != nil && !strings.Contains(errSigner.Error(), "chmod") {
				t.Errorf("error %q does not say how to fix it", errSigner)
			}
			// Creating another account in an insecure directory is refused too.
			_, err = s.Create("other", message.ChainETH, false)
			if tc.dirMode&0o022 != 0 && !errors.Is(err, ErrInsecure) {
				t.Errorf("Create in a %04o directory = %v, want ErrInsecure", tc.dirMode, err)
			}
		})
	}
}

func TestTamperedFiles(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"not json", "nope"},
		{"unknown field", `{"name":"k","chain":"ETH","address":"` + ethAddress + `","private_key":"0x` + ethKey + `","extra":1}`},
		{"address mismatch", `{"name":"k","chain":"ETH","address":"0x0000000000000000000000000000000000000001","private_key":"0x` + ethKey + `"}`},
		{"name mismatch", `{"name":"other","chain":"ETH","address":"` + ethAddress + `","private_key":"0x` + ethKey + `"}`},
		{"unknown chain", `{"name":"k","chain":"DOT","address":"` + ethAddress + `","private_key":"0x` + ethKey + `"}`},
		{"bad key", `{"name":"k","chain":"SOL","address":"` + solAddress + `","private_key":"0OIl"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if _, err := s.ImportKey("k", message.ChainETH, ethKey, false); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.keyPath("k"), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if sig, _, err := s.Signer("k"); err == nil {
				t.Fatalf("loaded a tampered file as %s", sig.Address())
			}
		})
	}
}

func TestMissingAccounts(t *testing.T) {
	s := newStore(t)
	if _, _, err := s.Signer(""); !errors.Is(err, ErrNoDefault) {
		t.Errorf("Signer with no accounts = %v, want ErrNoDefault", err)
	}
	if _, err := s.Get("ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(ghost) = %v, want ErrNotFound", err)
	}
	if accs, err := s.List(); err != nil || len(accs) != 0 {
		t.Errorf("List on an empty store = %v, %v", accs, err)
	}
	if _, err := s.Get("../../etc/passwd"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("path traversal = %v, want ErrInvalidName", err)
	}
}

func TestParseChainAndDefaultDir(t *testing.T) {
	for in, want := range map[string]message.Chain{"eth": message.ChainETH, " SOL ": message.ChainSOL} {
		if got, err := ParseChain(in); err != nil || got != want {
			t.Errorf("ParseChain(%q) = %s, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "DOT", "BASE", "x"} {
		if _, err := ParseChain(bad); !errors.Is(err, ErrInvalidChain) {
			t.Errorf("ParseChain(%q) = %v, want ErrInvalidChain", bad, err)
		}
	}
	dir, err := DefaultDir(func(k string) string {
		if k == EnvConfigDir {
			return "/x/y"
		}
		return ""
	})
	if err != nil || dir != "/x/y" {
		t.Errorf("DefaultDir with env = %q, %v", dir, err)
	}
}
