package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/cli/output"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/crn/api"
	"github.com/go-aleph/go-aleph/crn/ownerauth"
	"github.com/go-aleph/go-aleph/message"
)

// Environment variables of the program commands.
const (
	EnvCRNURL         = "ALEPH_CRN_URL"
	EnvDefaultRuntime = "ALEPH_DEFAULT_RUNTIME"
)

// DefaultCRNURL is the compute node the program commands talk to without --crn
// or ALEPH_CRN_URL: the dev network's.
const DefaultCRNURL = "http://localhost:4020"

// squashfsTimeout bounds one mksquashfs run.
const squashfsTimeout = 10 * time.Minute

func (a *app) programCmd() *cobra.Command {
	return group("program", "Deploy and manage programs (PROGRAM messages: on-demand functions run by compute nodes)",
		a.programUploadCmd(), a.programUpdateCmd(), a.programListCmd(), a.programShowCmd(),
		a.programLogsCmd(), a.programDeleteCmd())
}

// crnFlag adds --crn, defaulting to ALEPH_CRN_URL or DefaultCRNURL.
func (a *app) crnFlag(cmd *cobra.Command, dst *string) {
	def := a.env.Getenv(EnvCRNURL)
	if def == "" {
		def = DefaultCRNURL
	}
	cmd.Flags().StringVar(dst, "crn", def, "compute node URL (env "+EnvCRNURL+")")
}

// checkCRN validates --crn.
func checkCRN(s string) (string, error) {
	if _, err := client.CRNDomain(s); err != nil {
		return "", fmt.Errorf("invalid --crn %q: want http(s)://host[:port]", s)
	}
	return strings.TrimRight(strings.TrimSpace(s), "/"), nil
}

// programURLs returns where the compute node at crn serves a program:
// {crn}/vm/{hash}, and http(s)://{base32(hash)}.{crn host}[:port]/ ("" when
// the hash is not a sha256 hex).
func programURLs(crn, hash string) (vm, host string, err error) {
	crn, err = checkCRN(crn)
	if err != nil {
		return "", "", err
	}
	u, _ := url.Parse(crn)
	vm = crn + "/vm/" + hash
	name, err := api.HostName(hash, u.Hostname())
	if err != nil {
		return vm, "", nil
	}
	if p := u.Port(); p != "" {
		name += ":" + p
	}
	return vm, u.Scheme + "://" + name + "/", nil
}

// codeArchive is program code ready to upload.
type codeArchive struct {
	path     string
	encoding string
	size     int64
	cleanup  func()
}

// squashfsMagic starts every squashfs image (little-endian "hsqs").
var squashfsMagic = []byte("hsqs")

// packageCode turns PATH into an uploadable archive, as aleph-client's
// create_archive: a directory becomes a squashfs image when mksquashfs is on
// PATH, a zip otherwise; a file is squashfs when named *.squashfs or starting
// with the squashfs magic, and must otherwise be a non-empty zip.
func packageCode(ctx context.Context, src string) (*codeArchive, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("program code: %w", err)
	}
	if fi.IsDir() {
		// The walk of a zip does not follow a symbolic link, even at the root.
		dir, err := filepath.EvalSymlinks(src)
		if err != nil {
			return nil, fmt.Errorf("program code: %w", err)
		}
		return packageDir(ctx, dir)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("program code: %s is not a regular file or a directory", src)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("program code: %s is empty", src)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("program code: %w", err)
	}
	defer f.Close()
	head := make([]byte, len(squashfsMagic))
	n, _ := io.ReadFull(f, head)
	done := func() {}
	if strings.HasSuffix(strings.ToLower(src), ".squashfs") || bytes.Equal(head[:n], squashfsMagic) {
		return &codeArchive{path: src, encoding: message.EncodingSquashfs, size: fi.Size(), cleanup: done}, nil
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("program code: %s is neither a zip archive nor a squashfs image (give a directory to have it packaged)", src)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("program code: %s is an empty zip archive", src)
	}
	return &codeArchive{path: src, encoding: message.EncodingZip, size: fi.Size(), cleanup: done}, nil
}

