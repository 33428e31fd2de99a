package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/internal/loadgen"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/unixfs"
)

type filesOpts struct {
	url        string
	sizeMiB    int
	bigMiB     int
	ttfbRounds int
	kubo       string
	tmp        string
}

func newFilesCmd() *cobra.Command {
	var o filesOpts
	cmd := &cobra.Command{
		Use:   "files",
		Short: "Measure uploads (storage and ipfs add_file), raw downloads, gateway time to first byte and server RSS",
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runFiles(cmd.Context(), o)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "http://127.0.0.1:4024", "node base URL")
	f.IntVar(&o.sizeMiB, "size", 256, "MiB of the upload and download runs")
	f.IntVar(&o.bigMiB, "big", 1024, "MiB of the file for the gateway and RSS runs (0 skips them)")
	f.IntVar(&o.ttfbRounds, "ttfb-rounds", 50, "gateway requests for the time to first byte")
	f.StringVar(&o.kubo, "kubo", os.Getenv("ALEPH_TEST_KUBO"), "kubo binary: check the ipfs CID against `ipfs add --only-hash`")
	f.StringVar(&o.tmp, "tmp", os.TempDir(), "where to write the generated files")
	return cmd
}

// FilesResult is the JSON the files command prints. Rates are MiB/s of file bytes.
type FilesResult struct {
	SizeMiB          int     `json:"size_mib"`
	StorageUpload    float64 `json:"storage_add_file_mib_s"`
	IPFSUpload       float64 `json:"ipfs_add_file_mib_s"`
	CID              string  `json:"cid"`
	KuboCID          string  `json:"kubo_cid,omitempty"`
	StorageDownload  float64 `json:"storage_raw_download_mib_s"`
	IPFSDownload     float64 `json:"ipfs_raw_download_mib_s"`
	BigMiB           int     `json:"big_mib,omitempty"`
	GatewayTTFBp50ms float64 `json:"gateway_ttfb_p50_ms,omitempty"`
	GatewayTTFBp99ms float64 `json:"gateway_ttfb_p99_ms,omitempty"`
	RSSBaseMiB       float64 `json:"rss_base_mib,omitempty"`
	RSSUploadMaxMiB  float64 `json:"rss_max_during_big_upload_mib,omitempty"`
	RSSDownMaxMiB    float64 `json:"rss_max_during_big_download_mib,omitempty"`
	BigUpload        float64 `json:"big_ipfs_add_file_mib_s,omitempty"`
	BigDownload      float64 `json:"big_gateway_download_mib_s,omitempty"`
}

