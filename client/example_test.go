package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// A post, read back, then every message of its sender (this example needs a node
// on 127.0.0.1:4024, so it is compiled but not run).
func Example() {
	ctx := context.Background()
	account, err := evm.NewAccount(nil)
	if err != nil {
		log.Fatal(err)
	}
	c := client.New("http://127.0.0.1:4024", client.WithSigner(account))

	w, err := c.CreatePost(ctx, "blog", map[string]string{"title": "hello"}, "", client.WriteOptions{Channel: "TEST", Sync: true})
	var rej *client.RejectedError
	if errors.As(err, &rej) {
		log.Fatalf("rejected with code %d: %s", rej.Code, rej.Reason)
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.ItemHash, w.Status)

	res, err := c.GetMessage(ctx, w.ItemHash)
	if err != nil {
		log.Fatal(err)
	}
	if err := res.Err(); err != nil { // forgotten, rejected, pending, removed
		log.Fatal(err)
	}
	fmt.Println(string(res.Message.Content))

	for m, err := range c.AllMessages(ctx, client.MessageFilter{Addresses: []string{account.Address()}, Types: []message.Type{message.TypePost}}, 100) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.ItemHash)
	}
}

// Watching new messages until the context ends.
func ExampleClient_WatchMessages() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := client.New("http://127.0.0.1:4024")
	history := 0
	w, err := c.WatchMessages(ctx, client.WatchFilter{MessageFilter: client.MessageFilter{Channels: []string{"TEST"}}, History: &history})
	if err != nil {
		log.Fatal(err)
	}
	for m, err := range w.Messages() {
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Type, m.ItemHash)
	}
}
