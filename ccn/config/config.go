// Package config holds the core channel node's configuration and loads it from,
// in increasing precedence: built-in defaults, a YAML file, ALEPH_* environment
// variables, and command-line flags (applied by the caller).
//
// Environment names are ALEPH_ followed by the YAML path in upper case joined by
// underscores: api.listen is ALEPH_API_LISTEN, pipeline.max_retries is
// ALEPH_PIPELINE_MAX_RETRIES.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the node configuration.
type Config struct {
	// DataDir holds the SQLite database and, later, files and keys.
	DataDir string `yaml:"data_dir"`
	// DB is the database: a postgres:// DSN, or a SQLite path. Empty means
	// <data_dir>/aleph.db.
	DB string `yaml:"db"`
	// Channel is the gossip topic and default channel set of this network.
	Topic    string   `yaml:"topic"`
	API      API      `yaml:"api"`
	Pipeline Pipeline `yaml:"pipeline"`
	Storage  Storage  `yaml:"storage"`
	IPFS     IPFS     `yaml:"ipfs"`
	P2P      P2P      `yaml:"p2p"`
	Log      Log      `yaml:"log"`
}

// P2P configures the node's libp2p face: gossip with the other core channel
// nodes, the block exchange and anti-entropy.
type P2P struct {
	// Enabled runs the libp2p host; without it the node is alone.
	Enabled bool `yaml:"enabled"`
	// Listen are the host's multiaddrs.
	Listen []string `yaml:"listen"`
	// Peers are bootstrap multiaddrs ending in /p2p/<peer id>.
	Peers []string `yaml:"peers"`
	// AllowPeers, when set, are the only peer IDs the node talks to (bootstrap
	// peers are always allowed).
	AllowPeers []string `yaml:"allow_peers"`
	// KeyFile holds the identity key (created on first start); default
	// <data_dir>/p2p/identity.key. pyaleph's PKCS#8 DER RSA keys work too.
	KeyFile string `yaml:"key_file"`
	// AliveTopic carries the ALIVE heartbeats; AliveInterval spaces them.
	AliveTopic    string   `yaml:"alive_topic"`
	AliveInterval Duration `yaml:"alive_interval"`
	// ReconnectDelay spaces dials to bootstrap and announced peers.
	ReconnectDelay Duration `yaml:"reconnect_delay"`
	// AnnounceHTTP is the API URL announced to peers, which fetch files from
	// it; default: the API listen address when it is not a wildcard.
	AnnounceHTTP string `yaml:"announce_http"`
	// PeerRate and PeerBurst bound the gossip messages taken from one peer per
	// second.
	PeerRate  int `yaml:"peer_rate"`
	PeerBurst int `yaml:"peer_burst"`
	// SyncInterval spaces anti-entropy sessions with a random peer (a session
	// also runs whenever a peer connects).
	SyncInterval Duration `yaml:"sync_interval"`
}

// Storage configures the local file store and its garbage collector.
type Storage struct {
	// Dir holds the files. Empty means <data_dir>/files.
	Dir string `yaml:"dir"`
	// GracePeriod keeps unpinned uploads and forgotten files this long.
	GracePeriod Duration `yaml:"grace_period"`
	// GCPeriod is how often the garbage collector runs.
	GCPeriod Duration `yaml:"gc_period"`
	// MaxFileSize bounds an authenticated storage-engine upload.
	MaxFileSize Size `yaml:"max_file_size"`
	// MaxUnauthenticatedUploadFileSize bounds uploads without a signed STORE
	// message (both engines) and add_json bodies.
	MaxUnauthenticatedUploadFileSize Size `yaml:"max_unauthenticated_upload_file_size"`
	// NoSync skips fsync of stored files (tests and benchmarks only).
	NoSync bool `yaml:"no_sync"`
}

