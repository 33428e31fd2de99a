package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/go-aleph/go-aleph/cli/output"
	"github.com/go-aleph/go-aleph/client"
)

func jsonOut(w io.Writer, v any) error { return output.JSON(w, v) }

func fieldsOut(w io.Writer, pairs [][2]string) error { return output.Fields(w, pairs) }

// writtenJSON is the --json shape of every write command.
type writtenJSON struct {
	ItemHash   string          `json:"item_hash"`
	Status     string          `json:"status"`
	HTTPStatus int             `json:"http_status"`
	Message    json.RawMessage `json:"message"`
	Content    json.RawMessage `json:"content"`
}

// printWritten prints the outcome of a write.
func (a *app) printWritten(w *client.WriteResult) error {
	if a.json {
		env, err := w.Message.MarshalJSON()
		if err != nil {
			return err
		}
		return jsonOut(a.out(), writtenJSON{
			ItemHash: w.Message.ItemHash, Status: string(w.Status), HTTPStatus: w.HTTPStatus,
			Message: env, Content: w.Content,
		})
	}
	pairs := [][2]string{
		{"item hash", w.Message.ItemHash},
		{"type", string(w.Message.Type)},
		{"sender", w.Message.Sender},
		{"channel", w.Message.Channel},
		{"status", string(w.Status)},
	}
	return fieldsOut(a.out(), pairs)
}

// indentJSON renders raw JSON indented for humans ("null" when empty).
func indentJSON(raw []byte) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "null"
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return strconv.Quote(string(raw))
	}
	return buf.String()
}

// compactJSON renders raw JSON on one line for table cells.
func compactJSON(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// block prints a label and an indented JSON document under it.
func block(w io.Writer, label string, raw []byte) error {
	_, err := fmt.Fprintf(w, "%s:\n%s\n", label, indentJSON(raw))
	return err
}

func pageLine(w io.Writer, p client.Pagination, n int) error {
	switch {
	case p.Cursor && p.NextCursor != nil:
		_, err := fmt.Fprintf(w, "%d shown; next cursor %s\n", n, output.Sanitize(*p.NextCursor))
		return err
	case p.Cursor:
		_, err := fmt.Fprintf(w, "%d shown; end of the list\n", n)
		return err
	case p.PerPage > 0:
		_, err := fmt.Fprintf(w, "page %d, %d per page, %d in total\n", p.Page, p.PerPage, p.Total)
		return err
	}
	_, err := fmt.Fprintf(w, "%d shown, %d in total\n", n, p.Total)
	return err
}
