// Package redfish is bmcsim's Redfish service: one http.Handler per virtual
// BMC, shaped after DMTF's schemas and mockups, reading its sensors, health
// and faults from the shared model so it reports the same physical values as
// the IPMI side.
//
// What a BMC serves follows its personality:
//
//	/redfish, /redfish/v1/, /redfish/v1/odata, /redfish/v1/$metadata   (no credentials)
//	/redfish/v1/SessionService[/Sessions[/{id}]]                       (POST Sessions to log in, DELETE a session to log out)
//	/redfish/v1/Chassis/{chassis_id}                                   (links to what follows)
//	  .../Thermal, .../Power                                           (redfish.legacy)
//	  .../ThermalSubsystem[/ThermalMetrics|/Fans[/{id}]]               (redfish.modern)
//	  .../PowerSubsystem[/PowerSupplies[/{id}[/Metrics]]]              (redfish.modern)
//	  .../Sensors[/{id}]                                               (redfish.modern; $expand=. and $expand=*)
//	/redfish/v1/Systems/{system_id}, /redfish/v1/Managers/{manager_id}
//
// Everything but the public resources needs HTTP basic authentication or an
// X-Auth-Token from a session. Every document has an ETag and honours
// If-None-Match; sensor resources also carry "@odata.etag".
//
// The BMC's faults are read on every request: per-request latency, a
// status (503, 429) with Retry-After for everything but the service root,
// truncated or wrongly typed sensor documents, requests never answered
// (black hole) and connections dropped unanswered (down).
//
// NewMockupHandler replays a DMTF mockup directory (a capture of real
// hardware) with the same authentication, sessions and ETags, and CA mints
// per-address certificates so one CA file serves a fleet over HTTPS.
package redfish
