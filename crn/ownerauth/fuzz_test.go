package ownerauth

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzVerify: any headers, method and path give an address or an *Error with
// status 400 or 401, never a panic. Seeds: testdata/fuzz/FuzzVerify and the
// golden headers.
func FuzzVerify(f *testing.F) {
	for _, g := range loadGolden(f) {
		f.Add(g.SignedPubKey, g.SignedOperation, g.Method, g.Path)
	}
	f.Fuzz(func(t *testing.T, pubKey, operation, method, path string) {
		if !validMethod(method) || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n?#%") {
			return // not a request a server would route
		}
		r := request(http.MethodGet, "/", nil)
		r.Method, r.URL.Path = method, path
		r.Header.Set(HeaderSignedPubKey, pubKey)
		r.Header.Set(HeaderSignedOperation, operation)
		addr, err := Verify(r, testDomain, testNow)
		if err == nil {
			if addr == "" {
				t.Fatal("accepted with an empty address")
			}
			return
		}
		var ae *Error
		if !errors.As(err, &ae) || (ae.Status != 400 && ae.Status != 401) || ae.Reason == "" {
			t.Fatalf("error %v (%T)", err, err)
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
