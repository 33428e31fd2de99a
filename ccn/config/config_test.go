package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "alephd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	c := Default()
	if err := c.LoadFile(writeFile(t, "db: postgres://file\napi:\n  listen: 127.0.0.1:1\npipeline:\n  sync_timeout: 5s\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadEnv([]string{"ALEPH_API_LISTEN=127.0.0.1:2", "ALEPH_PIPELINE_MAX_RETRIES=3", "OTHER=x", "ALEPH_LOG_LEVEL=debug"}); err != nil {
		t.Fatal(err)
	}
	if c.DB != "postgres://file" || c.API.Listen != "127.0.0.1:2" || c.Pipeline.MaxRetries != 3 ||
		time.Duration(c.Pipeline.SyncTimeout) != 5*time.Second || c.Log.Level != "debug" || c.API.BodyLimit != 1<<20 {
		t.Errorf("unexpected config: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		name string
		load func(c *Config) error
		want string
	}{
		{"unknown yaml key", func(c *Config) error { return c.LoadFile(writeFile(t, "api:\n  lisen: x\n")) }, "lisen"},
		{"bad duration", func(c *Config) error { return c.LoadFile(writeFile(t, "pipeline:\n  max_backoff: soon\n")) }, "line 2"},
		{"bad env int", func(c *Config) error { return c.LoadEnv([]string{"ALEPH_API_BODY_LIMIT=big"}) }, "ALEPH_API_BODY_LIMIT"},
		{"bad env duration", func(c *Config) error { return c.LoadEnv([]string{"ALEPH_PIPELINE_SYNC_TIMEOUT=1x"}) }, "ALEPH_PIPELINE_SYNC_TIMEOUT"},
		{"missing file", func(c *Config) error { return c.LoadFile("/nonexistent/alephd.yaml") }, "no such file"},
		{"bad level", func(c *Config) error { c.Log.Level = "loud"; return c.Validate() }, "log.level"},
		{"tiny body limit", func(c *Config) error { c.API.BodyLimit = 10; return c.Validate() }, "api.body_limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := tt.load(&c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestEmptyFileAndDSN(t *testing.T) {
	c := Dev("/tmp/x")
	if err := c.LoadFile(writeFile(t, "")); err != nil {
		t.Fatalf("empty file: %v", err)
	}
	if c.DatabaseDSN() != "/tmp/x/aleph.db" || c.API.Listen != "127.0.0.1:4024" {
		t.Errorf("dev defaults: %+v", c)
	}
	c.DB = "postgres://x"
	if c.DatabaseDSN() != "postgres://x" {
		t.Error("explicit db ignored")
	}
}

func TestSizeParsing(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr bool
	}{
		{"1024", 1024, false},
		{"25MiB", 25 << 20, false},
		{"1 GiB", 1 << 30, false},
		{"4GiB", 4 << 30, false},
		{"10KiB", 10 << 10, false},
		{"7B", 7, false},
		{"-1", 0, true},
		{"1.5GiB", 0, true},
		{"lots", 0, true},
		{"9999999TiB", 0, true},
	}
	for _, tt := range tests {
		var z Size
		err := z.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr || (!tt.wantErr && z != tt.want) {
			t.Errorf("Size(%q) = %d, %v; want %d, error %v", tt.in, z, err, tt.want, tt.wantErr)
		}
	}
}

func TestStorageSettingsFromEnvAndValidation(t *testing.T) {
	c := Dev(t.TempDir())
	if err := c.LoadEnv([]string{"ALEPH_STORAGE_MAX_FILE_SIZE=200MiB", "ALEPH_IPFS_API=http://127.0.0.1:5001"}); err != nil {
		t.Fatal(err)
	}
	if c.Storage.MaxFileSize != 200<<20 || c.IPFS.API != "http://127.0.0.1:5001" {
		t.Fatalf("env not applied: %+v %+v", c.Storage, c.IPFS)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.IPFS.API = "127.0.0.1:5001"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ipfs.api") {
		t.Fatalf("bad ipfs.api accepted: %v", err)
	}
}
