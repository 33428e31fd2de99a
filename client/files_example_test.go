package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// Uploading a file with the STORE message that pins it, then downloading it,
// resuming into a partial copy (this example needs a node on 127.0.0.1:4024, so
// it is compiled but not run).
func ExampleClient_UploadFile() {
	ctx := context.Background()
	account, err := evm.NewAccount(nil)
	if err != nil {
		log.Fatal(err)
	}
	c := client.New("http://127.0.0.1:4024", client.WithSigner(account))

	in, err := os.Open("video.mp4")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	up, err := c.UploadFile(ctx, in, client.UploadOptions{
		Engine:       message.ItemIPFS,
		Ref:          "intro-video", // later uploads with this ref replace it for by-ref lookups
		WriteOptions: client.WriteOptions{Sync: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(up.ItemHash, up.FileHash, up.Size, up.Status)

	// Append to whatever an earlier, interrupted run left.
	out, err := os.OpenFile("copy.mp4.part", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()
	st, err := out.Stat()
	if err != nil {
		log.Fatal(err)
	}
	d, err := c.DownloadFile(ctx, up.FileHash, out, st.Size())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Written, d.Resumed, d.Verified) // not Verified when resumed: use client.VerifyFile
}
