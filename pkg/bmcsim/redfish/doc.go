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
//	  .../EnvironmentMetrics                                           (redfish.environment_metrics)
//	  .../Sensors                                                      (redfish.modern, not no_sensors; $expand=. and $expand=*)
//	  .../Sensors/{id}                                                 (redfish.modern, not the sensor's sensors_omit)
//	/redfish/v1/Systems/{system_id}, /redfish/v1/Managers/{manager_id}
//
// The layouts of real BMCs follow from those traits: both schemas with an
// incomplete Sensors collection (legacy, modern and sensors_omit on some
// sensors: the subsystems then quote those without a DataSourceUri); a
// subsystem-only chassis (modern, no_sensors, environment_metrics: no
// Sensors collection or link, but each excerpt's DataSourceUri resolves to
// its Sensor); legacy members with RelatedItem (related_item) or FanName
// (fan_name); and iLO 4's pre-1.0 Thermal and Power (style ilo4), whose
// "@odata.id" values end in "/" (a path is answered with or without it).
//
// Everything but the public resources needs HTTP basic authentication or an
// X-Auth-Token from a session. Every document has an ETag and honours
// If-None-Match; sensor resources also carry "@odata.etag".
//
// The BMC's faults are read on every request: per-request latency, a
// status (503, 429) with Retry-After for everything but the service root,
// truncated or wrongly typed sensor documents, requests never answered
// (black hole) and connections dropped unanswered (down). A failed fan or
// power supply shows in every schema the personality serves.
//
// NewMockupHandler replays a DMTF mockup directory (a capture of real
// hardware) with the same authentication, sessions and ETags, and CA mints
// per-address certificates so one CA file serves a fleet over HTTPS.
package redfish
