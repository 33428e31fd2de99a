package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/mr-tron/base58"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/go-aleph/go-aleph/cli/keystore"
	"github.com/go-aleph/go-aleph/cli/output"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/filecrypt"
	"github.com/go-aleph/go-aleph/message"
)

// storageEngineMax is the largest file `file upload` sends to the storage
// engine when --storage-engine is not given, as the Python CLI does (clients.md
// §1.4.5); larger files go to ipfs.
const storageEngineMax = 4 << 20

func (a *app) fileCmd() *cobra.Command {
	return group("file", "Upload, download, list, pin and forget files (STORE messages)",
		a.fileUploadCmd(), a.fileDownloadCmd(), a.fileListCmd(), a.fileInfoCmd(),
		a.fileForgetCmd(), a.filePinCmd(), a.fileKeyCmd())
}

// parseMetadata reads repeated --metadata k=v flags.
func parseMetadata(vals []string) (map[string]any, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := make(map[string]any, len(vals))
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, fmt.Errorf("invalid --metadata %q: want key=value", v)
		}
		m[k] = val
	}
	return m, nil
}

func parseEngine(s string) (message.ItemType, error) {
	switch e := message.ItemType(strings.ToLower(strings.TrimSpace(s))); e {
	case "", message.ItemStorage, message.ItemIPFS:
		return e, nil
	}
	return "", fmt.Errorf("invalid --storage-engine %q: want storage or ipfs", s)
}

