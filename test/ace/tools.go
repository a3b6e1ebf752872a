//go:build tools

// The validator is a main package of a module with no go.mod of its own, so this import is what
// makes our go.mod and go.sum pin it and its dependencies; the build tag keeps it out of any build.
package ace

import _ "github.com/appc/spec/ace"
