package litestream

// Replica uploads a DB's L0 files to a ReplicaClient and restores from it.
type Replica struct {
	db *DB

	// Client stores the replica's files.
	Client ReplicaClient
}

// NewReplicaWithClient returns a replica of db stored by client.
func NewReplicaWithClient(db *DB, client ReplicaClient) *Replica {
	return &Replica{db: db, Client: client}
}

// DB returns the database being replicated.
func (r *Replica) DB() *DB { return r.db }
