package runtime

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Manifest records what a runtime image is and what it was built from. It
// holds no time or host name: the same inputs give the same manifest.
type Manifest struct {
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	Variant string `json:"variant"` // "minimal" or "python"
	// Debian runtime: where the packages came from.
	Suite        string `json:"suite,omitempty"`
	Mirror       string `json:"mirror,omitempty"`
	Architecture string `json:"architecture,omitempty"`
	// ReleaseSHA256 is the hash of the suite's InRelease file, which pins
	// every package version the mirror offered.
	ReleaseSHA256 string            `json:"release_sha256,omitempty"`
	Packages      map[string]string `json:"packages,omitempty"` // name → version
	// Inputs copied into the image.
	AlephInitSHA256 string `json:"aleph_init_sha256"`
	BusyboxSHA256   string `json:"busybox_sha256,omitempty"`
	CACertsSHA256   string `json:"ca_certs_sha256,omitempty"`
	// BuiltWith names the tools' versions (debootstrap, mksquashfs).
	BuiltWith map[string]string `json:"built_with"`
}

// ManifestPath is where Build writes the manifest of image.
func ManifestPath(image string) string { return image + ".json" }

// maxManifest bounds ReadManifest: a Debian runtime lists ~150 packages.
const maxManifest = 1 << 20

// ReadManifest reads the manifest of image.
func ReadManifest(image string) (*Manifest, error) {
	f, err := os.Open(ManifestPath(image))
	if err != nil {
		return nil, fmt.Errorf("runtime manifest: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("runtime manifest: %w", err)
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("runtime manifest %s: larger than %d bytes", f.Name(), maxManifest)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("runtime manifest %s: %w", f.Name(), err)
	}
	if m.SHA256 == "" {
		return nil, fmt.Errorf("runtime manifest %s: no sha256", f.Name())
	}
	return &m, nil
}

// writeManifest writes m next to image, atomically.
func writeManifest(image string, m *Manifest) (string, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	path := ManifestPath(image)
	f, err := os.CreateTemp(filepath.Dir(path), ".manifest-")
	if err != nil {
		return "", fmt.Errorf("write manifest: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return "", fmt.Errorf("write manifest: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write manifest: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("write manifest: %w", err)
	}
	return path, nil
}
