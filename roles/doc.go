// Package roles owns role reassignment and node maintenance: the role
// catalog (which roles exist and what service each one is), a node's
// desired state in Consul KV with its audit trail, the variables of the
// apply playbook that makes a node's agent match it, and the state a node
// is in on the way there (Unmanaged, Pending, Applying, Converged, Failed,
// Drift).
//
// In this fleet a node's roles are the Consul services its own agent
// defines; catalog writes to an agent's node are reverted by anti-entropy.
// So fleetdeck never writes the catalog: it records what is wanted in KV,
// and Ansible, on the node, writes one service definition file per
// managed role into the agent's config dir and reloads the agent. The
// catalog then shows the result, which is the only proof of convergence.
//
// Conventions shared by the Go side and the shipped playbook:
//
//   - A managed role R is the service with ID "fleetdeck-R" and name R,
//     defined in the file "fleetdeck-R.json" of the agent's config dir.
//     Files and services without that prefix are never touched; a service
//     with that ID is what fleetdeck manages, whoever registered it.
//   - The desired record of node N in datacenter D is the KV key
//     <prefix>nodes/N in D (prefix: [roles] kv_prefix, default
//     "fleetdeck/desired/"); its audit records are <prefix>audit/N/<gen>
//     with the generation zero-padded to 20 digits so that keys sort by
//     generation. Every change is one /v1/txn: a check-and-set on the
//     desired key and the audit record's creation (check-not-exists).
//   - Every string that reaches Ansible (role names, tags, reasons, check
//     URLs) is a per-host variable of the run's inventory (HostVars, given
//     to the run manager as provision.LaunchRequest.HostVars), written
//     unsafe: Ansible never templates it, and no shell ever sees it.
//     Where a node's agent lives (consul_config_dir, consul_http_addr,
//     consul_bin) comes from the inventory and host_vars only.
//
// The role catalog (catalog.go) comes from two places: the config file's
// [roles.NAME] tables (DecodeConfig, on the table the config decoder kept
// as a toml.Primitive, with the [roles] settings kv_prefix and playbook)
// and the playbook directory's roles.toml (ReadDir, Parse). Merge refuses
// a role defined in both, naming both. Every role is checked when it is
// read: a bad name, a script check, an unknown key or an invalid check is
// an error naming the file, the role and the key, so nothing that could
// not be applied ever reaches KV.
//
// The store (store.go) makes each change one consistent read and one
// /v1/txn through the access layer (internal/consul): check-and-set of the
// desired key on the ModifyIndex read (0: must not exist) and creation of
// the generation's audit record (must not exist). The loser of a race gets
// a *ConflictError naming the winner; a refused change writes nothing.
//
// A node's state (state.go) is computed, never stored: StateOf compares
// the desired record with the node's services in the catalog, given the
// latest apply run that covered the node. A run is linked to the
// generations it applies through its metadata: RunLinks gives one entry
// per node ("fleetdeck.roles/<dc>/<node>" = generation), which the run
// manager keeps with the run and returns with each run it lists, and
// LinkedGeneration reads it back. A run that applies an older generation
// does not make the current one Applying or Failed.
package roles
