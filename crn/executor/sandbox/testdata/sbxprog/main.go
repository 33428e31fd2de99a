// Command sbxprog is the sandbox tests' PID 1: an HTTP server on a Unix
// socket in /run/aleph whose handlers probe what the sandbox allows.
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sleep" {
		time.Sleep(time.Hour)
		return
	}
	if len(os.Args) < 3 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: sbxprog serve <socket> | sleep")
		os.Exit(2)
	}
	dir := os.Args[2]
	ln, err := net.Listen("unix", dir+"/http.sock")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if c, err := net.Dial("unix", dir+"/ready.sock"); err == nil {
		fmt.Fprintln(c, "ready")
		c.Close()
	}
	fmt.Println("sbxprog serving")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		reply(w, string(b), err)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		reply(w, "", os.WriteFile(r.URL.Query().Get("path"), []byte("x"), 0o644))
	})
	mux.HandleFunc("/ls", func(w http.ResponseWriter, r *http.Request) {
		ents, err := os.ReadDir(r.URL.Query().Get("path"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		reply(w, strings.Join(names, ","), err)
	})
	mux.HandleFunc("/ifaces", func(w http.ResponseWriter, r *http.Request) {
		ifs, err := net.Interfaces()
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		reply(w, strings.Join(names, ","), err)
	})
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 2*time.Second)
		if err == nil {
			c.Close()
		}
		reply(w, "", err)
	})
	mux.HandleFunc("/mount", func(w http.ResponseWriter, r *http.Request) {
		reply(w, "", syscall.Mount("tmpfs", "/tmp", "tmpfs", 0, ""))
	})
	mux.HandleFunc("/unshare", func(w http.ResponseWriter, r *http.Request) {
		reply(w, "", syscall.Unshare(syscall.CLONE_NEWNS))
	})
	mux.HandleFunc("/hog", func(w http.ResponseWriter, r *http.Request) {
		mib, _ := strconv.Atoi(r.URL.Query().Get("mib"))
		var keep [][]byte
		for i := 0; i < mib; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		reply(w, strconv.Itoa(len(keep)), nil)
	})
	mux.HandleFunc("/spawn", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		var procs []*exec.Cmd
		var err error
		for i := 0; i < n; i++ {
			c := exec.Command("/proc/self/exe", "sleep")
			if err = c.Start(); err != nil {
				break
			}
			procs = append(procs, c)
		}
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
		reply(w, strconv.Itoa(len(procs)), err)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		os.Exit(code)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// reply writes "ok:<data>" or "err:<error>"; errno errors keep their name.
func reply(w http.ResponseWriter, data string, err error) {
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			fmt.Fprintf(w, "err:errno=%d:%v", int(errno), err)
			return
		}
		fmt.Fprintf(w, "err:%v", err)
		return
	}
	fmt.Fprint(w, "ok:"+data)
}
