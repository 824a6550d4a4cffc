// Package peerpb holds the messages Conclave agents exchange with each other.
package peerpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative peer.proto
