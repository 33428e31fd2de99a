// Command vmsmoke boots aleph-init in a QEMU microVM by hand and drives it
// over the vmlink: ready, configure (squashfs code, an ext4 and a squashfs
// volume, user-mode network), a few requests, halt. It is the smoke test of
// package vmboot; the real suite is the qemu executor's.
//
//	go run ./crn/guest/vmboot/testdata/vmsmoke -runtime /tmp/x/rt.squashfs -init /tmp/x/aleph-init
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/crn/initramfs"
	"github.com/go-aleph/go-aleph/crn/kernel"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/go-aleph/go-aleph/crn/vmlink"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vmsmoke:", err)
		os.Exit(1)
	}
}

var (
	t0       = time.Now()
	scenario string
)

func since() string { return fmt.Sprintf("%6.3fs", time.Since(t0).Seconds()) }

func run() error {
	work := flag.String("work", "/tmp/vmsmoke", "scratch directory")
	initBin := flag.String("init", "", "static aleph-init binary")
	rt := flag.String("runtime", "", "runtime squashfs")
	kdir := flag.String("kernel", kernel.DefaultDir(), "fetched kernel directory")
	canary := flag.Bool("canary", false, "canary boot only")
	withNet := flag.Bool("net", true, "attach a user-mode NIC and configure it")
	debug := flag.Bool("debug", false, "aleph.debug=1")
	extra := flag.String("append", "", "extra kernel parameters")
	flag.StringVar(&scenario, "scenario", "full", "full, drop (close the link after ready) or badvolume (expect a rejected configuration)")
	flag.Parse()
	if *initBin == "" || (*rt == "" && !*canary) {
		return errors.New("need -init and -runtime")
	}
	if err := os.MkdirAll(*work, 0o755); err != nil {
		return err
	}
	k, err := kernel.Load(*kdir)
	if err != nil {
		return err
	}
	initrd := filepath.Join(*work, "initrd.cpio")
	if _, _, err := initramfs.WriteFile(initrd, initramfs.Options{Init: *initBin, Modules: k.Modules}); err != nil {
		return err
	}
	cmdline := "console=ttyS0 panic=-1 quiet tsc=reliable no_timer_check random.trust_cpu=on cryptomgr.notests mitigations=off tsc_early_khz=" + khz()
	if *canary {
		cmdline += " aleph.canary=1"
	} else {
		cmdline += " aleph.link=serial"
	}
	if *debug {
		cmdline += " aleph.debug=1"
	}
	if *extra != "" {
		cmdline += " " + *extra
	}
	args := []string{"-M", "microvm", "-accel", "tcg", "-m", "256", "-smp", "1", "-nodefaults", "-no-user-config",
		"-nographic", "-no-reboot", "-serial", "stdio", "-kernel", k.Vmlinux, "-initrd", initrd, "-append", cmdline}
	var ln net.Listener
	if !*canary {
		img, err := images(*work)
		if err != nil {
			return err
		}
		// Attached out of order on purpose: the guest maps drives by serial.
		for _, d := range []struct{ file, serial string }{
			{img.ext4, "vdc"}, {img.code, "vdb"}, {img.vol, "vdd"}, {*rt, "vda"},
		} {
			ro := ""
			if d.serial != "vdc" {
				ro = ",readonly=on"
			}
			args = append(args, "-drive", "file="+d.file+",format=raw,if=none,id="+d.serial+ro,
				"-device", "virtio-blk-device,drive="+d.serial+",serial="+d.serial)
		}
		sock := filepath.Join(*work, "link.sock")
		_ = os.Remove(sock)
		if ln, err = net.Listen("unix", sock); err != nil {
			return err
		}
		defer ln.Close()
		args = append(args, "-chardev", "socket,id=link,path="+sock,
			"-device", "virtio-serial-device", "-device", "virtserialport,chardev=link,name=org.aleph.link")
		if *withNet {
			args = append(args, "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0")
		}
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	t0 = time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Printf("%s | %s\n", since(), sc.Text())
		}
	}()
	go func() { <-consoleDone; exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	if *canary {
		return waitExit(exited)
	}
	if err := drive(ln, *withNet); err != nil {
		return err
	}
	if err := waitExit(exited); err != nil {
		return err
	}
	return nil
}

func waitExit(exited <-chan error) error {
	select {
	case err := <-exited:
		fmt.Printf("%s qemu exited: %v\n", since(), err)
		return err
	case <-time.After(30 * time.Second):
		return errors.New("qemu did not exit")
	}
}

