// Command restore-v3 restores a backup that Litestream v0.3.x wrote to a
// local directory, decrypting it with an age identity file if one is given.
//
//	restore-v3 <replica-dir> <output.db> [age-identity-file]
package main

import (
	"context"
	"fmt"
	"os"

	"filippo.io/age"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: restore-v3 <replica-dir> <output.db> [age-identity-file]")
		os.Exit(2)
	}
	if err := run(context.Background(), os.Args[1], os.Args[2], os.Args[3:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, replicaPath, outputPath string, identityFiles []string) error {
	var identities []age.Identity
	for _, name := range identityFiles {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		ids, err := age.ParseIdentities(f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("parse age identities in %s: %w", name, err)
		}
		identities = append(identities, ids...)
	}

	client := file.NewReplicaClient(replicaPath)
	replica := litestream.NewReplicaWithClient(nil, client)

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = outputPath
	opt.AgeIdentities = identities // only needed for an encrypted v0.3.x backup
	// Restore uses the v0.3.x backup when it is newer than any LTX files;
	// replica.RestoreV3(ctx, opt) always uses it.
	if err := replica.Restore(ctx, opt); err != nil {
		return err
	}
	return nil
}
