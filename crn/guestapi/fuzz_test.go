package guestapi

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-aleph/go-aleph/message"
)

// Reference forms of upstream's regexes, with Python's Unicode \w.
var (
	refKey     = regexp.MustCompile(`^[\p{L}\p{N}_]+$`)
	refPattern = regexp.MustCompile(`^[\p{L}\p{N}_?*^\-]+$`)
)

func FuzzValidKey(f *testing.F) {
	for _, s := range []string{"key", "a_b_1", "", "a-b", "clé", "a b", "a/b", "٣", "\xff", strings.Repeat("k", MaxKeyLength+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		want := utf8.ValidString(key) && len(key) <= MaxKeyLength && refKey.MatchString(key)
		if got := ValidKey(key); got != want {
			t.Fatalf("ValidKey(%q) = %v, reference %v", key, got, want)
		}
	})
}

func FuzzValidPattern(f *testing.F) {
	for _, p := range [][2]string{{"*", "abc"}, {"a?c", "abc"}, {"^-*", "^-x"}, {"a*a*a*a*b", strings.Repeat("a", 200)}, {"[a]", "a"}, {"", ""}, {"?", ""}, {"é*", "éé"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		want := utf8.ValidString(pattern) && len(pattern) <= MaxPatternLength && refPattern.MatchString(pattern)
		if got := ValidPattern(pattern); got != want {
			t.Fatalf("ValidPattern(%q) = %v, reference %v", pattern, got, want)
		}
		if !want || !utf8.ValidString(key) {
			return
		}
		// The glob agrees with a regexp built from it.
		var re strings.Builder
		re.WriteString("^")
		for _, r := range pattern {
			switch r {
			case '*':
				re.WriteString("(?s:.*)")
			case '?':
				re.WriteString("(?s:.)")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString("$")
		if got, want := globMatch(pattern, key), regexp.MustCompile(re.String()).MatchString(key); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, regexp says %v", pattern, key, got, want)
		}
	})
}

func FuzzPrepareSign(f *testing.F) {
	signer := devSigner(f)
	content := `{"address":"` + vmA + `","time":1,"type":"t","content":{}}`
	good, _ := json.Marshal(map[string]any{
		"chain": "ETH", "sender": signer.Address(), "type": "POST", "time": 1,
		"item_type": "inline", "item_content": content, "item_hash": message.HashContent([]byte(content)),
	})
	for _, s := range []string{string(good), "{}", "[]", "null", `{"item_content":"{\"address\":\"x\"}"}`, `{"item_content":1}`, string(good) + "{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, fields, err := PrepareSign(body, vmA, signer)
		if err != nil {
			if m != nil || fields != nil {
				t.Fatal("error with a result")
			}
			return
		}
		// Whatever is accepted is an inline message by the node about the VM.
		if m.ItemType != message.ItemInline || m.ItemHash != message.HashContent([]byte(m.ItemContent)) {
			t.Fatalf("accepted a message whose hash is not its content's: %s", body)
		}
		if m.Sender != signer.Address() || m.Chain != signer.Chain() {
			t.Fatalf("accepted sender %s/%s", m.Chain, m.Sender)
		}
		c, err := m.DecodeContent([]byte(m.ItemContent))
		if err != nil || !isVMAddress(c.Base().Address, vmA) {
			t.Fatalf("accepted content address %v (%v)", c, err)
		}
	})
}

func FuzzParsePubsub(f *testing.F) {
	for _, s := range []string{
		`{"topic":"ALEPH-TEST","data":"{\"channel\":\"C\",\"item_content\":\"{\\\"content\\\":{\\\"a\\\":1}}\"}"}`,
		`{"topic":"t","data":"{}"}`, `{}`, `x`, `{"topic":1,"data":"{}"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePubsub(body)
		if err != nil {
			return
		}
		if p.Topic == "" || len(p.Topic) > maxTopicLength {
			t.Fatalf("accepted topic %q", p.Topic)
		}
		if p.Content != nil && !json.Valid(p.Content) {
			t.Fatalf("content %q is not JSON", p.Content)
		}
	})
}