func drive(ln net.Listener, withNet bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := vmlink.Host(conn, log)
	if err != nil {
		return err
	}
	defer s.Close()
	ht, err := vmlink.NewHostTransport(s)
	if err != nil {
		return err
	}
	api, err := s.Listen(vmlink.PortAPI)
	if err != nil {
		return err
	}
	go http.Serve(api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host api ok %s %s", r.Method, r.URL.Path)
	}))
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer tcp.Close()
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "host tcp ok")
			c.Close()
		}
	}()
	v, err := ht.AwaitReady(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%s READY %s\n", since(), v)
	if scenario == "drop" {
		return s.Close() // the guest must power off by itself
	}
	cfg := &protocol.Configuration{
		Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingSquashfs, Entrypoint: "app",
		VMHash:    "d2b74aa29898457bde0560e47f7cdd4e77287e9f1f7a1456161d2fd7d5c855d7",
		Volumes:   []protocol.Volume{{Mount: "/mnt/data", Device: "vdc"}, {Mount: "/opt/ro", Device: "vdd", ReadOnly: true}},
		Variables: map[string]string{"SMOKE": "1"},
	}
	if withNet {
		cfg.IP, cfg.Route, cfg.DNSServers = "10.0.2.15", "10.0.2.2", []string{"10.0.2.3"}
	}
	if scenario == "badvolume" {
		cfg.Volumes = append(cfg.Volumes, protocol.Volume{Mount: "/mnt/missing", Device: "vdz"})
		err := protocol.Configure(ctx, ht, cfg)
		fmt.Printf("%s CONFIGURE (want rejected): %v\n", since(), err)
		if !errors.Is(err, protocol.ErrConfigRejected) {
			return errors.New("bad volume accepted")
		}
		return protocol.Halt(ctx, ht)
	}
	if err := protocol.Configure(ctx, ht, cfg); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	fmt.Printf("%s CONFIGURED\n", since())
	port := tcp.Addr().(*net.TCPAddr).Port
	reqs := []struct{ method, path, query, body string }{
		{"GET", "/read", "f=/opt/ro/hello", ""},
		{"POST", "/write", "f=/mnt/data/written", "persisted"},
		{"GET", "/read", "f=/mnt/data/written", ""},
		{"GET", "/api", "p=/properties", ""},
		{"GET", "/ifaces", "", ""},
		{"GET", "/read", "f=/etc/resolv.conf", ""},
		{"GET", "/read", "f=/proc/sys/kernel/hostname", ""},
		{"GET", "/env", "", ""},
		{"GET", "/read", "f=/proc/mounts", ""},
	}
	if withNet {
		reqs = append(reqs, struct{ method, path, query, body string }{"GET", "/dial", fmt.Sprintf("addr=10.0.2.2:%d", port), ""})
	}
	for i, r := range reqs {
		res, err := protocol.Run(ctx, ht, &protocol.Scope{Type: protocol.ScopeHTTP, Method: r.method, Path: r.path,
			QueryString: r.query, Body: []byte(r.body)})
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.path, r.query, err)
		}
		fmt.Printf("%s REQ%d %s?%s → %d %s\n", since(), i, r.path, r.query, res.Status,
			strings.ReplaceAll(strings.TrimSpace(string(res.Body)), "\n", "\n        "))
	}
	if err := protocol.Halt(ctx, ht); err != nil {
		return fmt.Errorf("halt: %w", err)
	}
	fmt.Printf("%s HALTED\n", since())
	return nil
}

type imgs struct{ code, vol, ext4 string }

func images(work string) (imgs, error) {
	im := imgs{code: filepath.Join(work, "code.sqfs"), vol: filepath.Join(work, "vol.sqfs"), ext4: filepath.Join(work, "data.ext4")}
	codeDir, volDir := filepath.Join(work, "code"), filepath.Join(work, "vol")
	for _, d := range []string{codeDir, volDir} {
		_ = os.RemoveAll(d)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return im, err
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(codeDir, "app"), "./crn/guest/vmboot/testdata/vmsmoke/app")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return im, fmt.Errorf("build app: %v: %s", err, b)
	}
	if err := os.WriteFile(filepath.Join(volDir, "hello"), []byte("hello from a squashfs volume"), 0o644); err != nil {
		return im, err
	}
	for _, c := range [][]string{
		{"rm", "-f", im.code, im.vol, im.ext4},
		{"mksquashfs", codeDir, im.code, "-quiet", "-noappend", "-all-root"},
		{"mksquashfs", volDir, im.vol, "-quiet", "-noappend", "-all-root"},
		{"truncate", "-s", "16M", im.ext4},
		{"mkfs.ext4", "-q", "-F", im.ext4},
	} {
		if b, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return im, fmt.Errorf("%s: %v: %s", c[0], err, b)
		}
	}
	return im, nil
}

// khz is the host TSC frequency for tsc_early_khz (lab: needed under TCG).
func khz() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "cpu MHz"); ok {
			var mhz float64
			fmt.Sscanf(strings.TrimLeft(v, "\t :"), "%f", &mhz)
			return fmt.Sprint(int(mhz * 1000))
		}
	}
	return "2000000"
}