// packageDir packs a directory into a temporary squashfs image or zip.
func packageDir(ctx context.Context, dir string) (*codeArchive, error) {
	tmp, err := os.MkdirTemp("", "aleph-program-*")
	if err != nil {
		return nil, fmt.Errorf("program code: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	out := &codeArchive{cleanup: cleanup}
	if mk, err := exec.LookPath("mksquashfs"); err == nil {
		out.path, out.encoding = filepath.Join(tmp, "code.squashfs"), message.EncodingSquashfs
		ctx, cancel := context.WithTimeout(ctx, squashfsTimeout)
		defer cancel()
		msg, err := exec.CommandContext(ctx, mk, dir, out.path, "-noappend").CombinedOutput()
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("program code: mksquashfs %s: %w: %s", dir, err, lastLine(msg))
		}
	} else {
		out.path, out.encoding = filepath.Join(tmp, "code.zip"), message.EncodingZip
		if err := zipDir(dir, out.path); err != nil {
			cleanup()
			return nil, fmt.Errorf("program code: %w", err)
		}
	}
	fi, err := os.Stat(out.path)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("program code: %w", err)
	}
	out.size = fi.Size()
	return out, nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// zipDir writes the contents of dir (not dir itself) to a zip at dst, as
// shutil.make_archive does. Only directories and regular files go in: the
// compute node refuses symbolic links.
func zipDir(dir, dst string) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	files := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			hdr, err := zip.FileInfoHeader(fi)
			if err != nil {
				return err
			}
			hdr.Name = name + "/"
			_, err = zw.CreateHeader(hdr)
			return err
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file or a directory (a zip may only hold those; install mksquashfs to package it as squashfs)", p)
		}
		hdr, err := zip.FileInfoHeader(fi)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Method = name, zip.Deflate
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		files++
		_, err = io.Copy(w, src)
		return err
	})
	if err != nil {
		return err
	}
	if files == 0 {
		return fmt.Errorf("%s holds no file", dir)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// parseSpec reads a volume flag value "k=v,k2=v2": every key must be allowed,
// none repeated, and every required one present.
func parseSpec(flag, s string, allowed, required []string) (map[string]string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid --%s %q: %s", flag, s, fmt.Sprintf(format, args...))
	}
	m := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || k == "":
			return nil, bad("want key=value pairs separated by commas")
		case !slices.Contains(allowed, k):
			return nil, bad("unknown key %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
		if _, dup := m[k]; dup {
			return nil, bad("%s given twice", k)
		}
		m[k] = v
	}
	var missing []string
	for _, k := range required {
		if m[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, bad("missing %s", strings.Join(missing, ", "))
	}
	if mnt, ok := m["mount"]; ok && !path.IsAbs(mnt) {
		return nil, bad("mount %q is not an absolute path", mnt)
	}
	return m, nil
}

func parseSizeMiB(flag, s, v string, max int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("invalid --%s %q: size_mib %q is not a whole number from 1 to %d", flag, s, v, max)
	}
	return n, nil
}

func parseVolumeRef(flag, s, key, v string) error {
	if !message.IsItemHash(v) {
		return fmt.Errorf("invalid --%s %q: %s %q is not an item hash", flag, s, key, v)
	}
	return nil
}

// parsePersistentVolume reads name=..,mount=..,size_mib=..[,persistence=host|store][,parent=REF][,comment=..].
func parsePersistentVolume(s string) (message.MachineVolume, error) {
	const flag = "persistent-volume"
	m, err := parseSpec(flag, s, []string{"name", "mount", "size_mib", "persistence", "parent", "comment"}, []string{"name", "mount", "size_mib"})
	if err != nil {
		return message.MachineVolume{}, err
	}
	v := &message.PersistentVolume{Name: m["name"], Mount: m["mount"], Comment: m["comment"], Persistence: "host"}
	if p, ok := m["persistence"]; ok {
		if p != "host" && p != "store" {
			return message.MachineVolume{}, fmt.Errorf("invalid --%s %q: persistence %q is not host or store", flag, s, p)
		}
		v.Persistence = p
	}
	if v.SizeMiB, err = parseSizeMiB(flag, s, m["size_mib"], message.MaxPersistentMiB); err != nil {
		return message.MachineVolume{}, err
	}
	if ref, ok := m["parent"]; ok {
		if err := parseVolumeRef(flag, s, "parent", ref); err != nil {
			return message.MachineVolume{}, err
		}
		v.Parent = &message.VolumeParent{Ref: ref, UseLatest: true}
	}
	return message.MachineVolume{Persistent: v}, nil
}