// isTerminal reports whether w is a terminal (progress bars go only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress returns a byte counter drawn on stderr when it is a terminal, and
// no-ops otherwise. size < 0 draws a spinner.
func (a *app) progress(desc string, size int64) (set func(int64), finish func()) {
	if !isTerminal(a.env.Stderr) {
		return func(int64) {}, func() {}
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(a.env.Stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return func(n int64) { _ = bar.Set64(n) }, func() { _ = bar.Finish() }
}

// progressWriter reports the bytes written through it.
type progressWriter struct {
	w   io.Writer
	n   int64
	set func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.set(p.n)
	return n, err
}

// accountIdentity derives the selected account's age identity from its key
// (filecrypt.DeriveIdentity); the key never leaves this process.
func (a *app) accountIdentity() (*age.X25519Identity, *keystore.Account, error) {
	ks, err := a.keystore()
	if err != nil {
		return nil, nil, err
	}
	key, acc, err := ks.ExportKey(a.account)
	if err != nil {
		if errors.Is(err, keystore.ErrNoDefault) {
			return nil, nil, errors.New("no account: create one with `aleph account create` or import one with `aleph account import`")
		}
		return nil, nil, err
	}
	secret, err := accountSecret(acc.Chain, key)
	if err != nil {
		return nil, nil, fmt.Errorf("account %s: %w", acc.Name, err)
	}
	id, err := filecrypt.DeriveIdentity(acc.Chain, acc.Address, secret)
	clear(secret)
	if err != nil {
		return nil, nil, fmt.Errorf("account %s: %w", acc.Name, err)
	}
	return id, acc, nil
}

// accountSecret decodes an exported key into the 32 bytes the derivation
// takes: the secp256k1 key of an ETH account, the ed25519 seed of a SOL one.
func accountSecret(chain message.Chain, exported string) ([]byte, error) {
	switch chain {
	case message.ChainETH:
		b, err := hex.DecodeString(strings.TrimPrefix(exported, "0x"))
		if err != nil || len(b) != filecrypt.SecretSize {
			return nil, errors.New("the key is not 32 hex-encoded bytes")
		}
		return b, nil
	case message.ChainSOL:
		b, err := base58.Decode(exported)
		if err != nil || len(b) != 64 {
			return nil, errors.New("the key is not a base58 64-byte Solana key")
		}
		return b[:filecrypt.SecretSize], nil
	}
	return nil, fmt.Errorf("no file encryption key for chain %s", chain)
}

// uploadJSON is the --json output of file upload: a write's fields and the file's.
type uploadJSON struct {
	ItemHash   string          `json:"item_hash"`
	Status     string          `json:"status"`
	HTTPStatus int             `json:"http_status"`
	FileHash   string          `json:"file_hash"`
	Engine     string          `json:"engine"`
	Size       int64           `json:"size"`
	Encrypted  bool            `json:"encrypted"`
	Message    json.RawMessage `json:"message"`
	Content    json.RawMessage `json:"content"`
}

func (a *app) fileUploadCmd() *cobra.Command {
	var engineFlag, ref, name string
	var metadata, recipients []string
	var encrypt bool
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "upload PATH",
		Short: "Upload a file and pin it with a STORE message (- reads stdin)",
		Long: "Upload a file and pin it with a STORE message. Without --storage-engine, files up to 4 MiB go to\n" +
			"the storage engine and larger ones to ipfs. --encrypt encrypts the file on this machine first\n" +
			"(age v1, see docs/FILE-ENCRYPTION.md) for the account's own key and every --recipient.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			engine, err := parseEngine(engineFlag)
			if err != nil {
				return err
			}
			meta, err := parseMetadata(metadata)
			if err != nil {
				return err
			}
			encrypt = encrypt || len(recipients) > 0
			var extra []age.Recipient
			if encrypt {
				if extra, err = filecrypt.ParseRecipients(recipients); err != nil {
					return fmt.Errorf("--recipient: %w", err)
				}
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			src, size, cleanup, err := a.openUpload(args[0])
			if err != nil {
				return err
			}
			defer cleanup()
			if encrypt {
				id, _, err := a.accountIdentity()
				if err != nil {
					return err
				}
				enc, encSize, encCleanup, err := encryptToTemp(src, append([]age.Recipient{id.Recipient()}, extra...))
				if err != nil {
					return err
				}
				defer encCleanup()
				src, size = enc, encSize
				if meta == nil {
					meta = map[string]any{}
				}
				for k, v := range filecrypt.Metadata() {
					meta[k] = v
				}
			}
			if engine == "" {
				engine = message.ItemStorage
				if size > storageEngineMax {
					engine = message.ItemIPFS
				}
			}
			set, finish := a.progress("uploading", size)
			res, err := c.UploadFile(ctx, src, client.UploadOptions{
				Engine: engine, Ref: ref, Metadata: meta, Name: name,
				WriteOptions: wf.options(), Progress: set,
			})
			finish()
			if errors.Is(err, client.ErrTooLarge) {
				return fmt.Errorf("%w (over the node's limit for this engine: try --storage-engine ipfs, or add the file to IPFS elsewhere and `aleph file pin` its CID)", err)
			}
			if err != nil {
				return err
			}
			if a.json {
				env, err := res.Message.MarshalJSON()
				if err != nil {
					return err
				}
				return jsonOut(a.out(), uploadJSON{
					ItemHash: res.ItemHash, Status: string(res.Status), HTTPStatus: res.HTTPStatus,
					FileHash: res.FileHash, Engine: string(res.Engine), Size: res.Size, Encrypted: encrypt,
					Message: env, Content: res.Content,
				})
			}
			return fieldsOut(a.out(), [][2]string{
				{"item hash", res.ItemHash},
				{"file hash", res.FileHash},
				{"engine", string(res.Engine)},
				{"size", strconv.FormatInt(res.Size, 10)},
				{"encrypted", strconv.FormatBool(encrypt)},
				{"status", string(res.Status)},
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&engineFlag, "storage-engine", "", "storage or ipfs (default: storage up to 4 MiB, else ipfs)")
	f.StringVar(&ref, "ref", "", "the STORE's ref: a previous STORE's item hash to update it, or a name of yours")
	f.StringArrayVar(&metadata, "metadata", nil, "content.metadata entry key=value (repeatable)")
	f.StringVar(&name, "name", "", "file name sent with the upload (default: blob; not signed, not stored in the message)")
	f.BoolVar(&encrypt, "encrypt", false, "encrypt the file before upload for the account's own key (and every --recipient)")
	f.StringArrayVar(&recipients, "recipient", nil, "also encrypt for this age public key age1… (repeatable; implies --encrypt)")
	wf.add(f)
	return cmd
}

// openUpload opens the file to upload. Standard input is copied to a
// temporary file first: the engine depends on the size, which a pipe does not
// tell.
func (a *app) openUpload(path string) (io.ReadSeeker, int64, func(), error) {
	if path == "-" {
		tmp, err := os.CreateTemp("", "aleph-stdin-*")
		if err != nil {
			return nil, 0, nil, fmt.Errorf("spool stdin: %w", err)
		}
		cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
		n, err := io.Copy(tmp, a.env.Stdin)
		if err == nil {
			_, err = tmp.Seek(0, io.SeekStart)
		}
		if err != nil {
			cleanup()
			return nil, 0, nil, fmt.Errorf("spool stdin: %w", err)
		}
		return tmp, n, cleanup, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s is not a regular file (directories are not supported; pipe other files through stdin with -)", path)
	}
	return f, fi.Size(), func() { f.Close() }, nil
}

// encryptToTemp encrypts src into a temporary file, so that the uploaded
// file's hash is the ciphertext's.
func encryptToTemp(src io.Reader, rs []age.Recipient) (*os.File, int64, func(), error) {
	tmp, err := os.CreateTemp("", "aleph-encrypted-*")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("encrypt: %w", err)
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	if _, err := filecrypt.EncryptStream(tmp, src, rs...); err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	n, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("encrypt: %w", err)
	}
	return tmp, n, cleanup, nil
}

// downloadJSON is the --json output of file download.
type downloadJSON struct {
	FileHash  string `json:"file_hash"`
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	Written   int64  `json:"written"`
	Resumed   bool   `json:"resumed"`
	Verified  bool   `json:"verified"`
	Decrypted bool   `json:"decrypted"`
}

func (a *app) fileDownloadCmd() *cobra.Command {
	var outPath, identityFile string
	var decrypt, force bool
	cmd := &cobra.Command{
		Use:   "download HASH",
		Short: "Download a file by its hash (sha256 or CID), resuming a partial download",
		Long: "Download a file by its hash into --output (default: the hash, in the current directory). The\n" +
			"bytes go to <output>.part first, which a later run resumes with an HTTP range; the file is\n" +
			"checked against its hash, then renamed. --decrypt decrypts it once complete, with the account's\n" +
			"key or the age identities in --identity. --output - writes to standard output.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash := strings.TrimSpace(args[0])
			if _, err := client.FileHashEngine(hash); err != nil {
				return fmt.Errorf("%q is not a file hash (sha256 hex or CID)", hash)
			}
			decrypt = decrypt || identityFile != ""
			var ids []age.Identity
			if decrypt {
				var err error
				if ids, err = a.identities(identityFile); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			out := outPath
			if out == "" {
				out = hash
			}
			toStdout := out == "-"
			var part string
			if toStdout {
				tmp, err := os.CreateTemp("", "aleph-download-*")
				if err != nil {
					return err
				}
				tmp.Close()
				part = tmp.Name()
				defer os.Remove(part)
			} else {
				if _, err := os.Stat(out); err == nil && !force {
					return fmt.Errorf("%s already exists (--force overwrites it)", out)
				}
				part = out + ".part"
			}
			res, err := a.downloadPart(cmd.Context(), c, hash, part)
			if err != nil {
				return err
			}
			result := downloadJSON{FileHash: hash, Path: out, Size: res.Size, Written: res.Written, Resumed: res.Resumed, Verified: res.Verified}
			switch {
			case decrypt:
				if err := decryptFile(part, out, toStdout, a.env.Stdout, ids); err != nil {
					if toStdout {
						return err
					}
					return fmt.Errorf("%w (the downloaded ciphertext stays in %s)", err, part)
				}
				os.Remove(part)
				result.Decrypted = true
			case toStdout:
				f, err := os.Open(part)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = io.Copy(a.env.Stdout, f)
				return err
			default:
				if err := os.Rename(part, out); err != nil {
					return err
				}
			}
			if toStdout {
				return nil
			}
			if a.json {
				return jsonOut(a.out(), result)
			}
			return fieldsOut(a.out(), [][2]string{
				{"file hash", hash},
				{"path", out},
				{"size", strconv.FormatInt(result.Size, 10)},
				{"resumed", strconv.FormatBool(result.Resumed)},
				{"verified", strconv.FormatBool(result.Verified)},
				{"decrypted", strconv.FormatBool(result.Decrypted)},
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&outPath, "output", "o", "", "where to write the file (default: ./HASH; - for stdout)")
	f.BoolVar(&decrypt, "decrypt", false, "decrypt the file (age v1) after the download")
	f.StringVar(&identityFile, "identity", "", "age identity file to decrypt with (default: the account's derived key; implies --decrypt)")
	f.BoolVar(&force, "force", false, "overwrite an existing output file")
	return cmd
}

// identities returns the age identities of --identity, or the account's.
func (a *app) identities(file string) ([]age.Identity, error) {
	if file == "" {
		id, _, err := a.accountIdentity()
		if err != nil {
			return nil, err
		}
		return []age.Identity{id}, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--identity: %w", err)
	}
	defer f.Close()
	ids, err := filecrypt.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("--identity %s: %w", file, err)
	}
	return ids, nil
}

// downloadPart downloads hash into part, resuming from what part holds, and
// checks the complete file against the hash. A part that does not match is
// deleted; one interrupted is kept for the next run.
func (a *app) downloadPart(ctx context.Context, c *client.Client, hash, part string) (*client.DownloadResult, error) {
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	from := fi.Size()
	total := int64(-1)
	if isTerminal(a.env.Stderr) {
		if h, err := c.HeadFile(ctx, hash); err == nil {
			total = h.Size
		}
	}
	set, finish := a.progress("downloading", total)
	set(from)
	pw := &progressWriter{w: f, n: from, set: set}
	res, err := c.DownloadFile(ctx, hash, pw, from)
	finish()
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	switch {
	case errors.Is(err, client.ErrHashMismatch):
		os.Remove(part)
		return nil, fmt.Errorf("%w; deleted %s", err, part)
	case errors.Is(err, client.ErrNotFound):
		if from == 0 {
			os.Remove(part)
		}
		return nil, fmt.Errorf("no file %s on the node", hash)
	case err != nil:
		if st, serr := os.Stat(part); serr == nil && st.Size() > 0 {
			return nil, fmt.Errorf("%w (%d bytes kept in %s: run the command again to resume)", err, st.Size(), part)
		}
		os.Remove(part)
		return nil, err
	}
	if !res.Verified && res.ContentType != "application/x-tar" {
		rf, err := os.Open(part)
		if err != nil {
			return nil, err
		}
		err = client.VerifyFile(ctx, rf, hash)
		rf.Close()
		if errors.Is(err, client.ErrHashMismatch) {
			os.Remove(part)
			return nil, fmt.Errorf("the downloaded file does not match %s; deleted %s", hash, part)
		}
		if err != nil {
			return nil, err
		}
		res.Verified = true
	}
	return res, nil
}

// decryptFile decrypts the ciphertext in part into out (through a temporary
// file renamed at the end, so out never holds a partial plaintext), or to w.
func decryptFile(part, out string, toStdout bool, w io.Writer, ids []age.Identity) error {
	in, err := os.Open(part)
	if err != nil {
		return err
	}
	defer in.Close()
	if toStdout {
		_, err := filecrypt.DecryptStream(w, in, ids...)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".decrypt-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := filecrypt.DecryptStream(tmp, in, ids...); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// accountAddress returns --address, or the selected account's address.
func (a *app) accountAddress(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	ks, err := a.keystore()
	if err != nil {
		return "", err
	}
	acc, err := ks.Get(a.account)
	if err != nil {
		if errors.Is(err, keystore.ErrNoDefault) {
			return "", errors.New("no account: give --address, or create an account with `aleph account create`")
		}
		return "", err
	}
	return acc.Address, nil
}

func (a *app) fileListCmd() *cobra.Command {
	var address string
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the files an address pins (default: the account's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := a.accountAddress(address)
			if err != nil {
				return err
			}
			order, err := parseSortOrder(lf.sortOrder)
			if err != nil {
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
			list, err := c.ListFiles(cmd.Context(), addr, p, order)
			if errors.Is(err, client.ErrNotFound) {
				// The node answers 404 for an address without files.
				if a.json {
					return jsonOut(a.out(), map[string]any{"address": addr, "total_size": 0, "files": []any{}})
				}
				_, err := fmt.Fprintf(a.out(), "%s has no files\n", output.Sanitize(addr))
				return err
			}
			if err != nil {
				return err
			}
			if a.json {
				return output.RawJSON(a.out(), list.Raw)
			}
			t := output.NewTable("FILE HASH", "SIZE", "TYPE", "CREATED", "ITEM HASH")
			for _, f := range list.Files {
				t.Row(f.FileHash, strconv.FormatInt(f.Size, 10), f.Type, output.Time(f.Created.Time), f.ItemHash)
			}
			if err := t.Write(a.out()); err != nil {
				return err
			}
			if _, err := fmt.Fprintf(a.out(), "total size %d bytes\n", list.TotalSize); err != nil {
				return err
			}
			return pageLine(a.out(), list.Pagination, len(list.Files))
		},
	}
	cmd.Flags().StringVar(&address, "address", "", "owner address (default: the account's)")
	lf.add(cmd.Flags(), 100)
	return cmd
}

// infoJSON is the --json output of file info.
type infoJSON struct {
	FileHash    string `json:"file_hash"`
	Type        string `json:"type"`
	Size        int64  `json:"size"`
	DownloadURL string `json:"download_url"`
	PinCount    int64  `json:"pin_count"`
	// Set when HASH was a STORE message's hash.
	MessageHash string `json:"message_hash,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Ref         string `json:"ref,omitempty"`
}

func (a *app) fileInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info HASH",
		Short: "Show a file's type, size and pin count, by file hash or STORE message hash",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			h := strings.TrimSpace(args[0])
			c, err := a.client()
			if err != nil {
				return err
			}
			var info infoJSON
			md, err := c.FileMetadata(ctx, h)
			if errors.Is(err, client.ErrNotFound) && message.IsHexHash(h) {
				// A sha256-shaped hash may be a STORE message's.
				ref, rerr := c.FileByMessageHash(ctx, h)
				if errors.Is(rerr, client.ErrNotFound) {
					return fmt.Errorf("no file and no STORE message %s", h)
				}
				if rerr != nil {
					return rerr
				}
				info.MessageHash, info.Owner, info.Ref = h, ref.Owner, ref.Ref
				md, err = c.FileMetadata(ctx, ref.FileHash)
			}
			if errors.Is(err, client.ErrNotFound) {
				return fmt.Errorf("no file %s", h)
			}
			if errors.Is(err, client.ErrInvalidFileHash) {
				return fmt.Errorf("%q is not a file hash (sha256 hex or CID)", h)
			}
			if err != nil {
				return err
			}
			info.FileHash, info.Type, info.Size, info.DownloadURL = md.FileHash, md.Type, md.Size, md.DownloadURL
			if info.PinCount, err = c.FilePinCount(ctx, md.FileHash); err != nil {
				return err
			}
			if a.json {
				return jsonOut(a.out(), info)
			}
			pairs := [][2]string{
				{"file hash", info.FileHash},
				{"type", info.Type},
				{"size", strconv.FormatInt(info.Size, 10)},
				{"download url", info.DownloadURL},
				{"pins", strconv.FormatInt(info.PinCount, 10)},
			}
			if info.MessageHash != "" {
				pairs = append(pairs, [2]string{"message hash", info.MessageHash}, [2]string{"owner", info.Owner}, [2]string{"ref", info.Ref})
			}
			return fieldsOut(a.out(), pairs)
		},
	}
}

func (a *app) fileForgetCmd() *cobra.Command {
	var reason string
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "forget HASH...",
		Short: "Forget STORE messages (by their item hashes); unpinned files are deleted after the node's grace period",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := hashArgs(args); err != nil {
				return err
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			w, err := c.ForgetFiles(cmd.Context(), args, reason, wf.options())
			if err != nil {
				return err
			}
			return a.printWritten(w)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the files are forgotten")
	wf.add(cmd.Flags())
	return cmd
}

func (a *app) filePinCmd() *cobra.Command {
	var ref string
	var metadata []string
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "pin CID",
		Short: "Pin a file the network already has (a STORE of an IPFS CID or a stored sha256)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			meta, err := parseMetadata(metadata)
			if err != nil {
				return err
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			w, err := c.PinFile(cmd.Context(), strings.TrimSpace(args[0]), client.PinOptions{Ref: ref, Metadata: meta, WriteOptions: wf.options()})
			if err != nil {
				return err
			}
			return a.printWritten(w)
		},
	}
	cmd.Flags().StringVar(&ref, "ref", "", "the STORE's ref: a previous STORE's item hash, or a name of yours")
	cmd.Flags().StringArrayVar(&metadata, "metadata", nil, "content.metadata entry key=value (repeatable)")
	wf.add(cmd.Flags())
	return cmd
}

func (a *app) fileKeyCmd() *cobra.Command {
	var secret bool
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Print the account's file encryption public key (age1…), for others to encrypt to",
		Long: "Print the account's age public key, derived from its private key (docs/FILE-ENCRYPTION.md).\n" +
			"Give it to others so they can `aleph file upload --recipient` or `age -r` files for you.\n" +
			"--secret also prints the age secret key, for the standard age tool; keep it private.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, acc, err := a.accountIdentity()
			if err != nil {
				return err
			}
			v := map[string]string{"account": acc.Name, "chain": string(acc.Chain), "address": acc.Address, "recipient": id.Recipient().String()}
			if secret {
				v["identity"] = id.String()
			}
			if a.json {
				return jsonOut(a.out(), v)
			}
			pairs := [][2]string{{"account", acc.Name}, {"address", acc.Address}, {"recipient", v["recipient"]}}
			if secret {
				pairs = append(pairs, [2]string{"identity", v["identity"]})
			}
			return fieldsOut(a.out(), pairs)
		},
	}
	cmd.Flags().BoolVar(&secret, "secret", false, "also print the age secret key (AGE-SECRET-KEY-1…)")
	return cmd
}
