// Package yamlx decodes configuration strictly and places every problem
// at the YAML node it is about: "line N: path: message", one per problem.
// Problems are placed from the parsed document's node positions, never by
// searching the text for a value.
package yamlx