// parseEphemeralVolume reads mount=..,size_mib=..[,comment=..].
func parseEphemeralVolume(s string) (message.MachineVolume, error) {
	const flag = "ephemeral-volume"
	m, err := parseSpec(flag, s, []string{"mount", "size_mib", "comment"}, []string{"mount", "size_mib"})
	if err != nil {
		return message.MachineVolume{}, err
	}
	v := &message.EphemeralVolume{Mount: m["mount"], Comment: m["comment"], Ephemeral: true}
	if v.SizeMiB, err = parseSizeMiB(flag, s, m["size_mib"], message.MaxEphemeralMiB); err != nil {
		return message.MachineVolume{}, err
	}
	return message.MachineVolume{Ephemeral: v}, nil
}

// parseImmutableVolume reads mount=..,ref=..[,use_latest=true|false][,comment=..].
func parseImmutableVolume(s string) (message.MachineVolume, error) {
	const flag = "immutable-volume"
	m, err := parseSpec(flag, s, []string{"mount", "ref", "use_latest", "comment"}, []string{"mount", "ref"})
	if err != nil {
		return message.MachineVolume{}, err
	}
	if err := parseVolumeRef(flag, s, "ref", m["ref"]); err != nil {
		return message.MachineVolume{}, err
	}
	v := &message.ImmutableVolume{Mount: m["mount"], Ref: m["ref"], Comment: m["comment"], UseLatest: true}
	if ul, ok := m["use_latest"]; ok {
		if v.UseLatest, err = strconv.ParseBool(ul); err != nil {
			return message.MachineVolume{}, fmt.Errorf("invalid --%s %q: use_latest %q is not true or false", flag, s, ul)
		}
	}
	return message.MachineVolume{Immutable: v}, nil
}

