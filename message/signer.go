package message

// Signer is an account that signs messages for one chain. Sign receives the
// verification buffer and returns the value of the envelope's signature field, in
// the chain's format (a 0x-hex string for EVM, JSON text for SOL, DOT, CSDK, TEZOS).
type Signer interface {
	Chain() Chain
	Address() string
	Sign(buffer []byte) (string, error)
}
