package message

import (
	"context"
	"encoding/json"
	"testing"
)

// benchEnvelope is a typical inline POST (the pyaleph EVM test vector).
const benchEnvelope = `{"item_hash": "f524a258d87f1771e8538fd4fd91acdcc527c3b7f138fafd6ff89a5fcf97c3b7", "type": "POST", "chain": "ETH", "sender": "0xA07B1214bAe0D5ccAA25449C3149c0aC83658874", "signature": "0x99efc66c781c889e1f21c680869c832141dcee90189e75e85f570b8b49e72dee0338d77c214ae55bfcb886bbd7bac6dc4dcfda4eb0d2c47ed93d51b36b7259b01c", "time": 1730410918.092607, "item_type": "inline", "item_content": "{\"address\":\"0xA07B1214bAe0D5ccAA25449C3149c0aC83658874\",\"time\":1730410918.0924816,\"content\":{\"type\":\"polygon\",\"address\":\"0xA07B1214bAe0D5ccAA25449C3149c0aC83658874\",\"content\":{\"body\":\"This message was posted from the typescript-SDK test suite\"},\"time\":1689163528.372},\"type\":\"test\"}", "channel": "ALEPH-CLOUDSOLUTIONS"}`

// BenchmarkParse measures envelope parsing, the inline sha256 check and the content
// schema: everything a node does to a message before its signature.
func BenchmarkParse(b *testing.B) {
	data := []byte(benchEnvelope)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseProgram measures the same for the largest common content, a PROGRAM.
func BenchmarkParseProgram(b *testing.B) {
	var compact json.RawMessage
	if err := json.Unmarshal([]byte(programJSON), &compact); err != nil {
		b.Fatal(err)
	}
	env, _ := json.Marshal(map[string]any{"chain": "ETH", "sender": "0xA", "type": "PROGRAM", "time": 1,
		"item_type": "inline", "item_content": string(compact), "item_hash": HashContent(compact), "signature": "0x"})
	b.SetBytes(int64(len(env)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashContent is the sha256 part alone.
func BenchmarkHashContent(b *testing.B) {
	var m struct {
		ItemContent string `json:"item_content"`
	}
	_ = json.Unmarshal([]byte(benchEnvelope), &m)
	content := []byte(m.ItemContent)
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		HashContent(content)
	}
}

// BenchmarkBuild measures building an inline POST (serialize, hash), with a signer
// that costs nothing, so the figure is the builder's own overhead.
func BenchmarkBuild(b *testing.B) {
	bl := &Builder{Signer: fixedSigner{"0xA07B1214bAe0D5ccAA25449C3149c0aC83658874"}}
	b.ReportAllocs()
	for b.Loop() {
		c := &PostContent{Type: "test", Content: json.RawMessage(`{"body":"This message was posted from the Go builder"}`)}
		if _, err := bl.Build(context.Background(), TypePost, c, "TEST"); err != nil {
			b.Fatal(err)
		}
	}
}
