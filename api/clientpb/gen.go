// Package clientpb holds the gRPC API local programs use to talk to a
// Conclave agent over its Unix socket.
package clientpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative client.proto votequorum.proto gs.proto
