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
//     URLs) is passed as an unsafe extra variable: Ansible never templates
//     it, and no shell ever sees it.
package roles
