// local_record.go seals the small records a DB keeps in its meta directory
// (last-frame, l0-retained, own-snapshot) with a trailing CRC-32C, so that
// a record torn by a crash, or another file under its name, reads as absent.

package litestream

import (
	"encoding/binary"
	"hash/crc32"
)

// recordCRC is the CRC-32C table of the local records.
var recordCRC = crc32.MakeTable(crc32.Castagnoli)

// sealRecord sets the last four bytes of rec to the CRC of the rest.
func sealRecord(rec []byte) {
	n := len(rec) - 4
	binary.BigEndian.PutUint32(rec[n:], crc32.Checksum(rec[:n], recordCRC))
}

// sealedRecord reports whether rec is a record of size bytes whose CRC
// matches.
func sealedRecord(rec []byte, size int) bool {
	return len(rec) == size && binary.BigEndian.Uint32(rec[size-4:]) == crc32.Checksum(rec[:size-4], recordCRC)
}
