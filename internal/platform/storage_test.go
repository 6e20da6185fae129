package platform

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// A database written with goleveldb's defaults (no filter, 4 MiB memtable) by an earlier
// release, reopened through stateStorage, still reads every key, including a value four times
// the new write buffer, and takes new values of that size; an absent key reads as nil.
func TestStateStorageReopensADatabaseWrittenWithTheDefaults(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("v"), 4*levelDBWriteBuffer)
	old, err := storage.DefaultBuilder(dir)("topic", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if err := old.Set(fmt.Sprintf("k%05d", i), []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Set("big", big); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := stateStorage(dir)("topic", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Set("big2", big); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k00000", "k01999", "big", "big2"} {
		v, err := st.Get(k)
		if err != nil || len(v) == 0 {
			t.Fatalf("Get(%s) = %d bytes, %v", k, len(v), err)
		}
	}
	if v, _ := st.Get("absent"); v != nil {
		t.Fatalf("absent key returned %q", v)
	}
}

// BenchmarkStateStorageRandomWrites writes 20,000 random 1 KiB keys, as a table's recovery
// does, and reports the write delays and level-1 compaction LevelDB needed (the storage.go
// figures); -bench=StateStorage with and without levelDBOptions compares them.
func BenchmarkStateStorageRandomWrites(b *testing.B) {
	const n, size = 20000, 1024
	for _, c := range []struct {
		name string
		opts func() *opt.Options
	}{{"defaults", func() *opt.Options { return nil }}, {"project", levelDBOptions}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				db, err := leveldb.OpenFile(b.TempDir(), c.opts())
				if err != nil {
					b.Fatal(err)
				}
				val := make([]byte, size)
				for range n {
					k := make([]byte, 16)
					_, _ = rand.Read(k)
					_, _ = rand.Read(val)
					if err := db.Put(fmt.Appendf(nil, "%x", k), val, nil); err != nil {
						b.Fatal(err)
					}
				}
				var st leveldb.DBStats
				if err := db.Stats(&st); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(st.WriteDelayCount), "delayed-writes/op")
				var rewritten int64
				for _, w := range st.LevelWrite[1:] {
					rewritten += w
				}
				b.ReportMetric(float64(rewritten)/(1<<20), "MiB-compacted/op")
				db.Close()
			}
		})
	}
}
