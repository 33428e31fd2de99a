package api_test

import (
	"encoding/json"
	"testing"

	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/message"
)

// dataset is a set of real, signed, processed messages covering every filter.
type dataset struct {
	a, b, c, s string // sender addresses: ETH, ETH, BASE, SOL
	// Processed messages, in build (time) order.
	p1, p2, a1, a2, a3, s1, s2, p3, p4, p5, f1 string
	// p6 is forgotten by f1.
	p6 string
	// processed lists the processed hashes in time order.
	processed []string
	// times maps a hash to its envelope time.
	times map[string]float64
	// fileHello is the STORE file hash of s1.
	fileHello string
}

func seed(t *testing.T, n *node) *dataset {
	t.Helper()
	devs, err := all.DevAccounts(3)
	if err != nil {
		t.Fatal(err)
	}
	eth := accounts(t, 3)
	accA, accB := eth[0], eth[1]
	accC := eth[2].WithChain(message.ChainBASE)
	accS := devs[3].Signer // SOL
	d := &dataset{a: accA.Address(), b: accB.Address(), c: accC.Address(), s: accS.Address(), times: map[string]float64{}}
	d.fileHello = message.HashContent([]byte("hello"))

	add := func(b *message.Built) string {
		h := n.mustProcess(t, b)
		d.times[h] = b.Message.Time.Seconds()
		return h
	}
	d.p1 = add(n.build(t, accA, message.TypePost, post("blog", `{"body":"first","tags":["x","y"]}`, ""), "TEST"))
	d.p2 = add(n.build(t, accB, message.TypePost, post("note", `{"body":"second","tags":["n"]}`, "ext-ref"), "OTHER"))
	d.a1 = add(n.build(t, accA, message.TypeAggregate, &message.AggregateContent{Key: message.AggregateKey{Name: "profile"}, Content: json.RawMessage(`{"name":"alice"}`)}, "TEST"))
	d.a2 = add(n.build(t, accA, message.TypeAggregate, &message.AggregateContent{Key: message.AggregateKey{Name: "settings"}, Content: json.RawMessage(`{"theme":"dark","tags":["x"]}`)}, "TEST"))
	d.a3 = add(n.build(t, accA, message.TypeAggregate, &message.AggregateContent{Key: message.AggregateKey{Name: "profile"}, Content: json.RawMessage(`{"age":3}`)}, "TEST"))
	d.s1 = add(n.build(t, accB, message.TypeStore, &message.StoreContent{ItemType: message.ItemStorage, ItemHash: d.fileHello}, "FILES"))
	d.s2 = add(n.build(t, accA, message.TypeStore, &message.StoreContent{ItemType: message.ItemStorage, ItemHash: message.HashContent([]byte("world")),
		Ref: "doc", Payment: &message.Payment{Chain: message.ChainETH, Type: message.PaymentCredit}}, "FILES"))
	d.p3 = add(n.build(t, accS, message.TypePost, post("blog", `{"body":"from solana"}`, ""), "TEST"))
	d.p4 = add(n.build(t, accC, message.TypePost, post("blog", `{"body":"from base"}`, ""), "TEST"))
	d.p5 = add(n.build(t, accA, message.TypePost, post(message.AmendType, `{"body":"first, amended"}`, d.p1), "TEST"))
	d.p6 = add(n.build(t, accB, message.TypePost, post("temp", `{"body":"to forget"}`, ""), "TEST"))
	d.f1 = add(n.build(t, accB, message.TypeForget, &message.ForgetContent{Hashes: []string{d.p6}, Aggregates: []string{}}, "TEST"))
	d.processed = []string{d.p1, d.p2, d.a1, d.a2, d.a3, d.s1, d.s2, d.p3, d.p4, d.p5, d.f1}
	return d
}
