// Package provision owns fleetdeck's use of Ansible: inventory, playbook
// catalog, runs, run records, audit and locks.
//
// The inventory (BuildInventory) turns one fleet.Snapshot into Ansible's
// dynamic-inventory JSON. Everything in it that comes from Consul is data,
// never code: every Consul-sourced string is marked unsafe so Ansible does
// not template it, and node names Ansible cannot target exactly get a safe
// alias instead of being passed through.
package provision
