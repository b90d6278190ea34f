//go:build !linux

package main

import "os/exec"

// dieWithDemo: only Linux has a parent-death signal; elsewhere a SIGKILLed
// demo leaves its provisioner retrying until it is stopped.
func dieWithDemo(*exec.Cmd) {}
