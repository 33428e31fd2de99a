package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
)

// dpkgPackage is one installed package as dpkg-query reports it.
type dpkgPackage struct {
	id       string // binary:Package, e.g. libc6:amd64, for dpkg -L
	arch     string
	depends  [][]string // groups of alternatives
	provides []string
}

// pythonFiles lists every path owned by the installed packages in the
// dependency closure of python3-uvicorn (required) and python3-fastapi (if
// installed), sorted.
func pythonFiles(ctx context.Context, log *slog.Logger) ([]string, error) {
	pkgs, err := installedPackages(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := pkgs["python3-uvicorn"]; !ok {
		return nil, ErrNoPython
	}
	var roots []string
	for _, r := range []string{"python3-uvicorn", "python3-fastapi"} {
		if _, ok := pkgs[r]; ok {
			roots = append(roots, r)
		}
	}
	closure := dependencyClosure(pkgs, roots, log)
	ids := make([]string, 0, len(closure))
	for _, name := range closure {
		ids = append(ids, pkgs[name].id)
	}
	log.Info("python runtime packages", "roots", roots, "count", len(ids))
	out, err := dpkgOutput(ctx, "dpkg-query", append([]string{"-L"}, ids...)...)
	if err != nil {
		return nil, err
	}
	var files []string
	for line := range strings.Lines(string(out)) {
		// Other lines are diversion notes ("diverted by …").
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "/") {
			files = append(files, line)
		}
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// installedPackages maps package names to installed packages, preferring
// the native architecture (or "all") when several are installed.
func installedPackages(ctx context.Context) (map[string]dpkgPackage, error) {
	native, err := dpkgOutput(ctx, "dpkg", "--print-architecture")
	if err != nil {
		return nil, err
	}
	arch := strings.TrimSpace(string(native))
	out, err := dpkgOutput(ctx, "dpkg-query", "-W", "-f",
		`${binary:Package}\t${Package}\t${Architecture}\t${Status}\t${Depends}\t${Pre-Depends}\t${Provides}\n`)
	if err != nil {
		return nil, err
	}
	return parseInstalled(out, arch)
}

func parseInstalled(out []byte, native string) (map[string]dpkgPackage, error) {
	pkgs := make(map[string]dpkgPackage)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("dpkg-query: unexpected line %q", sc.Text())
		}
		if !strings.HasSuffix(f[3], " installed") {
			continue
		}
		p := dpkgPackage{id: f[0], arch: f[2], depends: append(parseDepends(f[4]), parseDepends(f[5])...)}
		for _, g := range parseDepends(f[6]) {
			p.provides = append(p.provides, g...)
		}
		if old, ok := pkgs[f[1]]; ok && (old.arch == native || old.arch == "all") {
			continue
		}
		pkgs[f[1]] = p
	}
	return pkgs, sc.Err()
}

// parseDepends splits a Depends-style field into groups of alternative
// package names, dropping versions and architecture qualifiers.
func parseDepends(field string) [][]string {
	var groups [][]string
	for g := range strings.SplitSeq(field, ",") {
		var alts []string
		for a := range strings.SplitSeq(g, "|") {
			name, _, _ := strings.Cut(strings.TrimSpace(a), " ")
			name, _, _ = strings.Cut(name, "(")
			name, _, _ = strings.Cut(name, ":")
			if name != "" {
				alts = append(alts, name)
			}
		}
		if len(alts) > 0 {
			groups = append(groups, alts)
		}
	}
	return groups
}

// dependencyClosure follows Depends and Pre-Depends from roots. Each group
// takes its first alternative that is installed or provided by an installed
// package; a group nothing satisfies is logged and ignored. Sorted names.
func dependencyClosure(pkgs map[string]dpkgPackage, roots []string, log *slog.Logger) []string {
	providers := make(map[string][]string)
	for name, p := range pkgs {
		for _, v := range p.provides {
			providers[v] = append(providers[v], name)
		}
	}
	for _, v := range providers {
		slices.Sort(v)
	}
	seen := make(map[string]bool)
	todo := slices.Clone(roots)
	for len(todo) > 0 {
		name := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[name] {
			continue
		}
		seen[name] = true
	groups:
		for _, g := range pkgs[name].depends {
			for _, alt := range g {
				if _, ok := pkgs[alt]; ok {
					todo = append(todo, alt)
					continue groups
				}
				if pv := providers[alt]; len(pv) > 0 {
					todo = append(todo, pv[0])
					continue groups
				}
			}
			log.Debug("dependency not installed", "package", name, "needs", strings.Join(g, " | "))
		}
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func dpkgOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (a Debian host is needed for the python runtime): %w", ErrNoTool, name, err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// busyboxApplets lists the applet paths the busybox binary knows, sorted.
func busyboxApplets(ctx context.Context, busybox string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, busybox, "--list-full")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var applets []string
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimSpace(line); line != "" {
			applets = append(applets, line)
		}
	}
	if len(applets) == 0 {
		return nil, errors.New("busybox --list-full: no applets")
	}
	slices.Sort(applets)
	return slices.Compact(applets), nil
}
