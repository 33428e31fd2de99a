package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/pyjson"
)

// maxJSONDepth bounds the nesting of an add_json body (Python's json module
// gives up near 1,000 levels too).
const maxJSONDepth = 1000

// errJSONDepth is returned for add_json bodies nested deeper than maxJSONDepth.
var errJSONDepth = fmt.Errorf("JSON is nested deeper than %d levels", maxJSONDepth)

// canonicalJSON re-serialises a JSON document the way pyaleph's add_json does
// (Python's json.loads, then orjson.dumps with OPT_SORT_KEYS): compact, object
// keys sorted by code point (the last of duplicate keys wins), non-ASCII text
// written raw, only '"', '\\' and control characters escaped (\b \t \n \f \r
// short, the others as lowercase \u00XX), and numbers as Python parses them
// and orjson writes them:
//
//   - an integer keeps its digits ("-0" is 0);
//   - a number with a fraction or an exponent is a float64, written as
//     orjson (Ryū) does: the shortest text that reads back, "1.0", "1.5",
//     "1e16", "1e-7", "0.0001"; an overflow is null, as orjson writes inf.
//
// Known differences from pyaleph, for inputs no SDK produces: integers outside
// the 64-bit range make orjson fail and pyaleph fall back to the json module's
// spaced, ASCII-escaped output, whereas here their digits are kept in the compact
// form; lone UTF-16 surrogates become U+FFFD; NaN and Infinity literals, which
// Python accepts, are refused as invalid JSON.
func canonicalJSON(in []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	out, err := canonicalValue(dec, nil, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return out, nil
}

// member is one object member, its value already canonical.
type member struct {
	key   string
	value []byte
}

func canonicalValue(dec *json.Decoder, dst []byte, depth int) ([]byte, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonSyntaxError(err)
	}
	switch v := tok.(type) {
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, errJSONDepth
		}
		if v == '[' {
			dst = append(dst, '[')
			for n := 0; dec.More(); n++ {
				if n > 0 {
					dst = append(dst, ',')
				}
				if dst, err = canonicalValue(dec, dst, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, jsonSyntaxError(err)
			}
			return append(dst, ']'), nil
		}
		var members []member
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, jsonSyntaxError(err)
			}
			key, _ := kt.(string) // the decoder only gives string keys
			val, err := canonicalValue(dec, nil, depth+1)
			if err != nil {
				return nil, err
			}
			if i := slices.IndexFunc(members, func(m member) bool { return m.key == key }); i >= 0 {
				members[i].value = val // Python's dict keeps the last duplicate
				continue
			}
			members = append(members, member{key, val})
		}
		if _, err := dec.Token(); err != nil { // '}'
			return nil, jsonSyntaxError(err)
		}
		// Go compares strings byte-wise, which for UTF-8 is code point order, as
		// orjson sorts.
		slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
		dst = append(dst, '{')
		for i, m := range members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = pyjson.AppendString(dst, m.key, false)
			dst = append(dst, ':')
			dst = append(dst, m.value...)
		}
		return append(dst, '}'), nil
	case string:
		return pyjson.AppendString(dst, v, false), nil
	case json.Number:
		return appendPyNumber(dst, string(v)), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case nil:
		return append(dst, "null"...), nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

func jsonSyntaxError(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("unexpected end of JSON")
	}
	return err
}

// appendPyNumber writes a JSON number literal as Python reads it (int or
// float) and orjson writes it back.
func appendPyNumber(dst []byte, lit string) []byte {
	if !strings.ContainsAny(lit, ".eE") {
		if lit == "-0" {
			return append(dst, '0')
		}
		return append(dst, lit...)
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && math.IsInf(f, 0) {
		return append(dst, "null"...) // Python reads inf; orjson writes null
	}
	return appendRyu(dst, f)
}

// appendRyu writes a finite float64 as Ryū's pretty format (what orjson
// writes): the shortest round-trip digits; plain decimal notation when the
// decimal point falls within the first 16 digits or up to 4 zeros after it,
// otherwise d.ddde±X with no '+' and no exponent padding.
func appendRyu(dst []byte, f float64) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	mant, exp10 := splitExp10(e)
	digits := make([]byte, 0, len(mant))
	for _, c := range mant {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	n := len(digits)
	// The value is 0.d1d2…dn × 10^kk.
	kk := exp10 + 1
	k := kk - n // exponent of the last digit
	switch {
	case k >= 0 && kk <= 16: // 1234e7 → 12340000000.0
		dst = append(dst, digits...)
		for range k {
			dst = append(dst, '0')
		}
		return append(dst, ".0"...)
	case kk > 0 && kk <= 16: // 1234e-2 → 12.34
		dst = append(dst, digits[:kk]...)
		dst = append(dst, '.')
		return append(dst, digits[kk:]...)
	case kk > -5 && kk <= 0: // 1234e-6 → 0.001234
		dst = append(dst, "0."...)
		for range -kk {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[0])
	if n > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'e')
	return strconv.AppendInt(dst, int64(kk-1), 10)
}

// splitExp10 splits strconv's 'e' format ("1.234e+05") into mantissa and exponent.
func splitExp10(e []byte) ([]byte, int) {
	i := bytes.IndexByte(e, 'e')
	n, _ := strconv.Atoi(string(e[i+1:]))
	return e[:i], n
}

// jsonBody reads an add_json body: at most MaxUnauthenticatedUpload bytes,
// canonicalised. ok=false means it answered (413 or 422).
func (s *server) jsonBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	limit := s.cfg.MaxUnauthenticatedUpload
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d-byte limit", limit))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d-byte limit", limit))
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the request body: upload interrupted")
		return nil, false
	}
	out, err := canonicalJSON(body)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "request body is not valid JSON: "+err.Error())
		return nil, false
	}
	return out, true
}

// addJSONResponse is the answer of the add_json endpoints.
type addJSONResponse struct {
	Status string `json:"status"`
	Hash   string `json:"hash"`
}

// storageAddJSON serves POST /api/v0/storage/add_json: the canonical bytes are
// kept in the storage engine under their sha256, with a grace-period pin.
func (s *server) storageAddJSON(w http.ResponseWriter, r *http.Request) {
	s.addJSON(w, r, filestore.EngineStorage)
}

// ipfsAddJSON serves POST /api/v0/ipfs/add_json: the same bytes, added as a
// UnixFS file (CIDv0).
func (s *server) ipfsAddJSON(w http.ResponseWriter, r *http.Request) {
	s.addJSON(w, r, filestore.EngineIPFS)
}

func (s *server) addJSON(w http.ResponseWriter, r *http.Request, engine filestore.Engine) {
	if !s.filesReady(w) {
		return
	}
	b, ok := s.jsonBody(w, r)
	if !ok {
		return
	}
	f, err := s.addFile(r.Context(), engine, bytes.NewReader(b), int64(len(b)), "")
	if err != nil {
		s.fileError(w, r, "add json", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, addJSONResponse{Status: "success", Hash: f.Hash})
}
