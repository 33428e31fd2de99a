// Command app is the program vmsmoke runs in the VM: an HTTP server on
// 127.0.0.1:8080 that reports what the guest looks like.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	http.HandleFunc("/ifaces", func(w http.ResponseWriter, r *http.Request) {
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			addrs, _ := i.Addrs()
			fmt.Fprintf(w, "%s %s %v\n", i.Name, i.Flags, addrs)
		}
	})
	http.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("f"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	})
	http.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := os.WriteFile(r.URL.Query().Get("f"), body, 0o644); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	http.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Join(os.Environ(), "\n"))
	})
	http.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 3*time.Second)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(io.LimitReader(c, 1024))
		w.Write(b)
	})
	http.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		sock := os.Getenv("ALEPH_API_UNIX_SOCKET")
		cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		res, err := cl.Get("http://localhost" + r.URL.Query().Get("p"))
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer res.Body.Close()
		io.Copy(w, res.Body)
	})
	fmt.Println("app: listening")
	if err := http.ListenAndServe("127.0.0.1:8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
