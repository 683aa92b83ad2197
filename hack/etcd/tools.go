//go:build tools

// Package tools pins the etcd server that the test world builds.
package tools

import _ "go.etcd.io/etcd/server/v3"
