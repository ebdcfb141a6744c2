// Package version carries the build's version, set with
// -ldflags "-X github.com/bmcstream/bmcstream/internal/version.Version=v1.2.3".
package version

// Version is the release of this build.
var Version = "0.1.0-dev"
