package message

import (
	"strings"
	"unicode/utf8"
)

// Chain is the chain code of the key that signed a message ("ETH", "SOL", ...).
type Chain string

// Chain codes, as aleph-message's Chain enum spells them.
const (
	ChainARB       Chain = "ARB"
	ChainAURORA    Chain = "AURORA"
	ChainAVAX      Chain = "AVAX"
	ChainBASE      Chain = "BASE"
	ChainBLAST     Chain = "BLAST"
	ChainBOB       Chain = "BOB"
	ChainBSC       Chain = "BSC"
	ChainCSDK      Chain = "CSDK"
	ChainCYBER     Chain = "CYBER"
	ChainDOT       Chain = "DOT"
	ChainES        Chain = "ES"
	ChainETH       Chain = "ETH"
	ChainETHERLINK Chain = "ETHERLINK"
	ChainFRAX      Chain = "FRAX"
	ChainHYPE      Chain = "HYPE"
	ChainINK       Chain = "INK"
	ChainLENS      Chain = "LENS"
	ChainLINEA     Chain = "LINEA"
	ChainLISK      Chain = "LISK"
	ChainMETIS     Chain = "METIS"
	ChainMODE      Chain = "MODE"
	ChainNEO       Chain = "NEO"
	ChainNULS      Chain = "NULS"
	ChainNULS2     Chain = "NULS2"
	ChainOP        Chain = "OP"
	ChainPOL       Chain = "POL"
	ChainSOL       Chain = "SOL"
	ChainSONIC     Chain = "SONIC"
	ChainSTT       Chain = "STT"
	ChainTEZOS     Chain = "TEZOS"
	ChainUNICHAIN  Chain = "UNICHAIN"
	ChainWLD       Chain = "WLD"
	ChainZORA      Chain = "ZORA"
)

// Chains lists every chain code the protocol knows, verifiable or not.
var Chains = []Chain{
	ChainARB, ChainAURORA, ChainAVAX, ChainBASE, ChainBLAST, ChainBOB, ChainBSC, ChainCSDK,
	ChainCYBER, ChainDOT, ChainES, ChainETH, ChainETHERLINK, ChainFRAX, ChainHYPE, ChainINK,
	ChainLENS, ChainLINEA, ChainLISK, ChainMETIS, ChainMODE, ChainNEO, ChainNULS, ChainNULS2,
	ChainOP, ChainPOL, ChainSOL, ChainSONIC, ChainSTT, ChainTEZOS, ChainUNICHAIN, ChainWLD, ChainZORA,
}

// EVMChains are the chain codes whose messages carry EIP-191 signatures.
var EVMChains = []Chain{
	ChainETH, ChainETHERLINK, ChainARB, ChainBASE, ChainBLAST, ChainBOB, ChainBSC, ChainCYBER,
	ChainFRAX, ChainHYPE, ChainINK, ChainLENS, ChainLINEA, ChainLISK, ChainMETIS, ChainMODE,
	ChainNEO, ChainOP, ChainPOL, ChainSONIC, ChainUNICHAIN, ChainWLD, ChainZORA,
}

// Known reports whether c is a chain code of the protocol.
func (c Chain) Known() bool {
	for _, k := range Chains {
		if k == c {
			return true
		}
	}
	return false
}

// Type is the message type.
type Type string

// Message types.
const (
	TypePost      Type = "POST"
	TypeAggregate Type = "AGGREGATE"
	TypeStore     Type = "STORE"
	TypeProgram   Type = "PROGRAM"
	TypeInstance  Type = "INSTANCE"
	TypeForget    Type = "FORGET"
)

// Types lists the message types this node accepts.
var Types = []Type{TypePost, TypeAggregate, TypeStore, TypeProgram, TypeInstance, TypeForget}

// Known reports whether t is an accepted message type.
func (t Type) Known() bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// ItemType says where a message's content lives.
type ItemType string

// Item types.
const (
	ItemInline  ItemType = "inline"
	ItemStorage ItemType = "storage"
	ItemIPFS    ItemType = "ipfs"
)

// Known reports whether t is a valid item type.
func (t ItemType) Known() bool {
	return t == ItemInline || t == ItemStorage || t == ItemIPFS
}

const (
	base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	base32Alphabet = "abcdefghijklmnopqrstuvwxyz234567"
)

// ItemTypeFromHash infers the item type from the shape of a hash: a CIDv0 ("Qm…",
// 44 to 46 base58 characters) or CIDv1 ("bafy…", 59 base32 characters) is ipfs, and
// 64 lowercase hex digits are storage. Anything else is an error naming the field.
func ItemTypeFromHash(h string) (ItemType, error) {
	switch {
	case strings.HasPrefix(h, "Qm") && len(h) >= 44 && len(h) <= 46 && onlyIn(h, base58Alphabet):
		return ItemIPFS, nil
	case strings.HasPrefix(h, "bafy") && len(h) == 59 && onlyIn(h, base32Alphabet):
		return ItemIPFS, nil
	case IsHexHash(h):
		return ItemStorage, nil
	}
	return "", Errorf(CodeInvalidFormat, "item_hash", "unknown hash %q", truncate(h, 80))
}

// IsHexHash reports whether h is 64 lowercase hex digits, the shape of a sha256 item hash.
func IsHexHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// IsItemHash reports whether h has the shape of any item hash: sha256 hex or an IPFS CID.
func IsItemHash(h string) bool {
	_, err := ItemTypeFromHash(h)
	return err == nil
}

func onlyIn(s, alphabet string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// truncate shortens s for error messages, so that hostile input cannot make them huge.
// It cuts at a character boundary so the message stays valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
