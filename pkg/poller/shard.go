// Package poller turns sources into a service: it owns a shard of the BMC
// inventory, polls each owned BMC on its schedule with one worker per BMC,
// and publishes one snapshot per poll on NATS.
package poller

import "github.com/bmcstream/bmcstream/pkg/rendezvous"

// Owners returns the rf pollers that own a BMC id (rendezvous.Owners).
func Owners(key string, members []string, rf int) []string {
	return rendezvous.Owners(key, members, rf)
}

// Owns reports whether self is among the rf owners of a BMC id.
func Owns(self, key string, members []string, rf int) bool {
	return rendezvous.Owns(self, key, members, rf)
}
