package redfish

import (
	"net/http"
	"strconv"
)

// baseRegistry prefixes the message ids of DMTF's Base message registry, in
// which every error this service reports is defined.
const baseRegistry = "Base.1.16."

// redfishError is one error answer: its HTTP status and the DMTF Base
// registry message it carries.
type redfishError struct {
	status     int
	messageID  string // key in the Base registry, e.g. "NoValidSession"
	message    string
	args       []string
	resolution string
}

// body renders the error in the Redfish Specification's form:
// {"error": {"code", "message", "@Message.ExtendedInfo": [Message]}}.
func (e redfishError) body() obj {
	args := make([]any, len(e.args))
	for i, a := range e.args {
		args[i] = a
	}
	id := baseRegistry + e.messageID
	info := obj{}.
		add("@odata.type", "#Message.v1_1_1.Message").
		add("MessageId", id).
		add("Message", e.message).
		add("MessageArgs", args).
		add("MessageSeverity", "Critical").
		add("Severity", "Critical").
		addIf(e.resolution != "", "Resolution", e.resolution)
	return obj{}.add("error", obj{}.
		add("code", id).
		add("message", e.message).
		add("@Message.ExtendedInfo", []obj{info}))
}

func errNotFound(path string) redfishError {
	return redfishError{
		status:     http.StatusNotFound,
		messageID:  "ResourceMissingAtURI",
		message:    "The resource at the URI '" + path + "' was not found.",
		args:       []string{path},
		resolution: "Place a valid resource at the URI or correct the URI and resubmit the request.",
	}
}

func errNoValidSession() redfishError {
	return redfishError{
		status:     http.StatusUnauthorized,
		messageID:  "NoValidSession",
		message:    "There is no valid session established with the implementation.",
		resolution: "Establish a session before attempting any operations.",
	}
}

func errLoginFailed(path string) redfishError {
	return redfishError{
		status:     http.StatusUnauthorized,
		messageID:  "ResourceAtUriUnauthorized",
		message:    "While accessing the resource at '" + path + "', the service received an authorization error 'invalid user name or password'.",
		args:       []string{path, "invalid user name or password"},
		resolution: "Ensure that the appropriate access is provided for the service in order for it to access the URI.",
	}
}

func errInsufficientPrivilege() redfishError {
	return redfishError{
		status:     http.StatusForbidden,
		messageID:  "InsufficientPrivilege",
		message:    "There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.",
		resolution: "Either abandon the operation or change the associated access rights and resubmit the request if the operation failed.",
	}
}

// errSessionLimit words its message as iDRAC does ("RAC0218: The maximum
// number of user sessions is reached."), which is what operators search for.
func errSessionLimit(limit int) redfishError {
	return redfishError{
		status:    http.StatusServiceUnavailable,
		messageID: "SessionLimitExceeded",
		message: "The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation: " +
			"the maximum number of user sessions (" + strconv.Itoa(limit) + ") is reached.",
		resolution: "Reduce the number of other sessions before trying to establish the session or increase the limit of simultaneous sessions (if supported).",
	}
}

func errMethodNotAllowed(method string) redfishError {
	return redfishError{
		status:     http.StatusMethodNotAllowed,
		messageID:  "OperationNotAllowed",
		message:    "The HTTP method " + method + " is not allowed on this resource.",
		resolution: "None.",
	}
}

func errMalformedJSON() redfishError {
	return redfishError{
		status:     http.StatusBadRequest,
		messageID:  "MalformedJSON",
		message:    "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
		resolution: "Ensure that the request body is valid JSON and resubmit the request.",
	}
}

func errPropertyMissing(name string) redfishError {
	return redfishError{
		status:     http.StatusBadRequest,
		messageID:  "PropertyMissing",
		message:    "The property " + name + " is a required property and must be included in the request.",
		args:       []string{name},
		resolution: "Ensure that the property is in the request body and has a valid value and resubmit the request if the operation failed.",
	}
}

// errUnavailable is the HTTPStatus fault's answer (503, 429, or any status
// an operator injects).
func errUnavailable(status, retryAfter int) redfishError {
	e := redfishError{status: status, messageID: "ServiceTemporarilyUnavailable"}
	if retryAfter > 0 {
		e.message = "The service is temporarily unavailable. Retry in " + strconv.Itoa(retryAfter) + " seconds."
		e.args = []string{strconv.Itoa(retryAfter)}
	} else {
		e.message = "The service is temporarily unavailable."
	}
	e.resolution = "Wait for the indicated retry duration and retry the operation."
	if status < 500 && status != http.StatusTooManyRequests {
		e.messageID = "GeneralError"
		e.message = "A general error has occurred. See Resolution for information on how to resolve the error."
		e.args = nil
		e.resolution = "None."
	}
	return e
}
