package pipeline

import (
	"testing"

	"github.com/go-aleph/go-aleph/message"
)

func TestAuthorizedBy(t *testing.T) {
	const (
		owner    = "0xOWNER"
		delegate = "0xDeLeGaTe"
	)
	post := act{Sender: delegate, Owner: owner, Chain: message.ChainETH, Channel: "blog", Type: message.TypePost, PostType: "article"}
	agg := act{Sender: delegate, Owner: owner, Chain: message.ChainETH, Channel: "blog", Type: message.TypeAggregate, Key: "profile"}
	sec := act{Sender: delegate, Owner: owner, Chain: message.ChainETH, Channel: "blog", Type: message.TypeAggregate, Key: SecurityKey}
	store := act{Sender: delegate, Owner: owner, Chain: message.ChainETH, Type: message.TypeStore}
	with := func(a act, f func(*act)) act { f(&a); return a }
	tests := []struct {
		name string
		sec  string
		a    act
		want bool
	}{
		{"no aggregate", ``, post, false},
		{"address only", `{"authorizations":[{"address":"0xdelegate"}]}`, post, true},
		{"address case-insensitive", `{"authorizations":[{"address":"0XDELEGATE"}]}`, post, true},
		{"other address", `{"authorizations":[{"address":"0xother"}]}`, post, false},
		{"no address", `{"authorizations":[{"types":["POST"]}]}`, post, false},
		{"empty address", `{"authorizations":[{"address":""}]}`, post, false},
		{"chain matches", `{"authorizations":[{"address":"0xdelegate","chain":"ETH"}]}`, post, true},
		{"chain differs", `{"authorizations":[{"address":"0xdelegate","chain":"SOL"}]}`, post, false},
		{"empty chain is no restriction", `{"authorizations":[{"address":"0xdelegate","chain":""}]}`, post, true},
		{"channel listed", `{"authorizations":[{"address":"0xdelegate","channels":["blog","x"]}]}`, post, true},
		{"channel not listed", `{"authorizations":[{"address":"0xdelegate","channels":["x"]}]}`, post, false},
		{"empty channels list", `{"authorizations":[{"address":"0xdelegate","channels":[]}]}`, post, true},
		{"type listed", `{"authorizations":[{"address":"0xdelegate","types":["POST"]}]}`, post, true},
		{"type not listed", `{"authorizations":[{"address":"0xdelegate","types":["AGGREGATE"]}]}`, post, false},
		{"post type listed", `{"authorizations":[{"address":"0xdelegate","post_types":["article"]}]}`, post, true},
		{"post type not listed", `{"authorizations":[{"address":"0xdelegate","post_types":["note"]}]}`, post, false},
		{"post types ignored for other types", `{"authorizations":[{"address":"0xdelegate","post_types":["note"]}]}`, store, true},
		{"aggregate key listed", `{"authorizations":[{"address":"0xdelegate","aggregate_keys":["profile"]}]}`, agg, true},
		{"aggregate key not listed", `{"authorizations":[{"address":"0xdelegate","aggregate_keys":["other"]}]}`, agg, false},
		{"aggregate keys ignored for posts", `{"authorizations":[{"address":"0xdelegate","aggregate_keys":["other"]}]}`, post, true},
		{"first matching entry wins", `{"authorizations":[{"address":"0xdelegate","types":["STORE"]},{"address":"0xdelegate","types":["POST"]}]}`, post, true},
		{"all restrictions together", `{"authorizations":[{"address":"0xdelegate","chain":"ETH","channels":["blog"],"types":["POST"],"post_types":["article"]}]}`, post, true},

		// go-aleph decision: the security key needs an explicit grant.
		{"security: unrestricted delegate refused", `{"authorizations":[{"address":"0xdelegate"}]}`, sec, false},
		{"security: AGGREGATE-wide delegate refused", `{"authorizations":[{"address":"0xdelegate","types":["AGGREGATE"]}]}`, sec, false},
		{"security: other keys only refused", `{"authorizations":[{"address":"0xdelegate","aggregate_keys":["profile"]}]}`, sec, false},
		{"security: explicit grant", `{"authorizations":[{"address":"0xdelegate","aggregate_keys":["profile","security"]}]}`, sec, true},
		{"security: explicit grant, other restrictions still apply", `{"authorizations":[{"address":"0xdelegate","aggregate_keys":["security"],"channels":["x"]}]}`, sec, false},

		// Malformed data never grants more.
		{"authorizations not a list", `{"authorizations":{"address":"0xdelegate"}}`, post, false},
		{"entry not an object", `{"authorizations":["0xdelegate",{"address":"0xdelegate","types":["STORE"]}]}`, post, false},
		{"address not a string", `{"authorizations":[{"address":42}]}`, post, false},
		{"channels a string", `{"authorizations":[{"address":"0xdelegate","channels":"blog"}]}`, post, false},
		{"types with a number", `{"authorizations":[{"address":"0xdelegate","types":["POST",1]}]}`, post, false},
		{"chain a number", `{"authorizations":[{"address":"0xdelegate","chain":1}]}`, post, false},
		{"null fields are absent", `{"authorizations":[{"address":"0xdelegate","chain":null,"channels":null}]}`, post, true},
		{"content not an object", `[1,2]`, post, false},
		{"not JSON", `{`, post, false},
		{"null entry skipped", `{"authorizations":[null,{"address":"0xdelegate"}]}`, post, true},
		{"a different message", `{"authorizations":[{"address":"0xdelegate","channels":["blog"]}]}`, with(post, func(a *act) { a.Channel = "" }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := authorizedBy(tc.a, []byte(tc.sec)); got != tc.want {
				t.Errorf("authorizedBy = %v, want %v", got, tc.want)
			}
		})
	}
}