// parseVolumes reads the volume flags, persistent first, then ephemeral, then
// immutable, as the official CLI orders them; two volumes may not share a
// mount point.
func parseVolumes(persistent, ephemeral, immutable []string) ([]message.MachineVolume, error) {
	var out []message.MachineVolume
	for _, kind := range []struct {
		vals  []string
		parse func(string) (message.MachineVolume, error)
	}{{persistent, parsePersistentVolume}, {ephemeral, parseEphemeralVolume}, {immutable, parseImmutableVolume}} {
		for _, s := range kind.vals {
			v, err := kind.parse(s)
			if err != nil {
				return nil, err
			}
			for _, o := range out {
				if o.Mount() == v.Mount() {
					return nil, fmt.Errorf("two volumes are mounted on %s", v.Mount())
				}
			}
			out = append(out, v)
		}
	}
	return out, nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseEnvVars reads --env-vars K=V,K2=V2 (repeatable). Values cannot hold
// commas, as with the official CLI.
func parseEnvVars(vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, s := range vals {
		for _, part := range strings.Split(s, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			k, v, ok := strings.Cut(part, "=")
			k = strings.TrimSpace(k)
			if !ok {
				return nil, fmt.Errorf("invalid --env-vars %q: %q is not KEY=VALUE", s, part)
			}
			if !envNameRE.MatchString(k) {
				return nil, fmt.Errorf("invalid --env-vars %q: %q is not a variable name (letters, digits and _, not starting with a digit)", s, k)
			}
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("invalid --env-vars: %s given twice", k)
			}
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// resolveRuntime returns --runtime, else ALEPH_DEFAULT_RUNTIME, else the
// compute node's advertised default runtime.
func (a *app) resolveRuntime(ctx context.Context, c *client.Client, flag, crn string) (string, error) {
	rt, src := flag, "--runtime"
	if rt == "" {
		rt, src = a.env.Getenv(EnvDefaultRuntime), EnvDefaultRuntime
	}
	if rt != "" {
		if !message.IsItemHash(rt) {
			return "", fmt.Errorf("%s %q is not an item hash", src, rt)
		}
		return rt, nil
	}
	rt, err := c.CRNDefaultRuntime(ctx, crn)
	if err != nil {
		return "", fmt.Errorf("no runtime: give --runtime (or set %s); the compute node at %s advertises none: %w", EnvDefaultRuntime, crn, err)
	}
	return rt, nil
}

// programCodeJSON describes the code STORE of an upload or update.
type programCodeJSON struct {
	ItemHash string `json:"item_hash"`
	FileHash string `json:"file_hash"`
	Engine   string `json:"engine"`
	Encoding string `json:"encoding"`
	Size     int64  `json:"size"`
	Ref      string `json:"ref,omitempty"`
	Status   string `json:"status"`
}

// programUploadJSON is the --json output of program upload.
type programUploadJSON struct {
	writtenJSON
	Code    programCodeJSON `json:"code"`
	VMURL   string          `json:"vm_url"`
	HostURL string          `json:"host_url"`
}

func (a *app) programUploadCmd() *cobra.Command {
	var name, runtime, crn, channel, address string
	var vcpus, memory, seconds int
	var internet, updatable, persistent, printMessage bool
	var persistentVols, ephemeralVols, immutableVols, envVars []string
	cmd := &cobra.Command{
		Use:     "upload PATH ENTRYPOINT",
		Aliases: []string{"create"},
		Short:   "Upload code (a directory, a zip or a squashfs image) and publish a PROGRAM running it",
		Long: "Upload code and publish a PROGRAM. A directory is packaged as squashfs when mksquashfs is\n" +
			"installed, as a zip otherwise; a file must be a zip or a squashfs image. ENTRYPOINT is\n" +
			"module:app for an ASGI app, or the program to run. The runtime is --runtime, else\n" +
			EnvDefaultRuntime + ", else the one the compute node (--crn) advertises.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, entrypoint := args[0], strings.TrimSpace(args[1])
			if entrypoint == "" {
				return errors.New("empty ENTRYPOINT")
			}
			for _, r := range []struct {
				flag string
				v    int
			}{{"vcpus", vcpus}, {"memory", memory}, {"timeout-seconds", seconds}} {
				if r.v < 1 {
					return fmt.Errorf("--%s must be at least 1", r.flag)
				}
			}
			vols, err := parseVolumes(persistentVols, ephemeralVols, immutableVols)
			if err != nil {
				return err
			}
			vars, err := parseEnvVars(envVars)
			if err != nil {
				return err
			}
			if crn, err = checkCRN(crn); err != nil {
				return err
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			rt, err := a.resolveRuntime(ctx, c, runtime, crn)
			if err != nil {
				return err
			}
			arc, err := packageCode(ctx, src)
			if err != nil {
				return err
			}
			defer arc.cleanup()
			if name == "" {
				name = filepath.Base(filepath.Clean(src))
			}
			wo := client.WriteOptions{Channel: channel, Address: address, Sync: true}
			code, err := a.uploadCode(ctx, c, arc, "", wo)
			if err != nil {
				return fmt.Errorf("upload code: %w", err)
			}
			w, err := c.CreateProgram(ctx, client.ProgramOptions{
				Name: name, CodeRef: code.ItemHash, Encoding: arc.encoding, Entrypoint: entrypoint, RuntimeRef: rt,
				VCPUs: vcpus, MemoryMiB: memory, Seconds: seconds, Internet: internet, Updatable: updatable,
				Persistent: persistent, Volumes: vols, Variables: vars,
			}, wo)
			if err != nil {
				return fmt.Errorf("publish program (code STORE %s was uploaded): %w", code.ItemHash, err)
			}
			vm, host, err := programURLs(crn, w.Message.ItemHash)
			if err != nil {
				return err
			}
			codeOut := programCodeJSON{ItemHash: code.ItemHash, FileHash: code.FileHash, Engine: string(code.Engine),
				Encoding: arc.encoding, Size: code.Size, Status: string(code.Status)}
			env, err := w.Message.MarshalJSON()
			if err != nil {
				return err
			}
			if a.json {
				return jsonOut(a.out(), programUploadJSON{
					writtenJSON: writtenJSON{ItemHash: w.Message.ItemHash, Status: string(w.Status), HTTPStatus: w.HTTPStatus, Message: env, Content: w.Content},
					Code:        codeOut, VMURL: vm, HostURL: host,
				})
			}
			if printMessage {
				if err := block(a.out(), "message", env); err != nil {
					return err
				}
				if err := block(a.out(), "content", w.Content); err != nil {
					return err
				}
			}
			return fieldsOut(a.out(), [][2]string{
				{"program hash", w.Message.ItemHash},
				{"name", name},
				{"status", string(w.Status)},
				{"code STORE", code.ItemHash},
				{"code file", fmt.Sprintf("%s (%s, %s, %d bytes)", code.FileHash, code.Engine, arc.encoding, code.Size)},
				{"entrypoint", entrypoint},
				{"runtime", rt},
				{"url", vm},
				{"host url", host},
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "program name, metadata.name (default: the base name of PATH)")
	f.StringVar(&runtime, "runtime", "", "item hash of the runtime's STORE (default: env "+EnvDefaultRuntime+", else the compute node's)")
	f.IntVar(&vcpus, "vcpus", client.DefaultProgramVCPUs, "virtual CPUs")
	f.IntVar(&memory, "memory", client.DefaultProgramMemoryMiB, "memory in MiB")
	f.IntVar(&seconds, "timeout-seconds", client.DefaultProgramSeconds, "time limit of each request, in seconds")
	f.BoolVar(&internet, "internet", false, "give the program internet access")
	f.BoolVar(&updatable, "updatable", false, "allow a later PROGRAM to replace this one (allow_amend)")
	f.BoolVar(&persistent, "persistent", false, "keep the program running instead of starting it on demand")
	f.StringArrayVar(&persistentVols, "persistent-volume", nil, "name=..,mount=..,size_mib=..[,persistence=host|store][,parent=REF] (repeatable)")
	f.StringArrayVar(&ephemeralVols, "ephemeral-volume", nil, "mount=..,size_mib=.. (repeatable)")
	f.StringArrayVar(&immutableVols, "immutable-volume", nil, "mount=..,ref=..[,use_latest=true|false] (repeatable)")
	f.StringArrayVar(&envVars, "env-vars", nil, "environment variables K=V,K2=V2 (repeatable)")
	f.StringVar(&channel, "channel", "", "message channel")
	f.StringVar(&address, "address", "", "act for this address (needs its authorization; default: the account's address)")
	f.BoolVar(&printMessage, "print-message", false, "also print the PROGRAM message and its content")
	a.crnFlag(cmd, &crn)
	return cmd
}

// uploadCode uploads an archive as a STORE (storage engine up to 4 MiB, ipfs
// beyond), or, with programHash, as an update of that program's code.
func (a *app) uploadCode(ctx context.Context, c *client.Client, arc *codeArchive, programHash string, wo client.WriteOptions) (*client.UploadResult, error) {
	f, err := os.Open(arc.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if programHash != "" {
		return c.UpdateProgramCode(ctx, programHash, f, arc.encoding, wo)
	}
	engine := message.ItemStorage
	if arc.size > storageEngineMax {
		engine = message.ItemIPFS
	}
	set, finish := a.progress("uploading code", arc.size)
	defer finish()
	res, err := c.UploadFile(ctx, f, client.UploadOptions{Engine: engine, Name: filepath.Base(arc.path), WriteOptions: wo, Progress: set})
	if errors.Is(err, client.ErrTooLarge) {
		return res, fmt.Errorf("%w (over the node's limit for the %s engine)", err, engine)
	}
	return res, err
}

func (a *app) programUpdateCmd() *cobra.Command {
	var channel, address string
	cmd := &cobra.Command{
		Use:   "update HASH PATH",
		Short: "Upload new code for a program (a STORE updating its code STORE; the encoding must not change)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			hash := strings.TrimSpace(args[0])
			if err := hashArgs([]string{hash}); err != nil {
				return err
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			arc, err := packageCode(ctx, args[1])
			if err != nil {
				return err
			}
			defer arc.cleanup()
			res, err := a.uploadCode(ctx, c, arc, hash, client.WriteOptions{Channel: channel, Address: address, Sync: true})
			if err != nil {
				return err
			}
			out := programCodeJSON{ItemHash: res.ItemHash, FileHash: res.FileHash, Engine: string(res.Engine),
				Encoding: arc.encoding, Size: res.Size, Status: string(res.Status)}
			var sc struct {
				Ref string `json:"ref"`
			}
			_ = json.Unmarshal(res.Content, &sc)
			out.Ref = sc.Ref
			if a.json {
				return jsonOut(a.out(), out)
			}
			return fieldsOut(a.out(), [][2]string{
				{"program hash", hash},
				{"code STORE", out.ItemHash},
				{"updates", out.Ref},
				{"code file", fmt.Sprintf("%s (%s, %s, %d bytes)", out.FileHash, out.Engine, out.Encoding, out.Size)},
				{"status", out.Status},
			})
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "message channel (default: the code STORE's)")
	cmd.Flags().StringVar(&address, "address", "", "act for this address (needs its authorization; default: the account's address)")
	return cmd
}

// programJSON is one program in the --json output of list and show.
type programJSON struct {
	ItemHash   string          `json:"item_hash"`
	Name       string          `json:"name"`
	Owner      string          `json:"owner"`
	Sender     string          `json:"sender"`
	Channel    string          `json:"channel"`
	Time       float64         `json:"time"`
	Entrypoint string          `json:"entrypoint,omitempty"`
	Encoding   string          `json:"encoding,omitempty"`
	CodeRef    string          `json:"code_ref,omitempty"`
	RuntimeRef string          `json:"runtime_ref,omitempty"`
	AllowAmend bool            `json:"allow_amend"`
	Persistent bool            `json:"persistent"`
	VMURL      string          `json:"vm_url,omitempty"`
	HostURL    string          `json:"host_url,omitempty"`
	Content    json.RawMessage `json:"content"`
}

func programOut(p *client.Program) programJSON {
	out := programJSON{
		ItemHash: p.Message.ItemHash, Name: p.Name(), Owner: p.Owner(), Sender: p.Message.Sender,
		Channel: p.Message.Channel, Time: p.Message.Time.Seconds(), Content: p.Message.Content,
	}
	if pc := p.Content; pc != nil {
		out.Entrypoint, out.Encoding, out.CodeRef, out.RuntimeRef = pc.Code.Entrypoint, pc.Code.Encoding, pc.Code.Ref, pc.Runtime.Ref
		out.AllowAmend = pc.AllowAmend
		out.Persistent = pc.On.Persistent != nil && *pc.On.Persistent
	}
	return out
}

func (a *app) programListCmd() *cobra.Command {
	var address string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the programs an address owns (default: the account's), forgotten ones left out",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := a.accountAddress(address)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ps, err := c.ListPrograms(cmd.Context(), addr)
			if err != nil {
				return err
			}
			if a.json {
				out := make([]programJSON, 0, len(ps))
				for _, p := range ps {
					out = append(out, programOut(p))
				}
				return jsonOut(a.out(), out)
			}
			if len(ps) == 0 {
				_, err := fmt.Fprintf(a.out(), "%s has no programs\n", output.Sanitize(addr))
				return err
			}
			t := output.NewTable("ITEM HASH", "NAME", "CREATED", "ENTRYPOINT", "UPDATABLE", "PERSISTENT")
			for _, p := range ps {
				o := programOut(p)
				t.Row(o.ItemHash, output.Truncate(o.Name, 40), output.Time(p.Message.Time.Std()), output.Truncate(o.Entrypoint, 30),
					strconv.FormatBool(o.AllowAmend), strconv.FormatBool(o.Persistent))
			}
			return t.Write(a.out())
		},
	}
	cmd.Flags().StringVar(&address, "address", "", "owner address (default: the account's)")
	return cmd
}

func (a *app) programShowCmd() *cobra.Command {
	var crn string
	cmd := &cobra.Command{
		Use:   "show HASH",
		Short: "Show a program: its code, runtime, resources and URLs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash := strings.TrimSpace(args[0])
			if err := hashArgs([]string{hash}); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.GetProgram(cmd.Context(), hash)
			if err != nil {
				return err
			}
			o := programOut(p)
			if o.VMURL, o.HostURL, err = programURLs(crn, hash); err != nil {
				return err
			}
			if a.json {
				return jsonOut(a.out(), o)
			}
			pc := p.Content
			pairs := [][2]string{
				{"item hash", o.ItemHash},
				{"name", o.Name},
				{"owner", o.Owner},
				{"sender", o.Sender},
				{"channel", o.Channel},
				{"created", output.Time(p.Message.Time.Std())},
				{"entrypoint", o.Entrypoint},
				{"code", fmt.Sprintf("%s (%s, use_latest %t)", o.CodeRef, o.Encoding, pc.Code.UseLatest)},
				{"runtime", o.RuntimeRef},
				{"resources", fmt.Sprintf("%d vCPU, %d MiB, %d s per request", pc.Resources.VCPUs, pc.Resources.Memory, pc.Resources.Seconds)},
				{"internet", strconv.FormatBool(pc.Environment.Internet)},
				{"updatable", strconv.FormatBool(o.AllowAmend)},
				{"persistent", strconv.FormatBool(o.Persistent)},
				{"volumes", strconv.Itoa(len(pc.Volumes))},
				{"url", o.VMURL},
				{"host url", o.HostURL},
			}
			if err := fieldsOut(a.out(), pairs); err != nil {
				return err
			}
			return block(a.out(), "content", p.Message.Content)
		},
	}
	a.crnFlag(cmd, &crn)
	return cmd
}

// logJSON is one entry of the --json output of program logs.
type logJSON struct {
	Time       time.Time `json:"time"`
	Stream     string    `json:"stream"`
	Message    string    `json:"message"`
	Identifier string    `json:"identifier,omitempty"`
}

func (a *app) programLogsCmd() *cobra.Command {
	var crn string
	cmd := &cobra.Command{
		Use:   "logs HASH",
		Short: "Print a program's latest console output on a compute node (signed as its owner)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash := strings.TrimSpace(args[0])
			if !message.IsHexHash(hash) {
				return fmt.Errorf("%q is not a program hash (64 hex digits)", hash)
			}
			crn, err := checkCRN(crn)
			if err != nil {
				return err
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			sig := c.Signer()
			sign := func(domain, method, path string) (http.Header, error) {
				return ownerauth.SignRequest(sig, domain, method, path, a.env.Now())
			}
			logs, err := c.GetProgramLogs(cmd.Context(), crn, hash, sign)
			if err != nil {
				return err
			}
			if a.json {
				out := make([]logJSON, 0, len(logs))
				for _, l := range logs {
					out = append(out, logJSON{Time: l.Time, Stream: l.Stream, Message: l.Message, Identifier: l.Identifier})
				}
				return jsonOut(a.out(), out)
			}
			for _, l := range logs {
				ts := "-"
				if !l.Time.IsZero() {
					ts = l.Time.UTC().Format("2006-01-02T15:04:05.000000Z")
				}
				if _, err := fmt.Fprintf(a.out(), "%s %-6s %s\n", ts, output.Sanitize(l.Stream), output.Sanitize(l.Message)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	a.crnFlag(cmd, &crn)
	return cmd
}

// programDeleteJSON is the --json output of program delete.
type programDeleteJSON struct {
	Program writtenJSON  `json:"program"`
	Code    *writtenJSON `json:"code"`
	CodeRef string       `json:"code_ref"`
}

func written(w *client.WriteResult) (writtenJSON, error) {
	env, err := w.Message.MarshalJSON()
	if err != nil {
		return writtenJSON{}, err
	}
	return writtenJSON{ItemHash: w.Message.ItemHash, Status: string(w.Status), HTTPStatus: w.HTTPStatus, Message: env, Content: w.Content}, nil
}

func (a *app) programDeleteCmd() *cobra.Command {
	var keepCode bool
	var reason, channel, address string
	cmd := &cobra.Command{
		Use:   "delete HASH",
		Short: "Forget a program, then its code STORE (unless --keep-code)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash := strings.TrimSpace(args[0])
			if err := hashArgs([]string{hash}); err != nil {
				return err
			}
			c, _, err := a.signingClient()
			if err != nil {
				return err
			}
			res, err := c.ForgetProgram(cmd.Context(), hash, keepCode, reason, client.WriteOptions{Channel: channel, Address: address})
			if err != nil {
				return err
			}
			if a.json {
				out := programDeleteJSON{CodeRef: res.CodeRef}
				if out.Program, err = written(res.Program); err != nil {
					return err
				}
				if res.Code != nil {
					cw, err := written(res.Code)
					if err != nil {
						return err
					}
					out.Code = &cw
				}
				return jsonOut(a.out(), out)
			}
			codeForget := "kept (--keep-code)"
			if res.Code != nil {
				codeForget = res.Code.Message.ItemHash + " (" + string(res.Code.Status) + ")"
			}
			return fieldsOut(a.out(), [][2]string{
				{"program", hash},
				{"forgotten by", res.Program.Message.ItemHash + " (" + string(res.Program.Status) + ")"},
				{"code STORE", res.CodeRef},
				{"code forgotten by", codeForget},
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&keepCode, "keep-code", false, "do not forget the code STORE")
	f.StringVar(&reason, "reason", "", "why the program is deleted")
	f.StringVar(&channel, "channel", "", "message channel")
	f.StringVar(&address, "address", "", "act for this address (needs its authorization; default: the account's address)")
	return cmd
}
