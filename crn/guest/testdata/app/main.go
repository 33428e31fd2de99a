// Command app is the test program aleph-init runs as an executable: an HTTP
// server on $APP_ADDR, started after $DELAY_MS, or never with NEVER_LISTEN.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if os.Getenv("NEVER_LISTEN") != "" {
		time.Sleep(time.Hour) // killed by aleph-init
	}
	if ms, _ := strconv.Atoi(os.Getenv("DELAY_MS")); ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s?%s host=%s test=%s body=%s", r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Get("X-Test"), body)
	})
	http.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("k")))
	})
	http.HandleFunc("/__aleph_message__", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "event %s %s %s", r.Header.Get("X-Aleph-Event"), r.Header.Get("Content-Type"), body)
	})
	http.HandleFunc("/crash", func(http.ResponseWriter, *http.Request) { os.Exit(3) })
	if err := http.ListenAndServe(os.Getenv("APP_ADDR"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
