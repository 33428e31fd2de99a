package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ErrConfigRejected is returned by Configure when the guest answers
// success=false; the error text carries the guest's error.
var ErrConfigRejected = errors.New("guest rejected configuration")

// ConfigError is the guest's failure answer to the configuration.
type ConfigError struct {
	Message   string
	Traceback string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s: %s", ErrConfigRejected, e.Message)
}

// Unwrap makes errors.Is(err, ErrConfigRejected) hold.
func (e *ConfigError) Unwrap() error { return ErrConfigRejected }

// withConn dials the guest and bounds the connection by ctx: its deadline
// becomes the conn's, and cancellation closes it.
func withConn(ctx context.Context, t Transport, f func(net.Conn) error) error {
	conn, err := t.Dial(ctx)
	if err != nil {
		return fmt.Errorf("dial guest: %w", err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	err = f(conn)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// Configure sends the configuration on a new connection and waits for the
// guest's ack. A success=false ack is a *ConfigError.
func Configure(ctx context.Context, t Transport, cfg *Configuration) error {
	payload, err := EncodeConfiguration(cfg)
	if err != nil {
		return err
	}
	return withConn(ctx, t, func(conn net.Conn) error {
		if _, err := conn.Write(payload); err != nil {
			return fmt.Errorf("send configuration: %w", err)
		}
		ack, err := DecodeConfigAck(io.LimitReader(conn, MaxConfigAck))
		if err != nil {
			return fmt.Errorf("read configuration ack: %w", err)
		}
		if !ack.Success {
			return &ConfigError{Message: ack.Error, Traceback: ack.Traceback}
		}
		return nil
	})
}

// closeWriter is implemented by *net.UnixConn and *net.TCPConn.
type closeWriter interface{ CloseWrite() error }

// Run sends one request scope on a new connection and reads the result to
// EOF. An empty reply is ErrNoResponse.
func Run(ctx context.Context, t Transport, scope *Scope) (*Result, error) {
	payload, err := EncodeRequest(scope)
	if err != nil {
		return nil, err
	}
	var res *Result
	err = withConn(ctx, t, func(conn net.Conn) error {
		if _, err := conn.Write(payload); err != nil {
			return fmt.Errorf("send request: %w", err)
		}
		// A courtesy: our guest decodes from the stream and never needs EOF.
		if cw, ok := conn.(closeWriter); ok {
			_ = cw.CloseWrite()
		}
		b, err := io.ReadAll(io.LimitReader(conn, MaxResult+1))
		if err != nil {
			return fmt.Errorf("read result: %w", err)
		}
		if len(b) == 0 {
			return ErrNoResponse
		}
		if len(b) > MaxResult {
			return fmt.Errorf("%w: result over %d bytes", ErrMalformed, MaxResult)
		}
		res, err = DecodeResult(b)
		return err
	})
	return res, err
}

// Halt asks the guest to stop and waits for "STOPZ\n" or EOF.
func Halt(ctx context.Context, t Transport) error {
	return withConn(ctx, t, func(conn net.Conn) error {
		if _, err := io.WriteString(conn, HaltCommand); err != nil {
			return fmt.Errorf("send halt: %w", err)
		}
		var got []byte
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			got = append(got, buf[:n]...)
			if bytes.Contains(got, []byte(StopzLine)) || errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("await stop: %w", err)
			}
			if len(got) > 4096 {
				got = got[len(got)-len(StopzLine):]
			}
		}
	})
}

// aLongTimeAgo is a deadline in the past: setting it unblocks pending I/O.
var aLongTimeAgo = time.Unix(1, 0)
