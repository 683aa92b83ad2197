//go:build tools

// Package tools pins the Helm CLI that the packaging tests build.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
