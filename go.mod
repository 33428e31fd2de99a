module github.com/go-aleph/go-aleph

go 1.26.0
