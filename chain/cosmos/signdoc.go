package cosmos

import (
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// The sign doc has a fixed shape, so it is written directly with its keys already
// in sorted order rather than through a generic encoder: encoding/json would escape
// <, > and & and leave non-ASCII text raw, and both change the signed bytes.
const (
	docHead   = `{"account_number":"0","chain_id":"` + SignDocChainID + `","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"signutil/MsgSignText","value":{"message":`
	docSigner = `,"signer":`
	docTail   = `}}],"sequence":"0"}`
)

// SignDoc returns the bytes a Cosmos wallet signs for an Aleph message: the amino
// sign doc
//
//	{"account_number":"0","chain_id":"signed-message-v1","fee":{"amount":[],"gas":"0"},"memo":"",
//	 "msgs":[{"type":"signutil/MsgSignText","value":{"message":<buf>,"signer":<signer>}}],"sequence":"0"}
//
// serialised like Python's json.dumps(doc, sort_keys=True, separators=(",", ":")):
// compact, and ASCII-only, with every other character escaped as \uXXXX. buf and
// signer should be valid UTF-8; an invalid byte is written as \ufffd, which no
// upstream signer would have produced.
func SignDoc(buf []byte, signer string) []byte {
	out := make([]byte, 0, len(docHead)+len(docSigner)+len(docTail)+len(buf)+len(signer)+16)
	out = append(out, docHead...)
	out = appendPyString(out, buf)
	out = append(out, docSigner...)
	out = appendPyString(out, []byte(signer))
	return append(out, docTail...)
}

// appendPyString appends s as a JSON string the way Python's json.dumps writes it
// with ensure_ascii=True: printable ASCII (space to '~') is kept except '"' and '\',
// the usual short escapes are used for \b \f \n \r \t, and everything else,
// including DEL, becomes \uXXXX in lowercase hex, as a surrogate pair above U+FFFF.
func appendPyString(out, s []byte) []byte {
	out = append(out, '"')
	for len(s) > 0 {
		c := s[0]
		if c < utf8.RuneSelf {
			s = s[1:]
			switch {
			case c == '"' || c == '\\':
				out = append(out, '\\', c)
			case c == '\b':
				out = append(out, '\\', 'b')
			case c == '\f':
				out = append(out, '\\', 'f')
			case c == '\n':
				out = append(out, '\\', 'n')
			case c == '\r':
				out = append(out, '\\', 'r')
			case c == '\t':
				out = append(out, '\\', 't')
			case c < 0x20 || c == 0x7f:
				out = appendU(out, rune(c))
			default:
				out = append(out, c)
			}
			continue
		}
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		if r > 0xffff {
			r -= 0x10000
			out = appendU(out, 0xd800+(r>>10))
			out = appendU(out, 0xdc00+(r&0x3ff))
			continue
		}
		out = appendU(out, r) // utf8.RuneError for invalid bytes
	}
	return append(out, '"')
}

func appendU(out []byte, r rune) []byte {
	return append(out, '\\', 'u',
		hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}
