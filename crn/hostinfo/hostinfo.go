// Package hostinfo reads what a compute node reports about its host to the
// scheduler (/about/usage/system, crn-compute.md §5.2): CPU count, load,
// frequencies and vendor, memory and disk, in aleph-vm's units (kB = 1000
// bytes). Linux only; fields it cannot read are left out.
package hostinfo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Usage is /about/usage/system.
type Usage struct {
	CPU        CPU        `json:"cpu"`
	Mem        Mem        `json:"mem"`
	Disk       Disk       `json:"disk"`
	Period     Period     `json:"period"`
	Properties Properties `json:"properties"`
	GPU        GPU        `json:"gpu"`
	Active     bool       `json:"active"`
}

// CPU is the processor part of Usage.
type CPU struct {
	Count           int              `json:"count"`
	LoadAverage     LoadAverage      `json:"load_average"`
	CoreFrequencies *CoreFrequencies `json:"core_frequencies,omitempty"`
}

// LoadAverage is /proc/loadavg.
type LoadAverage struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// CoreFrequencies are the bounds of the cores' frequencies, in MHz.
type CoreFrequencies struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Mem is live host memory in kB (1000 bytes): total rounded up, available down.
type Mem struct {
	TotalKB     int64 `json:"total_kB"`
	AvailableKB int64 `json:"available_kB"`
}

// Disk is the filesystem that holds the node's volumes, in kB.
type Disk struct {
	TotalKB     int64 `json:"total_kB"`
	AvailableKB int64 `json:"available_kB"`
}

// Period is the minute the figures describe.
type Period struct {
	StartTimestamp  string  `json:"start_timestamp"`
	DurationSeconds float64 `json:"duration_seconds"`
}

// Properties describe the CPU.
type Properties struct {
	CPU CPUProperties `json:"cpu"`
}

// CPUProperties are the architecture, the vendor (GenuineIntel or
// AuthenticAMD) and the confidential-computing features.
type CPUProperties struct {
	Architecture string   `json:"architecture"`
	Vendor       string   `json:"vendor,omitempty"`
	Features     []string `json:"features"`
}

// GPU lists GPUs; this node passes none through yet.
type GPU struct {
	Devices          []any `json:"devices"`
	AvailableDevices []any `json:"available_devices"`
}

// Read collects the usage. disk is a path on the filesystem of the node's
// volumes; reserved bytes (promised to volumes not yet written) are taken off
// the available disk.
func Read(now time.Time, disk string, reserved int64) (Usage, error) {
	u := Usage{Active: true, GPU: GPU{Devices: []any{}, AvailableDevices: []any{}}}
	u.CPU.Count = runtime.NumCPU()
	var errs []error
	if la, err := loadAvg(); err == nil {
		u.CPU.LoadAverage = la
	} else {
		errs = append(errs, err)
	}
	u.CPU.CoreFrequencies = coreFrequencies()
	if m, err := memInfo(); err == nil {
		u.Mem = m
	} else {
		errs = append(errs, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err == nil {
		total := int64(st.Blocks) * int64(st.Bsize)
		avail := max(int64(st.Bavail)*int64(st.Bsize)-reserved, 0)
		u.Disk = Disk{TotalKB: total / 1000, AvailableKB: avail / 1000}
	} else {
		errs = append(errs, fmt.Errorf("statfs %s: %w", disk, err))
	}
	u.Period = Period{StartTimestamp: now.UTC().Truncate(time.Minute).Format("2006-01-02T15:04:05Z"), DurationSeconds: 60}
	u.Properties.CPU = cpuProperties()
	return u, errors.Join(errs...)
}

func loadAvg() (LoadAverage, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return LoadAverage{}, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return LoadAverage{}, errors.New("malformed /proc/loadavg")
	}
	var la LoadAverage
	var perr error
	for i, dst := range []*float64{&la.Load1, &la.Load5, &la.Load15} {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			perr = fmt.Errorf("malformed /proc/loadavg: %w", err)
		}
		*dst = v
	}
	return la, perr
}

func memInfo() (Mem, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return Mem{}, err
	}
	var total, avail int64 = -1, -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64) // KiB
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			total = v * 1024
		case "MemAvailable:":
			avail = v * 1024
		}
	}
	if total < 0 || avail < 0 {
		return Mem{}, errors.New("MemTotal or MemAvailable missing from /proc/meminfo")
	}
	return Mem{TotalKB: int64(math.Ceil(float64(total) / 1000)), AvailableKB: avail / 1000}, nil
}

// coreFrequencies reads cpufreq bounds (kHz → MHz); nil when the host does not expose them.
func coreFrequencies() *CoreFrequencies {
	read := func(glob string, pick func(a, b float64) float64) (float64, bool) {
		paths, _ := filepath.Glob(glob)
		var v float64
		ok := false
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
			if err != nil {
				continue
			}
			if !ok {
				v, ok = f, true
			} else {
				v = pick(v, f)
			}
		}
		return v / 1000, ok
	}
	lo, ok1 := read("/sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_min_freq", math.Min)
	hi, ok2 := read("/sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq", math.Max)
	if !ok1 || !ok2 {
		return nil
	}
	return &CoreFrequencies{Min: lo, Max: hi}
}

func cpuProperties() CPUProperties {
	p := CPUProperties{Architecture: archName(), Features: []string{}}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return p
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "vendor_id":
			if p.Vendor == "" {
				p.Vendor = v
			}
		case "flags":
			if len(p.Features) == 0 {
				for _, f := range strings.Fields(v) {
					if f == "sev" || f == "sev_es" || f == "sev_snp" {
						p.Features = append(p.Features, f)
					}
				}
			}
		}
	}
	return p
}

func archName() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	default:
		return runtime.GOARCH
	}
}
