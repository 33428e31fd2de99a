// Command goserver is the test program of the supervisor's end-to-end tests:
// a static HTTP server on :8080, as aleph-vm's executable interface expects.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", "goserver")
		fmt.Fprintf(w, "hello from go %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile("/opt/code/version.txt")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		env := os.Environ()
		sort.Strings(env)
		fmt.Fprint(w, strings.Join(env, "\n"))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Custom", r.Header.Get("X-Custom"))
		w.WriteHeader(201)
		w.Write(b)
	})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) { os.Exit(3) })
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		time.Sleep(d)
		fmt.Fprint(w, "slept")
	})
	mux.HandleFunc("/counter", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("path")
		b, _ := os.ReadFile(p)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		n++
		if err := os.WriteFile(p, []byte(strconv.Itoa(n)), 0o644); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		f, _ := os.Open(p)
		f.Sync()
		f.Close()
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		fmt.Fprint(w, len(keep))
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		err := os.WriteFile(r.URL.Query().Get("path"), []byte("x"), 0o644)
		if err != nil {
			http.Error(w, err.Error(), 403)
			return
		}
		fmt.Fprint(w, "written")
	})
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, r.URL.Query().Get("net"), r.URL.Query().Get("addr"))
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		c.Close()
		fmt.Fprint(w, "connected")
	})
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		c := http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	mux.HandleFunc("/resolv", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/guestapi", func(w http.ResponseWriter, r *http.Request) {
		sock := os.Getenv("ALEPH_API_UNIX_SOCKET")
		c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
		resp, err := c.Get("http://localhost" + r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	mux.HandleFunc("/__aleph_message__", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		os.WriteFile("/tmp/last-event.json", b, 0o644)
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/last-event", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile("/tmp/last-event.json")
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		w.Write(b)
	})
	addr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		addr = "127.0.0.1:" + p // benchmarks run it on the host as a baseline
	}
	fmt.Println("goserver listening on " + addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
