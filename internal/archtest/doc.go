// Package archtest holds the tests that keep the repository as
// docs/architecture.md draws it: which package may import which, which
// programs link which heavy dependencies, and documentation whose links
// resolve inside the repository. It has no code of its own.
package archtest