func runFiles(ctx context.Context, o filesOpts) (*FilesResult, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true, WriteBufferSize: 1 << 20, ReadBufferSize: 1 << 20}}
	accts, err := loadgen.Accounts(1)
	if err != nil {
		return nil, err
	}
	signer := accts[0]
	size := int64(o.sizeMiB) << 20
	seed := uint64(time.Now().UnixNano()) // new bytes each run: nothing is deduplicated
	path, err := randomFile(o.tmp, size, seed)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	res := &FilesResult{SizeMiB: o.sizeMiB}

	// storage engine: hash first (not timed), as every client must before it signs.
	sum, err := sha256File(path)
	if err != nil {
		return nil, err
	}
	d, err := upload(ctx, hc, o.url, "/api/v0/storage/add_file", signer, message.ItemStorage, sum, path)
	if err != nil {
		return nil, fmt.Errorf("storage upload: %w", err)
	}
	res.StorageUpload = mibPerSec(size, d)

	cid, err := cidFile(path)
	if err != nil {
		return nil, err
	}
	res.CID = cid
	if d, err = upload(ctx, hc, o.url, "/api/v0/ipfs/add_file", signer, message.ItemIPFS, cid, path); err != nil {
		return nil, fmt.Errorf("ipfs upload: %w", err)
	}
	res.IPFSUpload = mibPerSec(size, d)
	if o.kubo != "" {
		if res.KuboCID, err = kuboHash(ctx, o.kubo, path); err != nil {
			return nil, err
		}
		if res.KuboCID != cid {
			return nil, fmt.Errorf("kubo's ipfs add gives %s, the node %s", res.KuboCID, cid)
		}
	}

	for _, dl := range []struct {
		hash string
		dst  *float64
	}{{sum, &res.StorageDownload}, {cid, &res.IPFSDownload}} {
		n, d, err := download(ctx, hc, o.url+"/api/v0/storage/raw/"+dl.hash)
		if err != nil {
			return nil, err
		}
		if n != size {
			return nil, fmt.Errorf("downloaded %d bytes of %s, want %d", n, dl.hash, size)
		}
		*dl.dst = mibPerSec(size, d)
	}

	if o.bigMiB > 0 {
		if err := bigRun(ctx, hc, o, signer, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// bigRun uploads a big file through ipfs/add_file and downloads it through the
// gateway while sampling the server's RSS, then measures the gateway's time to
// first byte on it.
func bigRun(ctx context.Context, hc *http.Client, o filesOpts, signer message.Signer, res *FilesResult) error {
	size := int64(o.bigMiB) << 20
	path, err := randomFile(o.tmp, size, uint64(time.Now().UnixNano())+1)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	cid, err := cidFile(path)
	if err != nil {
		return err
	}
	res.BigMiB = o.bigMiB
	base, err := rss(ctx, hc, o.url)
	if err != nil {
		return err
	}
	res.RSSBaseMiB = base

	var d time.Duration
	res.RSSUploadMaxMiB, err = sampleRSS(ctx, hc, o.url, func() error {
		d, err = upload(ctx, hc, o.url, "/api/v0/ipfs/add_file", signer, message.ItemIPFS, cid, path)
		return err
	})
	if err != nil {
		return fmt.Errorf("big upload: %w", err)
	}
	res.BigUpload = mibPerSec(size, d)
	res.RSSDownMaxMiB, err = sampleRSS(ctx, hc, o.url, func() error {
		n, dd, err := download(ctx, hc, o.url+"/ipfs/"+cid)
		if err == nil && n != size {
			err = fmt.Errorf("gateway sent %d bytes, want %d", n, size)
		}
		d = dd
		return err
	})
	if err != nil {
		return fmt.Errorf("big download: %w", err)
	}
	res.BigDownload = mibPerSec(size, d)

	var lat []time.Duration
	for range o.ttfbRounds {
		t, err := ttfb(ctx, hc, o.url+"/ipfs/"+cid)
		if err != nil {
			return err
		}
		lat = append(lat, t)
	}
	slices.Sort(lat)
	res.GatewayTTFBp50ms = ms(lat[len(lat)/2])
	res.GatewayTTFBp99ms = ms(lat[(len(lat)*99)/100])
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mibPerSec(n int64, d time.Duration) float64 {
	return float64(int64(float64(n)/float64(1<<20)/d.Seconds()*10)) / 10
}

// randomFile writes n pseudo-random bytes (incompressible, not timed).
func randomFile(dir string, n int64, seed uint64) (string, error) {
	f, err := os.CreateTemp(dir, "alephbench-*.bin")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	r := rand.NewChaCha8(key)
	buf := make([]byte, 1<<20)
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		r.Read(buf[:k])
		w.Write(buf[:k])
		left -= k
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func cidFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	c, err := unixfs.Sum(bufio.NewReaderSize(f, 1<<20), unixfs.KuboV0)
	if err != nil {
		return "", err
	}
	return c.String(), nil
}

// kuboHash runs `ipfs add -Q --only-hash` in a throwaway repository.
func kuboHash(ctx context.Context, bin, path string) (string, error) {
	repo, err := os.MkdirTemp("", "alephbench-ipfs-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(repo)
	env := append(os.Environ(), "IPFS_PATH="+filepath.Join(repo, "r"))
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if _, err := run("init", "--profile=test", "--empty-repo"); err != nil {
		return "", fmt.Errorf("ipfs init: %w", err)
	}
	h, err := run("add", "-Q", "--only-hash", path)
	if err != nil {
		return "", fmt.Errorf("ipfs add: %w", err)
	}
	return h, nil
}

// upload sends a signed STORE of hash with the file at path, metadata first,
// and returns the time from the first byte sent to the answer.
func upload(ctx context.Context, hc *http.Client, base, route string, signer message.Signer, engine message.ItemType, hash, path string) (time.Duration, error) {
	b := message.Builder{Signer: signer}
	built, err := b.Build(ctx, message.TypeStore, &message.StoreContent{ItemType: engine, ItemHash: hash}, "BENCH")
	if err != nil {
		return 0, err
	}
	meta, err := json.Marshal(map[string]any{"message": built.Message, "sync": false})
	if err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("metadata", string(meta))
		if err == nil {
			var part io.Writer
			if part, err = mw.CreateFormFile("file", "bench.bin"); err == nil {
				_, err = io.CopyBuffer(part, f, make([]byte, 1<<20))
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+route, pr)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("%s: %d %s", route, resp.StatusCode, body)
	}
	var out struct{ Hash string }
	if err := json.Unmarshal(body, &out); err != nil || out.Hash != hash {
		return 0, fmt.Errorf("%s: answered %s, want hash %s", route, body, hash)
	}
	return d, nil
}

func download(ctx context.Context, hc *http.Client, u string) (int64, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	n, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 1<<20))
	return n, time.Since(start), err
}

// ttfb is the time from sending a GET to the first byte of its body.
func ttfb(ctx context.Context, hc *http.Client, u string) (time.Duration, error) {
	var first time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	var one [1]byte
	_, err = io.ReadFull(resp.Body, one[:])
	got := time.Now()
	resp.Body.Close() // abandons the rest: a new connection next time
	if err != nil {
		return 0, err
	}
	if first.IsZero() {
		first = got
	}
	return got.Sub(start), nil
}

// rss reads the node's resident set from its /metrics, in MiB.
func rss(ctx context.Context, hc *http.Client, base string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f / (1 << 20), err
		}
	}
	return 0, errors.New("no process_resident_memory_bytes in /metrics")
}

// sampleRSS runs fn while sampling the node's RSS every 20 ms; it returns the
// largest sample.
func sampleRSS(ctx context.Context, hc *http.Client, base string, fn func() error) (float64, error) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := rss(ctx, hc, base); err == nil {
				for {
					old := peak.Load()
					if uint64(v*1024) <= old || peak.CompareAndSwap(old, uint64(v*1024)) {
						break
					}
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	err := fn()
	close(done)
	wg.Wait()
	return float64(peak.Load()) / 1024, err
}
