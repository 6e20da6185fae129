// Package schemas ships the Avro schemas of the ecosystem's public topics inside every binary,
// so that all services agree on the wire format with or without a schema registry.
//
// The schemas keep the namespace and field names of the reference Java system
// (io.confluent.examples.streams.avro.microservices), so its services can share our topics.
package schemas

import "embed"

// Files holds every *.avsc file of this directory.
//
//go:embed *.avsc
var Files embed.FS
