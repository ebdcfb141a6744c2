// Package corpus holds captures of real BMCs (testdata/redfish: Redfish
// services in DMTF mockup layout; testdata/ipmi: IPMI sensor dumps) and the
// tests that replay them end to end: each Redfish capture is served by
// bmcsim's mockup handler over loopback HTTP, read by the Redfish source as
// a poller reads a BMC, and normalised with the built-in rules; the IPMI
// dumps become readings as the IPMI source delivers them. The tests compare
// each capture's series with a golden file and check invariants that hold
// for any BMC (docs/metrics.md): every reading is a series or a counted
// drop, intake is the room's air, margins are not temperatures, and the
// series pass promtool's lint. testdata/README.md records where each
// capture came from, its licence and every edit made to it.
//
// A capture dropped under testdata/redfish is tested with no code change.
package corpus
