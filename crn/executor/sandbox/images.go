package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// images shares read-only squashfs mounts between executions: a runtime or
// code image is mounted once and bind-mounted into each container. Besides
// the mount itself, this keeps squashfs's decompressed page cache warm, so a
// program's binary is not decompressed again on every cold start.
type images struct {
	root string
	keep time.Duration

	mu  sync.Mutex
	m   map[string]*image
	seq int
}

type image struct {
	dir   string
	refs  int
	timer *time.Timer
}

// imageKey names an image file by identity: a new file at the same path is
// another image.
func imageKey(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return abs, nil
	}
	return fmt.Sprintf("%s|%d|%d|%d|%d", abs, st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano()), nil
}

// acquire returns the directory where the image is mounted read-only,
// mounting it if needed; release gives it back.
func (im *images) acquire(ctx context.Context, path string) (string, func(), error) {
	key, err := imageKey(path)
	if err != nil {
		return "", nil, fmt.Errorf("image %s: %w", path, err)
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	img := im.m[key]
	if img == nil {
		im.seq++
		dir := filepath.Join(im.root, strconv.Itoa(im.seq))
		var m mounter
		if err := m.loop(ctx, path, dir, "squashfs", true); err != nil {
			_ = os.Remove(dir)
			return "", nil, err
		}
		img = &image{dir: dir}
		if im.m == nil {
			im.m = map[string]*image{}
		}
		im.m[key] = img
	}
	if img.timer != nil {
		img.timer.Stop()
		img.timer = nil
	}
	img.refs++
	var once sync.Once
	return img.dir, func() { once.Do(func() { im.release(key, img) }) }, nil
}

// release keeps an unused image mounted for a while: the next cold start of
// the same program or runtime finds it warm.
func (im *images) release(key string, img *image) {
	im.mu.Lock()
	defer im.mu.Unlock()
	img.refs--
	if img.refs > 0 {
		return
	}
	img.timer = time.AfterFunc(im.keep, func() {
		im.mu.Lock()
		defer im.mu.Unlock()
		if img.refs == 0 && im.m[key] == img {
			delete(im.m, key)
			_ = unmount(img.dir)
			_ = os.Remove(img.dir)
		}
	})
}

// close unmounts every image no execution uses.
func (im *images) close() error {
	im.mu.Lock()
	defer im.mu.Unlock()
	var errs []error
	for key, img := range im.m {
		if img.refs > 0 {
			continue
		}
		if img.timer != nil {
			img.timer.Stop()
		}
		delete(im.m, key)
		errs = append(errs, unmount(img.dir))
		_ = os.Remove(img.dir)
	}
	return errors.Join(errs...)
}