// IPFS configures the ipfs engine.
type IPFS struct {
	// API is the HTTP RPC address of an optional external kubo node
	// ("http://127.0.0.1:5001"). Files are then also pinned there and read
	// from there when missing locally. Empty means the node works alone.
	API string `yaml:"api"`
	// MaxUploadFileSize bounds an authenticated ipfs upload.
	MaxUploadFileSize Size `yaml:"max_upload_file_size"`
	// MaxUploadCARSize bounds a CAR upload.
	MaxUploadCARSize Size `yaml:"max_upload_car_size"`
}

// API configures the HTTP server.
type API struct {
	// Listen is the host:port to serve on.
	Listen string `yaml:"listen"`
	// BodyLimit caps request bodies, in bytes (pyaleph: 1 MiB).
	BodyLimit int64 `yaml:"body_limit"`
	// MaxWebsockets caps concurrent /api/ws0/messages connections.
	MaxWebsockets int `yaml:"max_websockets"`
	// ShutdownTimeout bounds a graceful shutdown.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Pipeline configures message processing.
type Pipeline struct {
	MaxRetries  int      `yaml:"max_retries"`
	MaxBackoff  Duration `yaml:"max_backoff"`
	SyncTimeout Duration `yaml:"sync_timeout"`
	BatchSize   int      `yaml:"batch_size"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Size is a byte count, written as an integer or with a KiB, MiB, GiB or TiB
// suffix ("25MiB").
type Size int64

// UnmarshalText parses a size.
func (z *Size) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size such as 25MiB", string(b))
	}
	*z = Size(n * mult)
	return nil
}

// UnmarshalYAML parses a size and, on error, names the line of the setting.
func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	if err := z.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// MarshalText writes the byte count.
func (z Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(z), 10)), nil }

// Duration is a time.Duration written as "30s" in YAML and environment variables.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML parses a duration and, on error, names the line of the setting.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 30s", n.Line, n.Value)
	}
	return nil
}

// MarshalText writes a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Default returns the defaults of a production node.
func Default() Config {
	return Config{
		DataDir: "/var/lib/alephd",
		Topic:   "ALEPH-TEST",
		API: API{
			Listen:          "0.0.0.0:4024",
			BodyLimit:       1 << 20,
			MaxWebsockets:   10_000,
			ShutdownTimeout: Duration(30 * time.Second),
		},
		Pipeline: Pipeline{
			MaxRetries:  10,
			MaxBackoff:  Duration(300 * time.Second),
			SyncTimeout: Duration(30 * time.Second),
			BatchSize:   256,
		},
		Storage: Storage{
			GracePeriod:                      Duration(24 * time.Hour),
			GCPeriod:                         Duration(24 * time.Hour),
			MaxFileSize:                      100 << 20,
			MaxUnauthenticatedUploadFileSize: 25 << 20,
		},
		IPFS: IPFS{MaxUploadFileSize: 1 << 30, MaxUploadCARSize: 4 << 30},
		P2P: P2P{
			Enabled:        true,
			Listen:         []string{"/ip4/0.0.0.0/tcp/4025"},
			AliveTopic:     "ALIVE",
			AliveInterval:  Duration(120 * time.Second),
			ReconnectDelay: Duration(60 * time.Second),
			PeerRate:       5000,
			PeerBurst:      10000,
			SyncInterval:   Duration(30 * time.Second),
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// FilesDir returns Storage.Dir, or <data_dir>/files.
func (c *Config) FilesDir() string {
	if c.Storage.Dir != "" {
		return c.Storage.Dir
	}
	return filepath.Join(c.DataDir, "files")
}

// Dev returns the defaults of `alephd dev`: everything local.
func Dev(dataDir string) Config {
	c := Default()
	c.DataDir = dataDir
	c.API.Listen = "127.0.0.1:4024"
	c.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/4025"}
	c.P2P.AliveInterval = Duration(5 * time.Second)
	c.P2P.ReconnectDelay = Duration(5 * time.Second)
	c.P2P.SyncInterval = Duration(5 * time.Second)
	return c
}

// P2PKeyFile returns the identity key's path.
func (c *Config) P2PKeyFile() string {
	if c.P2P.KeyFile != "" {
		return c.P2P.KeyFile
	}
	return filepath.Join(c.DataDir, "p2p", "identity.key")
}

// DatabaseDSN returns DB, or the SQLite file in DataDir when DB is empty.
func (c *Config) DatabaseDSN() string {
	if c.DB != "" {
		return c.DB
	}
	return filepath.Join(c.DataDir, "aleph.db")
}

// Validate reports the first invalid setting, naming it.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "" && c.DB == "":
		return errors.New("config: data_dir or db must be set")
	case c.API.Listen == "":
		return errors.New("config: api.listen must be set")
	case c.API.BodyLimit < 1024:
		return fmt.Errorf("config: api.body_limit %d is too small (minimum 1024)", c.API.BodyLimit)
	case c.Pipeline.MaxRetries < 0:
		return errors.New("config: pipeline.max_retries must not be negative")
	case c.Pipeline.BatchSize < 1:
		return errors.New("config: pipeline.batch_size must be at least 1")
	case c.DataDir == "" && c.Storage.Dir == "":
		return errors.New("config: data_dir or storage.dir must be set")
	case c.Storage.GracePeriod <= 0 || c.Storage.GCPeriod <= 0:
		return errors.New("config: storage.grace_period and storage.gc_period must be positive")
	case c.Storage.MaxFileSize <= 0 || c.Storage.MaxUnauthenticatedUploadFileSize <= 0 ||
		c.IPFS.MaxUploadFileSize <= 0 || c.IPFS.MaxUploadCARSize <= 0:
		return errors.New("config: upload size limits must be positive")
	}
	if c.IPFS.API != "" {
		u, err := url.Parse(c.IPFS.API)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: ipfs.api %q is not an http(s) URL", c.IPFS.API)
		}
	}
	if c.P2P.Enabled {
		switch {
		case len(c.P2P.Listen) == 0:
			return errors.New("config: p2p.listen must be set when p2p is enabled")
		case c.P2P.KeyFile == "" && c.DataDir == "":
			return errors.New("config: p2p.key_file or data_dir must be set when p2p is enabled")
		case c.P2P.PeerRate <= 0 || c.P2P.PeerBurst <= 0:
			return errors.New("config: p2p.peer_rate and p2p.peer_burst must be positive")
		case c.P2P.AliveInterval <= 0 || c.P2P.ReconnectDelay <= 0 || c.P2P.SyncInterval <= 0:
			return errors.New("config: p2p.alive_interval, p2p.reconnect_delay and p2p.sync_interval must be positive")
		}
		if c.P2P.AnnounceHTTP != "" {
			u, err := url.Parse(c.P2P.AnnounceHTTP)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("config: p2p.announce_http %q is not an http(s) URL", c.P2P.AnnounceHTTP)
			}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("config: log.format %q is not text or json", c.Log.Format)
	}
	return nil
}

// LoadFile overlays a YAML file on c. Unknown keys are errors, so typos are caught.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // an empty file overrides nothing
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// LoadEnv overlays ALEPH_* variables from environ (as os.Environ returns it).
func (c *Config) LoadEnv(environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "ALEPH_") {
			env[k] = v
		}
	}
	return overlayEnv(reflect.ValueOf(c).Elem(), "ALEPH", env)
}

var textUnmarshaler = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()

func overlayEnv(v reflect.Value, prefix string, env map[string]string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := overlayEnv(fv, name, env); err != nil {
				return err
			}
			continue
		}
		raw, ok := env[name]
		if !ok {
			continue
		}
		if err := setFromString(fv, raw); err != nil {
			return fmt.Errorf("config: %s=%q: %w", name, raw, err)
		}
	}
	return nil
}

func setFromString(v reflect.Value, s string) error {
	if v.Addr().Type().Implements(textUnmarshaler) {
		return v.Addr().Interface().(interface{ UnmarshalText([]byte) error }).UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return errors.New("not an integer")
		}
		v.SetInt(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported setting type %s", v.Type())
		}
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		v.Set(reflect.ValueOf(items))
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("not a boolean")
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}
